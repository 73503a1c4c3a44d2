"""Toy data for the stage-2 tests: seeded JPEG frames, seeded [K, D] embeddings, a toy manifest + MEDIA folder
(16 kHz WAV clips and 40 x 40 frames, the layout 'macs-bench datasets fetch' writes), and PNG readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

SR = 16000
SECONDS = 2
FRAME = 40  # frames are 40 x 40; the tiny generator crops / resizes them to 32 x 32


def write_frame(path: Path, seed: int, size: tuple[int, int] = (FRAME, FRAME)) -> Path:
    """A seeded RGB JPEG (smooth colour gradient plus noise, so it is not blank)."""
    rng = np.random.default_rng(seed)
    width, height = size
    base = rng.integers(0, 256, 3)
    ramp = np.linspace(0, 1, width)[None, :, None] * rng.integers(-120, 120, 3)
    noise = rng.integers(-30, 30, (height, width, 3))
    pixels = np.clip(base + ramp + noise, 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format="JPEG", quality=90)
    return path


def embeddings(seed: int, k: int = 6, dim: int = 32) -> torch.Tensor:
    """Seeded ranked-embedding stand-in [k, dim] (unit rows, like CLAP's)."""
    e = torch.randn(k, dim, generator=torch.Generator().manual_seed(seed))
    return e / e.norm(dim=-1, keepdim=True)


def clip_audio(i: int, rng: np.random.Generator) -> np.ndarray:
    """Two seconds of a tone plus band noise; different per clip."""
    t = np.arange(SECONDS * SR) / SR
    tone = 0.3 * np.sin(2 * np.pi * (200 + 55 * i) * t)
    return (tone + 0.05 * rng.standard_normal(len(t))).astype(np.float32)


def write_toy(root: Path, clips: int = 15, folds: int = 5, *, name: str = "toy", absent: bool = True
              ) -> tuple[Path, Path, list[str]]:
    """``root/manifest`` (dataset ``name``: ``clips`` samples with audio + frame, fold ``i % folds``, plus, with
    ``absent``, ``absent`` in fold 0 with no media at all) and ``root/media``. Returns (manifest folder, media
    folder, the ids with media)."""
    import soundfile as sf

    from macs_bench.datasets import Manifest, Sample

    media = root / "media"
    (media / "audio").mkdir(parents=True)
    rng = np.random.default_rng(0)
    samples, ids = [], []
    for i in range(clips):
        sid = f"clip{i:02d}"
        sf.write(media / "audio" / f"{sid}.wav", clip_audio(i, rng), SR, subtype="FLOAT")
        write_frame(media / "frames" / f"{sid}.jpg", seed=100 + i)
        samples.append(Sample(sid, ("Tone",), "", fold=i % folds))
        ids.append(sid)
    if absent:
        samples.append(Sample("absent", ("Tone",), "", fold=0))
    Manifest(name, samples).write(root / "manifest")
    return root / "manifest", media, ids


def png(path: Path) -> np.ndarray:
    """An image file as an int array [H, W, C] (checks it is an RGB PNG)."""
    with Image.open(path) as img:
        assert img.format == "PNG" and img.mode == "RGB", (path, img.format, img.mode)
        return np.asarray(img).astype(np.int64)


def max_diff(a: Path, b: Path) -> int:
    return int(np.abs(png(a) - png(b)).max())
