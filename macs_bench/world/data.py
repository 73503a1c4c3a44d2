"""The world's training data in memory and the measures its trainers share: benchmark clips with JPEG frames
(:func:`world_data`), single-source clips for the CLAP-like pair, seeded batches, and the top-K hit rate that
coverage counts. Used by :mod:`.train`, :mod:`.train_sd` and the gate."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from macs_bench.world.synthetic import CLASSES, make_clip, source_counts
from macs_bench.world.towers import image_tensor

SECONDS = 2.0
SAMPLES = int(SECONDS * 16000)


def jpeg(image):
    """The frame as the benchmark stores it (JPEG, quality 95) and reads it back."""
    from PIL import Image

    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95)
    buffer.seek(0)
    with Image.open(buffer) as img:
        return img.convert("RGB").copy()


def hot_of(sets) -> torch.Tensor:
    return torch.tensor([[float(c in s) for c in CLASSES] for s in sets])


def world_data(n: int, seed: int, root: Path | None = None, *, samples: int = SAMPLES) -> dict[str, Any]:
    """``n`` benchmark clips (1-5 sources, evenly): audio [N, T] as the WAV reads back, JPEG frames as
    [N, 3, 32, 32] in [0, 1], multi-hot labels [N, 12], label sets. ``root`` is unused (kept for callers)."""
    rng = np.random.default_rng(seed)
    clips = [make_clip(k, samples, rng) for k in source_counts(n, rng)]
    sets = [c.names for c in clips]
    return {"audio": torch.from_numpy(np.stack([c.mix for c in clips]).astype(np.float32)),
            "images": image_tensor([jpeg(c.frame) for c in clips]), "hot": hot_of(sets), "sets": sets}


def single_source_data(n: int, seed: int, samples: int = SAMPLES) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` single-source clips (classes in turn, shuffled): a random peak level of 0.05-0.9 and, half of the
    time, sounding over only a 40-100 % stretch of the clip. Returns audio [N, T] and class indices [N]."""
    from macs_bench.world.sounds import _window, quantise, sound

    rng = np.random.default_rng(seed)
    labels = rng.permutation([i % len(CLASSES) for i in range(n)])
    audio = []
    for c in labels:
        wave = sound(CLASSES[c], samples, rng) * _window(samples, rng, full=rng.uniform() < 0.5)
        audio.append(quantise(wave * rng.uniform(0.05, 0.9) / max(1e-9, float(np.abs(wave).max()))))
    return torch.from_numpy(np.stack(audio).astype(np.float32)), torch.from_numpy(labels)


def batches(n: int, batch: int, steps: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    order: list[int] = []
    for _ in range(steps):
        while len(order) < batch:
            order += torch.randperm(n, generator=generator).tolist()
        yield torch.tensor(order[:batch])
        order = order[batch:]


def top_k_hits(scores: torch.Tensor, hot: torch.Tensor) -> float:
    """Share of true classes among each row's top-|labels| scored classes (what coverage counts)."""
    hits = total = 0
    for row, truth in zip(scores, hot):
        k = int(truth.sum())
        hits += int(truth[row.topk(k).indices].sum())
        total += k
    return hits / max(1, total)


def chance_top_k_hits(hot: torch.Tensor) -> float:
    """``top_k_hits`` of a ranking that knows nothing: sum |Y|^2 / |V| over sum |Y|."""
    return float((hot.sum(1) ** 2 / hot.shape[1]).sum() / hot.sum())
