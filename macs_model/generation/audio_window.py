"""The stage-2 audio window: the stretch of each clip the separator and CLAP hear.

The release (``dataloader/llp.py``, ``process_audio``) takes ``input_length`` = 8 s at 16 kHz: a clip longer than
that gives a window starting at ``random.randint(0, n - window - 1)``, a shorter one is reflect-padded at its end.
It does so in training and, unseeded, at inference too. macs keeps the 8 s (the separator's positional embedding is
201 x 641, i.e. 8 s) and makes the draw reproducible:

- ``random`` (training): the same range as the release, drawn from a generator seeded by (run seed, epoch,
  sample id), so a resumed run and a rerun draw the same windows, independent of batching and processes;
- ``centre`` (generation): the window centred in the clip, ``(n - window) // 2``, recorded with the images.
"""

from __future__ import annotations

import numpy as np
import torch

from macs_bench.errors import MacsError
from macs_bench.models.protocol import sample_seed  # noqa: F401 - one per-sample seed hash, re-exported

MODES = ("random", "centre")


def window_start(n_samples: int, window: int, mode: str, *, seed: int = 0, epoch: int = 0,
                 sample_id: str = "") -> int:
    """First sample of the window of a clip of ``n_samples`` (0 when the clip is not longer than the window)."""
    if mode not in MODES:
        raise MacsError(f"unknown audio window mode {mode!r} (known: {', '.join(MODES)})")
    if n_samples <= window:
        return 0
    if mode == "centre":
        return (n_samples - window) // 2
    generator = torch.Generator().manual_seed(sample_seed(f"{epoch}:{sample_id}", seed))
    # the release's random.randint(0, n - window - 1), both ends included
    return int(torch.randint(0, n_samples - window, (), generator=generator))


def cut_window(audio: torch.Tensor, window: int, start: int) -> torch.Tensor:
    """``window`` samples of a clip [T] from ``start``; a shorter clip is reflect-padded at its end (numpy's
    ``reflect``, as the release pads)."""
    n = audio.shape[-1]
    if n > window:
        return audio[start:start + window].contiguous()
    if n == window:
        return audio
    if n < 2:
        return torch.nn.functional.pad(audio, (0, window - n))
    padded = np.pad(audio.cpu().numpy(), (0, window - n), mode="reflect")
    return torch.from_numpy(padded).to(audio.device, audio.dtype)
