"""Every ```python block of the README runs, offline, as written, so the README cannot drift from the API.

The README is parsed when the tests are collected: a new block is a new test. Each block runs statement by
statement in a fresh folder (HOME and MACS_HOME inside it). A statement with a line ending in ``# network``
(the README says so) is skipped: it needs the network or what an earlier such line downloaded. What the
network would have given the rest is stood in for, and only that:

- the published scoring weights: the ``tiny`` encoders (random, small) replace the ``paper`` preset's files;
- downloaded media and a model's images: when a statement names one of the paths in ``FIXTURES`` and it does
  not exist yet, a small synthetic one is made (a fetch of 40 clips of fold 0, after which the manifest is
  rebuilt ``--available`` to them as the README says; a model's images for them; a tiny trained generator
  run; two short audio files).
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
MARKER = "# network"
SR = 16000
CLIPS = 40  # clips of a fixture MEDIA folder


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(first line number, code) of each fenced ```python block."""
    blocks, current, start = [], None, 0
    for number, line in enumerate(text.splitlines(), start=1):
        if current is None and re.fullmatch(r"\s*```python\s*", line):
            current, start = [], number + 1
        elif current is not None and line.strip() == "```":
            blocks.append((start, "\n".join(current)))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def statements(code: str) -> list[tuple[ast.stmt, bool]]:
    """Top-level statements of a block, each with whether it is marked as needing the network."""
    lines = code.splitlines()
    tree = ast.parse(code)
    return [(node, any(lines[i].rstrip().endswith(MARKER) for i in range(node.lineno - 1, node.end_lineno)))
            for node in tree.body]


# --- fixtures standing in for downloads -------------------------------------------------------------------


def _fold_ids(manifest: Path, fold: str = "0") -> list[str]:
    from macs_bench.datasets.manifest import read_manifest

    rows = read_manifest(manifest)
    if isinstance(rows, list):  # the rows as dicts of cells
        ids = [r["sample_id"] for r in rows if str(r["fold"]) == fold]
    else:  # a DataFrame indexed by sample_id
        ids = [str(i) for i in rows.index[rows["fold"] == int(fold)]]
    assert ids, f"{manifest}: no sample in fold {fold}"
    return ids


def _image(path: Path, seed: int) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def _wav(path: Path, seed: int, seconds: float = 0.5) -> None:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, 0.1 * np.random.default_rng(seed).standard_normal(int(SR * seconds)).astype(np.float32), SR)


def make_media(target: Path, sandbox: Path) -> None:
    """What a fetch of a few clips gives: a MEDIA folder (frame + audio) of ``CLIPS`` clips of fold 0 of the
    manifest the README built into runs/, and that manifest rebuilt ``--available`` to them, as the README
    tells users to do after a fetch (folds are computed before the filter, so fold 0 stays fold 0)."""
    from macs_bench.datasets import build

    manifest = sandbox / "runs" / "llp-multi"
    ids = _fold_ids(manifest)[:CLIPS]
    for i, sid in enumerate(ids):
        _image(target / "frames" / f"{sid}.jpg", i)
        _wav(target / "audio" / f"{sid}.wav", i)
    (target / "available.txt").write_text("".join(f"{sid}\n" for sid in ids))
    build("llp-multi", manifest, available=target / "available.txt")


def make_predictions(target: Path, sandbox: Path) -> None:
    """A model's images for fold 0 of runs/llp-multi."""
    for i, sid in enumerate(_fold_ids(sandbox / "runs" / "llp-multi")):
        _image(target / f"{sid}.png", 10_000 + i)


def make_generator_run(target: Path, sandbox: Path) -> None:
    """A tiny stage-2 run (tiny separator and TinyClap, a few steps): what `train generator` writes."""
    sys.path.insert(0, str(REPO / "tests" / "model"))
    try:
        from stage2_helpers import write_toy
    finally:
        sys.path.remove(str(REPO / "tests" / "model"))
    from macs_model.generation.api import train_generator
    from macs_model.separation.api import train_separator

    import torch

    manifest, media, _ = write_toy(sandbox / "toy")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny networks: threads only contend
    try:
        _train(manifest, media, target, sandbox, train_separator, train_generator)
    finally:
        torch.set_num_threads(threads)


def _train(manifest, media, target, sandbox, train_separator, train_generator):
    train_separator(str(manifest), media, sandbox / "toy" / "sep", preset="tiny", clap="tiny", steps=2,
                    progress=False)
    train_generator(manifest, media, target, fold=0, separator=sandbox / "toy" / "sep", preset="tiny", steps=2,
                    progress=False)


def make_audio(target: Path, sandbox: Path) -> None:
    _wav(target, len(target.name), seconds=2.0)


FIXTURES = {"media/llp": make_media, "my_model/images": make_predictions, "runs/gen-fold0": make_generator_run,
            "a.wav": make_audio, "b.wav": make_audio}


def _named_paths(node: ast.AST) -> set[str]:
    return {n.value.rstrip("/") for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A fresh working folder with HOME and MACS_HOME inside it, and the tiny encoders for the paper's."""
    import macs_bench.features.encoders as encoders
    import macs_bench.scoring.core as scoring

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MACS_HOME", str(tmp_path / "macs-home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    real = encoders.build_encoders

    def without_downloads(preset="paper", *args, **kwargs):
        return real("tiny" if preset == "paper" else preset, *args, **kwargs)

    monkeypatch.setattr(encoders, "build_encoders", without_downloads)
    monkeypatch.setattr(scoring, "missing_weights", lambda *args, **kwargs: None)
    return tmp_path


BLOCKS = python_blocks(README.read_text())


def test_the_readme_has_python_blocks_and_documents_the_marker():
    assert len(BLOCKS) >= 3
    assert f"`{MARKER}`" in README.read_text()


def test_statements_skip_marked_lines_whole():
    code = 'a = 1\nb = f(1,\n      2)  # network\nc = a + 1  # why\n'
    assert [skip for _, skip in statements(code)] == [False, True, False]


@pytest.mark.slow
@pytest.mark.parametrize("start, code", BLOCKS, ids=[f"README.md:{start}" for start, _ in BLOCKS])
def test_readme_block_runs(start, code, sandbox):
    namespace: dict = {"__name__": "__readme__"}
    for node, skip in statements(code):
        if skip:
            continue
        named = _named_paths(node)
        for name in [n for n in FIXTURES if n in named]:  # in FIXTURES' order: media before predictions
            if not (sandbox / name).exists():
                FIXTURES[name](sandbox / name, sandbox)
        source = ast.get_source_segment(code, node)
        try:
            exec(compile(ast.Module([node], []), f"README.md:{start + node.lineno - 1}", "exec"), namespace)
        except Exception as exc:
            pytest.fail(f"README.md:{start + node.lineno - 1}: {source.splitlines()[0]} ... raised "
                        f"{type(exc).__name__}: {exc}")
