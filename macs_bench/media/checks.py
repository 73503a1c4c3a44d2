"""What a clip must pass before it counts as ``ok``: real audio covering the range (padding measured), a
well-formed WAV of the exact length, decodable frames, and (when on) the quality filter's explanation."""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

from PIL import Image

from macs_bench.media import ffmpeg
from macs_bench.media.quality import QualityThresholds
from macs_bench.media.sources import Unavailable

DURATION_TOLERANCE = 0.5  # seconds a source may fall short of the range and still count (padded with silence)
LATE_AUDIO_SLACK = 2.0  # audio may start this much after the range (a cut off the keyframe): padded there


def explain(problems: list[str], measured: dict[str, Any], t: QualityThresholds) -> str:
    """``"silent (rms_dbfs -200.0 < -60.0)"``: each problem with its measurement and threshold."""
    keys = {"silent": ("rms_dbfs", t.min_rms_dbfs), "blank-frame": ("frame_std", t.min_frame_std),
            "frozen-video": ("motion", t.min_motion)}
    return ", ".join(f"{p} ({keys[p][0]} {measured.get(keys[p][0])} < {keys[p][1]})" for p in problems)


def audio_padding(info: ffmpeg.MediaInfo, offset: float, duration: float) -> tuple[float, float]:
    """Seconds of silence the extraction adds before and after the real audio to fill ``[offset, offset +
    duration]`` of the file's timeline; ``too-short`` when that would be more than a slip at either end."""
    assert info.audio_start is not None and info.audio_end is not None
    end = offset + duration
    pad_start = max(0.0, info.audio_start - offset)
    pad_end = max(0.0, end - info.audio_end)
    if pad_end > DURATION_TOLERANCE:
        raise Unavailable("too-short", f"audio ends at {info.audio_end:.2f} s, the range needs it to {end:.2f} s")
    if pad_start > LATE_AUDIO_SLACK:
        raise Unavailable("too-short", f"audio starts at {info.audio_start:.2f} s, the range starts at "
                                       f"{offset:.2f} s")
    return round(pad_start, 3), round(pad_end, 3)


def verify_image(path: Path) -> None:
    try:
        with Image.open(path) as img:
            img.load()
    except Exception as exc:  # PIL raises many types for a broken file
        raise Unavailable("corrupt", f"frame {path.name} undecodable: {exc}") from None


def verify_wav(wav: Path, n_samples: int | None) -> None:
    """16 kHz mono PCM16, not empty, and (when given) exactly ``n_samples`` long."""
    try:
        with wave.open(str(wav), "rb") as fh:
            shape = (fh.getnchannels(), fh.getframerate(), fh.getsampwidth(), fh.getnframes())
    except (OSError, wave.Error, EOFError) as exc:
        raise Unavailable("corrupt", f"extracted audio unreadable: {exc}") from None
    if shape[:3] != (1, ffmpeg.SAMPLE_RATE, 2) or shape[3] == 0:
        raise Unavailable("corrupt", f"extracted audio is {shape}, not 16 kHz mono PCM16")
    if n_samples is not None and shape[3] != n_samples:
        raise Unavailable("too-short", f"extracted {shape[3]} samples, expected {n_samples}")
