"""Shared stage-2 fixtures: a toy manifest + MEDIA, a tiny stage-1 run, and a tiny stage-2 run with the images
fold-wise ``generate`` drew for fold 0. Session-scoped: built once, never modified by the tests."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from stage2_helpers import write_toy

from macs_model.generation.api import generate, train_generator
from macs_model.separation.api import train_separator


@pytest.fixture(scope="session")
def toy(tmp_path_factory):
    manifest, media, ids = write_toy(tmp_path_factory.mktemp("toy"))
    return SimpleNamespace(manifest=manifest, media=media, ids=ids)


@pytest.fixture(scope="session")
def separator(toy, tmp_path_factory):
    """A 3-step tiny stage-1 run with TinyClap, checkpointed every step (checkpoint-1 .. checkpoint-3)."""
    out = tmp_path_factory.mktemp("stage1") / "sep"
    train_separator(str(toy.manifest), toy.media, out, preset="tiny", clap="tiny", steps=3, checkpoint_every=1,
                    progress=False)
    return out


@pytest.fixture(scope="session")
def stage2(toy, separator, tmp_path_factory):
    """train_generator (4 steps) on folds 1-4 and generate for fold 0; never modified by the tests."""
    root = tmp_path_factory.mktemp("stage2")
    run, pred = root / "run", root / "pred"
    summary = train_generator(toy.manifest, toy.media, run, fold=0, separator=separator, preset="tiny", steps=4,
                              progress=False)
    record = generate(toy.manifest, toy.media, run, pred, fold=0, progress=False)
    return SimpleNamespace(run=run, pred=pred, summary=summary, record=record)
