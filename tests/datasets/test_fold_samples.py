"""One fold selection for the whole toolkit: ``macs_bench.datasets.manifest.fold_samples`` gives the evaluated ids
(with labels) and the ids a model may train on; stage 2's ``fold_ids`` and the harness read it, so the two can
never disagree about which clips a fold holds."""

import re

import pytest

from macs_bench.datasets import Manifest, Sample
from macs_bench.datasets.manifest import fold_samples
from macs_bench.errors import MacsError


def _manifest(folder, samples):
    Manifest("t", list(samples)).write(folder)
    return folder


def test_fold_split_and_whole_manifest_against_brute_force(tmp_path):
    ids = [f"s{i}" for i in range(9)]
    samples = [Sample(sid, (f"c{i % 2}", "x"), "train" if i % 4 else "test", fold=i % 3) for i, sid in enumerate(ids)]
    manifest = _manifest(tmp_path / "m", samples)
    for fold in range(3):
        got = fold_samples(manifest, fold)
        assert got.ids == [s.sample_id for s in samples if s.fold == fold]
        assert got.train == [s.sample_id for s in samples if s.fold != fold]
        assert got.labels == {s.sample_id: s.labels for s in samples if s.fold == fold}
    split = fold_samples(manifest, None, "test")
    assert split.ids == ["s0", "s4", "s8"] and split.train == [s.sample_id for s in samples if s.split == "train"]
    every = fold_samples(manifest, None, None)
    assert every.ids == ids and every.train == []
    with pytest.raises(MacsError, match=re.escape("no fold 5 (folds: 0, 1, 2)")):
        fold_samples(manifest, 5)
    with pytest.raises(MacsError, match=re.escape("no samples in split 'val'")):
        fold_samples(manifest, None, "val")


def test_stage_two_reads_the_same_selection(tmp_path):
    pytest.importorskip("diffusers")
    from macs_model.generation.api import fold_ids

    samples = [Sample(f"s{i}", ("x",), ("train", "test")[i % 2], fold=i % 3) for i in range(7)]
    manifest = _manifest(tmp_path / "m", samples)
    for fold in (0, 1, 2, None):
        chosen = fold_samples(manifest, fold, None if fold is not None else "test")
        assert fold_ids(manifest, fold) == (chosen.train, chosen.ids)
