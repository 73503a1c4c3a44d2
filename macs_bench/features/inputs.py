"""Reading the files the encoders see, with one-line errors that name the file.

Images are converted as clean-fid converts them: ``PIL.Image.open(path).convert("RGB")``. Grayscale is
replicated to three channels, an alpha channel is dropped (not composited), palette images are expanded, and
16-bit images are clipped to 0..255 by PIL (a 16-bit PNG that uses the full range saturates: save 8-bit
predictions). Audio is read with soundfile, mixed to mono and resampled to 16 kHz.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from macs_bench.errors import MacsError

AUDIO_RATE = 16000
SILENCE_PEAK = 1e-4  # a waveform whose absolute peak is below this is silent: its embedding is meaningless
MIN_AUDIO_SECONDS = 0.1  # wav2clip's spectrogram needs more than its 512-sample window


def load_image(path: Path) -> np.ndarray:
    """``uint8`` array ``H x W x 3``."""
    try:
        with Image.open(path) as img:
            _warn_if_saturating(img, path)
            rgb = img.convert("RGB")
            array = np.asarray(rgb, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise MacsError(f"{path}: unreadable or corrupt image ({exc})") from None
    if array.ndim != 3 or array.shape[0] == 0 or array.shape[1] == 0:
        raise MacsError(f"{path}: empty image")
    return array


def _warn_if_saturating(img: Image.Image, path: Path) -> None:
    """16-bit (and 32-bit) images are clipped to 0..255 by PIL's RGB conversion: say so when that loses values."""
    if img.mode not in ("I;16", "I;16B", "I;16L", "I", "F"):
        return
    peak = img.getextrema()[1]
    if peak > 255:
        warnings.warn(f"{path}: a {img.mode} ({'16' if img.mode.startswith('I;16') else '32'}-bit) image with "
                      f"values up to {peak}: converting to RGB saturates everything above 255 (save 8-bit images)",
                      UserWarning, stacklevel=3)


def load_audio(path: Path) -> np.ndarray:
    """``float32`` mono waveform at 16 kHz."""
    import soundfile

    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, OSError, soundfile.LibsndfileError) as exc:
        raise MacsError(f"{path}: unreadable audio ({exc})") from None
    if data.size == 0:
        raise MacsError(f"{path}: empty audio")
    wave = data.mean(axis=1)
    if rate != AUDIO_RATE:
        import torch
        import torchaudio.functional as AF

        wave = AF.resample(torch.from_numpy(wave), rate, AUDIO_RATE).numpy()
    if not np.isfinite(wave).all():
        raise MacsError(f"{path}: audio has NaN or infinite samples")
    if wave.size < MIN_AUDIO_SECONDS * AUDIO_RATE:
        raise MacsError(f"{path}: audio too short ({wave.size / AUDIO_RATE:.3f} s; at least {MIN_AUDIO_SECONDS} s)")
    if np.abs(wave).max() < SILENCE_PEAK:
        raise MacsError(f"{path}: silent audio (peak below {SILENCE_PEAK})")
    return wave.astype(np.float32)
