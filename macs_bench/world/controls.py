"""Control rows for the world's leaderboards, and the per-source coverage they are judged by.

Controls calibrate the metrics and expose cheats; they are marked as controls and never ranked:

- ``oracle``: each test clip's true motifs re-drawn in a new random layout (so FID is not zero by identity);
- ``shuffled``: a model's images handed to the wrong clips (a fixed derangement of the fold's ids);
- ``noise``: uniform noise images;
- ``colour-only``: a flat image tinted to the mean colour of the clip's motifs, no shape (a colour detector's
  cheat: the classes share colours, so only shape tells them apart);
- ``all-motifs``: every class's motif in every image (a cheat that covers any label set).

Each writes ``<sample_id>.png`` files as a generator would, so they are scored by the same code.
"""

from __future__ import annotations

import io
import shutil
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from macs_bench.io import atomic_write_bytes

CONTROL_ROWS = ("oracle", "shuffled", "noise", "colour-only", "all-motifs")
DRAWN = {"oracle", "colour-only", "all-motifs"}


def _png(image, path: Path) -> None:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())


def _rng(seed: int, sid: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(sid.encode())])


def control_image(row: str, names: Sequence[str], rng: np.random.Generator, size: int = 32):
    """One image of a drawn control row (``oracle``, ``colour-only``, ``all-motifs``) for a clip with classes
    ``names``: drawn at twice ``size`` like the frames, then resized to ``size``."""
    from macs_bench.world.motifs import draw_all_motifs, draw_colour_only, draw_frame

    if row == "oracle":
        image = draw_frame(list(names), rng, 2 * size)
    elif row == "colour-only":
        image = draw_colour_only(list(names), 2 * size)
    elif row == "all-motifs":
        image = draw_all_motifs(rng, 2 * size)
    else:
        raise ValueError(f"{row!r} is not a drawn control row ({', '.join(sorted(DRAWN))})")
    return image.resize((size, size))


def write_drawn(row: str, labels: Mapping[str, Sequence[str]], out: Path, *, size: int = 32, seed: int = 7
                ) -> None:
    """A drawn control row for every clip of ``labels`` (id -> class names), seeded per id."""
    for sid, names in labels.items():
        _png(control_image(row, names, _rng(seed, sid), size), out / f"{sid}.png")


def write_oracle(labels: Mapping[str, Sequence[str]], out: Path, *, size: int = 32, seed: int = 7) -> None:
    """The true motifs of each clip, re-drawn at ``size`` pixels in a layout of their own (seeded per id)."""
    write_drawn("oracle", labels, out, size=size, seed=seed)


def write_colour_only(labels: Mapping[str, Sequence[str]], out: Path, *, size: int = 32) -> None:
    """A flat tint of each clip's motif colours: colour without shape."""
    write_drawn("colour-only", labels, out, size=size)


def write_all_motifs(labels: Mapping[str, Sequence[str]], out: Path, *, size: int = 32, seed: int = 17) -> None:
    """Every class's motif in every image (seeded per id)."""
    write_drawn("all-motifs", labels, out, size=size, seed=seed)


def write_noise(ids: Sequence[str], out: Path, *, size: int = 32, seed: int = 11) -> None:
    """Uniform noise images (seeded per id)."""
    from PIL import Image

    for sid in ids:
        rng = _rng(seed, sid)
        _png(Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)), out / f"{sid}.png")


def derangement(ids: Sequence[str], seed: int = 13) -> dict[str, str]:
    """A fixed permutation of ``ids`` with no fixed point: target id -> source id."""
    ids = sorted(ids)
    rng = np.random.default_rng(seed)
    shift = int(rng.integers(1, len(ids))) if len(ids) > 1 else 0
    order = rng.permutation(len(ids))
    return {ids[order[i]]: ids[order[(i + shift) % len(ids)]] for i in range(len(ids))}


def write_shuffled(source: Path, ids: Sequence[str], out: Path) -> None:
    """The images of ``source`` for ``ids``, each under another clip's id."""
    out.mkdir(parents=True, exist_ok=True)
    for target, origin in derangement(ids).items():
        shutil.copyfile(source / f"{origin}.png", out / f"{target}.png")


def coverage(image_embeddings: np.ndarray, text_embeddings: np.ndarray, label_sets: Sequence[Sequence[int]]
             ) -> dict[str, float]:
    """Per-source coverage (``macs_bench.metrics.coverage``) as the demo reports it: the mean overall and by the
    number of sources K (``coverage_<K>``), with the world's class-name text embeddings as the detector."""
    from macs_bench.metrics.coverage import source_coverage

    return coverage_summary(source_coverage(image_embeddings, text_embeddings, label_sets))


def coverage_summary(scores) -> dict[str, float]:
    """The mean of :class:`~macs_bench.metrics.coverage.CoverageScores` overall and by number of sources."""
    return {"coverage": scores.mean} | {f"coverage_{k}": v["coverage"] for k, v in scores.by_sources().items()}


def chance_coverage(label_sets: Sequence[Sequence[int]], n_classes: int) -> float:
    """Mean coverage of a ranking that knows nothing: |Y| / |V| per clip."""
    return float(np.mean([len(s) / n_classes for s in label_sets]))
