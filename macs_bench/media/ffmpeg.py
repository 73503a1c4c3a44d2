"""ffprobe/ffmpeg, always as argument lists with absolute paths (a name beginning with '-' stays a path).

The ffmpeg command lines are built with ffmpeg-python's graph API and run as lists (never a shell). ffprobe
stays a hand-written list: ffmpeg-python's ``probe`` takes no timeout and cannot ask for packets, and a hung
probe of a damaged download must not stall a fetch worker.

One ffmpeg pass per clip writes the 16 kHz mono WAV of exactly the clip length and one JPEG per whole second:
for second k, the frame on screen at k + 0.5 s (the middle of that second), measured on the file's own
timeline, so streams that start late, low frame rates and variable frame rates all land on the right second.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import ffmpeg as ffmpeg_python

from macs_bench.errors import MacsError

SAMPLE_RATE = 16000


class ProbeError(Exception):
    """ffprobe could not read the file (corrupt, truncated, not media)."""


class ExtractError(Exception):
    """ffmpeg failed or wrote something other than what was asked for; ``transient`` when the cause is the
    machine (timeout, full disk, killed) rather than the file."""

    def __init__(self, message: str, transient: bool = False):
        super().__init__(message)
        self.transient = transient


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise MacsError(f"{name}: not found on PATH; install ffmpeg (the README's set-up does)")
    return path


@dataclass(frozen=True)
class MediaInfo:
    duration: float  # container duration in seconds (from the packets when the container states none)
    audio_start: float | None  # where the first audio stream starts and ends on the file's timeline (s);
    audio_end: float | None  # None: no audio stream
    has_video: bool
    width: int = 0
    height: int = 0

    @property
    def has_audio(self) -> bool:
        return self.audio_end is not None


def probe(path: Path, timeout: float = 60) -> MediaInfo:
    cmd = [tool("ffprobe"), "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
           str(Path(path).resolve())]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise ProbeError(f"ffprobe timed out after {timeout:.0f} s") from None
    if out.returncode != 0:
        raise ProbeError(_last_line(out.stderr) or f"ffprobe exited with {out.returncode}")
    data = json.loads(out.stdout or "{}")
    streams = data.get("streams", [])
    fmt_duration = _float(data.get("format", {}).get("duration"))
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    video = [s for s in streams if s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic")]
    if fmt_duration is None and not streams:
        raise ProbeError("no media streams")
    audio_start = audio_end = None
    if audio:
        audio_start, audio_end = _audio_range(path, audio[0], timeout)
    if fmt_duration is None:
        stream_ends = [_float(st.get("duration")) for st in audio + video]
        fmt_duration = max([d for d in stream_ends if d] or [_packet_end(path, None, timeout)])
    width = int(video[0].get("width", 0)) if video else 0
    height = int(video[0].get("height", 0)) if video else 0
    return MediaInfo(fmt_duration, audio_start, audio_end, bool(video), width, height)


def _audio_range(path: Path, stream: dict, timeout: float) -> tuple[float, float]:
    """``(start, end)`` of an audio stream: MP4 states its duration; Matroska and WebM state none, only a
    ``DURATION`` tag holding the stream's end time; failing both, the last packet's end. Never the container's
    duration, which is the longest stream's (usually the video's)."""
    start = _float(stream.get("start_time")) or 0.0
    duration = _float(stream.get("duration"))
    if duration is not None:
        return start, start + duration
    tags = {key.upper(): value for key, value in (stream.get("tags") or {}).items()}
    end = _clock(tags.get("DURATION"))
    return start, end if end is not None else _packet_end(path, "a:0", timeout)


def _clock(value) -> float | None:
    """``"00:00:25.008000000"`` -> 25.008 (the form of Matroska's DURATION tag); ``None`` if not that form."""
    match = re.fullmatch(r"(\d+):(\d{2}):(\d{2}(?:\.\d+)?)", str(value or "").strip())
    if not match:
        return None
    return int(match[1]) * 3600 + int(match[2]) * 60 + float(match[3])


def _packet_end(path: Path, stream: str | None, timeout: float) -> float:
    """The end time of the last packet (demuxing only, no decoding), for files whose headers state no duration."""
    cmd = [tool("ffprobe"), "-v", "error", "-show_entries", "packet=pts_time,duration_time", "-of", "csv=p=0"]
    if stream:
        cmd += ["-select_streams", stream]
    out = subprocess.run(cmd + [str(Path(path).resolve())], capture_output=True, text=True, timeout=timeout)
    end = 0.0
    for line in out.stdout.splitlines():
        parts = [_float(x) for x in line.split(",")[:2]]
        if parts and parts[0] is not None:
            end = max(end, parts[0] + (parts[1] or 0.0) if len(parts) > 1 else parts[0])
    return end


# every ffmpeg run: quiet but for errors, never reading stdin, overwriting its own temporary outputs
FFMPEG_GLOBALS = ("-hide_banner", "-loglevel", "error", "-nostdin", "-y")


def clip_command(src: Path, offset: float, duration: float, n_frames: int, wav: Path,
                 frames_dir: Path | None) -> list[str]:
    """The argument list of :func:`extract_clip`, built with ffmpeg-python (every filter it needs is
    expressible there). Paths are absolute, so a name beginning with '-' is never read as an option."""
    clip = ffmpeg_python.input(str(Path(src).resolve()), ss=f"{offset:.3f}", t=f"{duration:.3f}")
    n_samples = round(duration * SAMPLE_RATE)
    # async/first_pts fill a late-starting audio stream with silence instead of pulling it early; apad and
    # atrim make the length exact to the sample (AAC priming and short tails included).
    audio = (clip["a:0"]
             .filter("aresample", SAMPLE_RATE, **{"async": 1, "first_pts": 0})
             .filter("aformat", channel_layouts="mono")
             .filter("apad", whole_len=n_samples)
             .filter("atrim", end_sample=n_samples))
    outputs = [ffmpeg_python.output(audio, str(Path(wav).resolve()), acodec="pcm_s16le", ar=SAMPLE_RATE, ac=1)]
    if frames_dir is not None:
        # shift by half a second, then sample at 1 fps: output frame k is the frame on screen at k + 0.5 s
        video = clip["v:0"].filter("setpts", "PTS-0.5/TB").filter("fps", fps=1, start_time=0, round="up")
        outputs.append(ffmpeg_python.output(video, str(Path(frames_dir).resolve() / "%03d.jpg"),
                                            **{"frames:v": n_frames, "q:v": 2, "start_number": 0}))
    return ffmpeg_python.compile(ffmpeg_python.merge_outputs(*outputs), cmd=[tool("ffmpeg"), *FFMPEG_GLOBALS])


def extract_clip(src: Path, offset: float, duration: float, n_frames: int, wav: Path, frames_dir: Path | None,
                 timeout: float = 300) -> list[Path]:
    """One pass: ``wav`` (16 kHz mono, exactly ``duration`` s) and, with ``frames_dir``, ``n_frames`` JPEGs
    ``000.jpg``... where frame k is the video at ``offset + k + 0.5`` s. Returns the frame paths."""
    _run(clip_command(src, offset, duration, n_frames, wav, frames_dir), timeout)
    if frames_dir is None:
        return []
    return [Path(frames_dir) / f"{k:03d}.jpg" for k in range(n_frames)]


def audio_command(src: Path, wav: Path) -> list[str]:
    """The argument list of :func:`extract_audio` (ffmpeg-python)."""
    track = ffmpeg_python.input(str(Path(src).resolve()))["a:0"]
    out = ffmpeg_python.output(track, str(Path(wav).resolve()), ac=1, ar=SAMPLE_RATE, acodec="pcm_s16le")
    return ffmpeg_python.compile(out, cmd=[tool("ffmpeg"), *FFMPEG_GLOBALS])


def extract_audio(src: Path, wav: Path, timeout: float = 300) -> None:
    """The whole audio track as a 16 kHz mono WAV (FSD50K clips keep their own length)."""
    _run(audio_command(src, wav), timeout)


def _run(cmd: list[str], timeout: float) -> None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise ExtractError(f"ffmpeg timed out after {timeout:.0f} s", transient=True) from None
    if out.returncode != 0:
        message = _last_line(out.stderr) or f"ffmpeg exited with {out.returncode}"
        machine = out.returncode < 0 or "no space left" in out.stderr.lower() or "cannot allocate" in out.stderr.lower()
        raise ExtractError(message, transient=machine)


def _float(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""
