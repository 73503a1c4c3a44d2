"""Control rows for the world demo's leaderboard, and the per-source coverage it reports.

- ``oracle``: each test clip's true motifs re-drawn in a new random layout (so FID is not zero by identity);
- ``shuffled``: a model's images handed to the wrong clips (a fixed derangement of the fold's ids);
- ``noise``: uniform noise images.
Each writes ``<sample_id>.png`` files as a generator would, so they are scored by the same code.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from macs_bench.io import atomic_write_bytes

def _png(image, path: Path) -> None:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())


def write_oracle(labels: Mapping[str, Sequence[str]], out: Path, *, size: int = 32, seed: int = 7) -> None:
    """The true motifs of each clip, re-drawn at ``size`` pixels in a layout of their own (seeded per id)."""
    import zlib

    from macs_bench.datasets.synthetic import draw_frame

    for sid, names in labels.items():
        rng = np.random.default_rng([seed, zlib.crc32(sid.encode())])
        _png(draw_frame(list(names), rng, 2 * size).resize((size, size)), out / f"{sid}.png")


def write_noise(ids: Sequence[str], out: Path, *, size: int = 32, seed: int = 11) -> None:
    """Uniform noise images (seeded per id)."""
    import zlib

    from PIL import Image

    for sid in ids:
        rng = np.random.default_rng([seed, zlib.crc32(sid.encode())])
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

    scores = source_coverage(image_embeddings, text_embeddings, label_sets)
    return {"coverage": scores.mean} | {f"coverage_{k}": v["coverage"] for k, v in scores.by_sources().items()}
