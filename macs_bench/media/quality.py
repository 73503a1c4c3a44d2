"""The quality filter that makes AudioSet-Eval "filtered": silent audio, blank frames, frozen video.

The paper dropped 20 poor clips without naming them; these measurable criteria replace that. Each check
records its measured value, so the report can list every excluded clip and why.
"""

from __future__ import annotations

import wave
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class QualityThresholds:
    min_rms_dbfs: float = -60.0  # audio RMS below this (dB relative to full scale) is silent
    min_frame_std: float = 2.0  # grey-level std (0-255) of the selected frame below this is blank/uniform
    min_motion: float = 0.5  # largest mean abs grey difference between per-second frames below this is frozen

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


# at or below this a clip is digitally silent (all zeros, or dither at most): never ok, filter on or off
DIGITAL_SILENCE_DBFS = -90.0
SILENCE_FLOOR_DBFS = -200.0  # digital silence reads as this rather than -inf, so reports stay valid JSON


def rms_dbfs(wav: Path) -> float:
    with wave.open(str(wav), "rb") as fh:
        if fh.getsampwidth() != 2:
            raise ValueError(f"{wav}: expected 16-bit PCM")
        samples = np.frombuffer(fh.readframes(fh.getnframes()), dtype="<i2").astype(np.float64) / 32768.0
    rms = float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0
    return max(20 * float(np.log10(rms)), SILENCE_FLOOR_DBFS) if rms > 0 else SILENCE_FLOOR_DBFS


def _grey(path: Path, size: int = 128) -> np.ndarray:
    with Image.open(path) as img:
        img = img.convert("L")
        img.thumbnail((size, size))
        return np.asarray(img, dtype=np.float64)


def frame_std(path: Path) -> float:
    return float(_grey(path).std())


def motion(frames: list[Path]) -> float | None:
    """The largest mean absolute grey difference between consecutive per-second frames (None: < 2 frames)."""
    if len(frames) < 2:
        return None
    greys = [_grey(f) for f in frames]
    return max(float(np.abs(a - b).mean()) for a, b in zip(greys, greys[1:]) if a.shape == b.shape)


def assess(wav: Path, selected: list[Path], all_frames: list[Path], t: QualityThresholds) -> tuple[list[str], dict]:
    """``(problems, measured)``: problems are ``silent``, ``blank-frame``, ``frozen-video``."""
    measured: dict[str, float | None] = {"rms_dbfs": round(rms_dbfs(wav), 2)}
    problems = []
    if measured["rms_dbfs"] < t.min_rms_dbfs:
        problems.append("silent")
    if selected:
        measured["frame_std"] = round(min(frame_std(f) for f in selected), 3)
        if measured["frame_std"] < t.min_frame_std:
            problems.append("blank-frame")
    moved = motion(all_frames)
    if moved is not None:
        measured["motion"] = round(moved, 3)
        if moved < t.min_motion:
            problems.append("frozen-video")
    return problems, measured
