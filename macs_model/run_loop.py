"""What both stages' training loops share: learning-rate schedules, the epoch order, the progress bar."""

from __future__ import annotations

import math

import torch


def cosine_with_warmup(step: int, total: int, warmup: int, min_ratio: float) -> float:
    """LR multiplier at optimiser step ``step`` (0-based): linear warm-up to 1, then cosine down to ``min_ratio``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    progress = min(max(progress, 0.0), 1.0)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def release_lr(step: int, total: int, accum: int) -> float:
    """LR multiplier at optimiser step ``step`` of the release's schedule, as it runs on one process.

    ``train.py`` / ``train_mixit.py`` build ``diffusers.get_scheduler("cosine", num_warmup_steps=(T // 10) * A,
    num_training_steps=T * A)`` with T optimiser steps and A accumulation steps, and accelerate steps the scheduler
    once per optimiser step. Linear warm-up from 0 over (T // 10) * A steps, then the start of a cosine over
    T * A steps, of which the run covers T.
    """
    warmup, span = (total // 10) * accum, total * accum
    if step < warmup:
        return step / max(1, warmup)
    progress = (step - warmup) / max(1, span - warmup)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))


def epoch_order(num_clips: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled clip order of one epoch: a function of (seed, epoch) only."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(num_clips, generator=generator)


def progress_bar(enabled: bool):
    """A rich progress bar (steps, rate, ETA), or a no-op context yielding None."""
    if not enabled:
        return _NullBar()
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn())


class _NullBar:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
