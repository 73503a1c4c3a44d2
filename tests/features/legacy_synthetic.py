"""The score regression test's frozen inputs: the four-class synthetic benchmark the recorded numbers were
computed on (the builder that lived in ``macs_bench/datasets/synthetic.py`` before the world of issue 21).

Kept here, byte for byte, so that changing the world never changes what the scoring regression test compares;
the world itself lives in ``macs_bench.world.synthetic``.
"""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from macs_bench.datasets.folds import assign_folds, label_count_bucket
from macs_bench.datasets.manifest import Manifest, Sample
from macs_bench.errors import MacsError
from macs_bench.io import atomic_write_bytes
from macs_bench.media.layout import MediaLayout

CLASSES = ("Hum", "Whistle", "Rain", "Clicks")
SAMPLE_RATE = 16000


@dataclass(frozen=True)
class SyntheticSet:
    """Where a synthetic benchmark was written."""

    manifest: Path
    media: Path
    n_clips: int


def _sound(name: str, samples: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(samples) / SAMPLE_RATE
    if name == "Hum":
        f0 = rng.uniform(110, 180)
        return sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6.3)) / k for k in (1, 2, 3))
    if name == "Whistle":
        f0 = rng.uniform(1800, 2600)
        return np.sin(2 * np.pi * f0 * t + 8 * np.sin(2 * np.pi * 5 * t))
    if name == "Rain":
        spectrum = np.fft.rfft(rng.standard_normal(samples))
        freqs = np.fft.rfftfreq(samples, 1 / SAMPLE_RATE)
        spectrum[(freqs < 4000) | (freqs > 7000)] = 0
        return np.fft.irfft(spectrum, samples) * 4
    if name == "Clicks":
        out = np.zeros(samples)
        period = int(SAMPLE_RATE / rng.uniform(6, 12))
        for start in range(int(rng.integers(0, period)), samples, period):
            n = min(160, samples - start)
            out[start:start + n] += np.exp(-np.arange(n) / 20.0) * np.sin(2 * np.pi * 900 * np.arange(n) / SAMPLE_RATE)
        return out * 2
    raise ValueError(name)


def _motif(draw: ImageDraw.ImageDraw, name: str, box: tuple[int, int, int, int]) -> None:
    x0, y0, x1, y1 = box
    if name == "Hum":
        draw.ellipse(box, fill=(220, 40, 40))
    elif name == "Whistle":
        draw.rectangle(box, fill=(40, 70, 220))
    elif name == "Rain":
        for x in range(x0, x1, 4):
            draw.rectangle((x, y0, x + 1, y1), fill=(40, 190, 60))
    else:
        draw.polygon([(x0, y1), ((x0 + x1) // 2, y0), (x1, y1)], fill=(235, 205, 30))


def draw_frame(names: list[str] | tuple[str, ...], rng: np.random.Generator, image_size: int = 64) -> Image.Image:
    """The old frame: the classes' motifs at random places and sizes on the grey ground."""
    image = Image.new("RGB", (image_size, image_size), (128, 128, 128))
    draw = ImageDraw.Draw(image)
    for name in names:
        size = int(rng.integers(image_size // 4, image_size // 2))
        x, y = (int(v) for v in rng.integers(0, image_size - size, size=2))
        _motif(draw, name, (x, y, x + size, y + size))
    return image


def _wav_bytes(audio: np.ndarray) -> bytes:
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as fh:
        fh.setnchannels(1)
        fh.setsampwidth(2)
        fh.setframerate(SAMPLE_RATE)
        fh.writeframes(pcm.tobytes())
    return buffer.getvalue()


def write_synthetic(root: str | Path, *, n_clips: int = 80, seconds: float = 2.0, image_size: int = 64,
                    seed: int = 0, prefix: str = "syn") -> SyntheticSet:
    """Write ``n_clips`` clips under ``root`` (manifest/ and media/); rewriting with the same arguments gives the
    same bytes, so a rerun changes nothing."""
    if n_clips < 5:
        raise MacsError(f"a synthetic benchmark needs at least 5 clips (5 folds), got {n_clips}")
    root = Path(root).expanduser()
    media = MediaLayout(root / "media")
    rng = np.random.default_rng(seed)
    samples = int(seconds * SAMPLE_RATE)
    ids, labels = [], []
    for i in range(n_clips):
        k = int(rng.integers(1, 4))
        chosen = sorted(rng.choice(len(CLASSES), size=k, replace=False).tolist())
        names = [CLASSES[c] for c in chosen]
        mix = sum(rng.uniform(0.4, 1.0) * _sound(n, samples, rng) for n in names)
        mix = 0.8 * mix / max(1e-6, float(np.max(np.abs(mix))))
        image = draw_frame(names, rng, image_size)
        sid = f"{prefix}{i:04d}"
        atomic_write_bytes(media.audio(sid), _wav_bytes(mix))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=95)
        atomic_write_bytes(media.frame(sid), buffer.getvalue())
        ids.append(sid)
        labels.append(tuple(names))
    folds = assign_folds(ids, [label_count_bucket(len(x)) for x in labels], n_folds=5, seed=seed)
    Manifest("synthetic", [Sample(sid, lab, "", fold=fold) for sid, lab, fold in zip(ids, labels, folds)]
             ).write(root / "manifest")
    return SyntheticSet(root / "manifest", media.root, n_clips)
