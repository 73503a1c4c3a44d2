"""A small scoring case on disk: a manifest, MEDIA (frames, audio) and a prediction folder."""

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
from PIL import Image

from macs_bench.datasets.manifest import COLUMNS


@dataclass
class Case:
    manifest: Path
    media: Path
    pred: Path
    ids: list


def _image(rng, path, size=(48, 64)):
    base = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
    Image.fromarray(base).resize(size[::-1], Image.BICUBIC).save(path)


def make_scoring_case(root: Path, n: int = 8, seed: int = 0, folds: int = 2) -> Case:
    rng = np.random.default_rng(seed)
    manifest, media, pred = root / "manifest", root / "media", root / "pred"
    for d in (manifest, media / "frames", media / "audio", pred):
        d.mkdir(parents=True, exist_ok=True)
    ids = [f"vid{i:08d}_0_10"[:11] + f"_{i}_{i + 10}" for i in range(n)]
    with open(manifest / "manifest.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for i, sid in enumerate(ids):
            writer.writerow([sid, sid[:11], i, i + 10, "a;b", "", 2, 4, i % folds, "eval"])
    t = np.arange(16000 * 2) / 16000
    for i, sid in enumerate(ids):
        _image(rng, media / "frames" / f"{sid}.jpg")
        _image(rng, pred / f"{sid}.png")
        tone = 0.2 * np.sin(2 * np.pi * (200 + 50 * i) * t) + 0.01 * rng.standard_normal(t.size)
        soundfile.write(media / "audio" / f"{sid}.wav", tone.astype(np.float32), 16000, subtype="PCM_16")
    return Case(manifest, media, pred, ids)
