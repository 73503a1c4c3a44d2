"""Test media made with ffmpeg's lavfi sources, a manifest writer and a frame reader."""

import csv
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image

from macs_bench.datasets.manifest import COLUMNS

SIZE = "64x48"
RATE = 10


def make_video(path: Path, duration: float, *, audio="tone", video="seconds", t0: float = 0.0) -> Path:
    """A small clip. video='seconds': red encodes (second mod 12) * 20 of the *source* time (t0 + t), green the
    position within the second (x 255); 'black'; 'still' (a static gradient); None (no video stream).
    audio='tone', 'silent' or None."""
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y"]
    maps = []
    if video is not None:
        if video == "seconds":
            expr = f"r='mod(floor(T+{t0}),12)*20':g='(T+{t0}-floor(T+{t0}))*255':b='X*3'"
        elif video == "still":
            expr = "r='X*3':g='Y*4':b=100"
        else:
            expr = "r=0:g=0:b=0"
        cmd += ["-f", "lavfi", "-i", f"nullsrc=s={SIZE}:r={RATE}:d={duration},geq={expr}"]
        maps += ["-map", f"{len(maps) // 2}:v"]
    if audio is not None:
        src = f"sine=frequency=440:sample_rate=22050:duration={duration}" if audio == "tone" else \
            f"anullsrc=r=22050:cl=mono,atrim=end={duration}"
        cmd += ["-f", "lavfi", "-i", src]
        maps += ["-map", f"{len(maps) // 2}:a"]
    cmd += maps
    if video is not None:
        cmd += ["-c:v", "libx264", "-pix_fmt", "yuv444p", "-qp", "0", "-g", "10"]
    if audio is not None:
        cmd += ["-c:a", "aac", "-b:a", "64k"]
    cmd += ["-t", str(duration), str(path)]
    subprocess.run(cmd, check=True)
    return path


def write_manifest(folder: Path, rows: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "manifest.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in COLUMNS})
    return folder


def clip_row(ytid: str, start, end, frame=4, n_labels=2) -> dict:
    sid = f"{ytid}_{start}_{end}"
    return {"sample_id": sid, "ytid": ytid, "start": str(start), "end": str(end), "labels": "a;b"[: 2 * n_labels - 1],
            "n_labels": str(n_labels), "frame_seconds": str(frame), "split": "eval"}


def frame_colour(path: Path) -> tuple[float, float]:
    """(red, green) means of a frame: red = (source second mod 12) * 20, green = 255 * position in the second."""
    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=float).reshape(-1, 3).mean(0)
    return float(rgb[0]), float(rgb[1])


def make_av(path: Path, video_seconds: float, audio_seconds: float, audio_start: float = 0.0) -> Path:
    """A tiny clip whose audio stream starts at ``audio_start`` and lasts ``audio_seconds`` (a real stream start
    time, not leading silence), in the container the suffix names: mp4 (AAC), mkv or webm (Opus)."""
    codecs = {".mp4": ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"],
              ".mkv": ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "libopus"],
              ".webm": ["-c:v", "libvpx", "-b:v", "50k", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus"]}
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "lavfi", "-i",
                    f"nullsrc=s=32x24:r=4:d={video_seconds},geq=r='mod(floor(T),12)*20':g='X*8':b='Y*8'",
                    "-itsoffset", str(audio_start), "-f", "lavfi", "-i",
                    f"sine=frequency=440:sample_rate=16000:duration={audio_seconds}",
                    "-map", "0:v", "-map", "1:a", *codecs[path.suffix.lower()], str(path)], check=True)
    return path


def linked_clips(folder: Path, long_video: Path, prefix: str, n: int) -> tuple[Path, Path, list[dict]]:
    """``n`` clips of one linked 'full-length' video: (videos folder, manifest, rows)."""
    import os

    src = folder / "videos"
    src.mkdir()
    rows = [clip_row(f"{prefix}{i:0{11 - len(prefix)}d}"[:11], i, i + 10) for i in range(n)]
    for row in rows:
        os.symlink(long_video, src / f"{row['ytid']}.mp4")
    return src, write_manifest(folder / "m", rows), rows


def run_fetch_cli(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    """``macs-bench datasets fetch ARGS`` in this process: (exit code, stdout, stderr)."""
    import sys

    import pytest

    from macs_bench.cli import main

    monkeypatch.setattr(sys, "argv", ["macs-bench", "datasets", "fetch", *map(str, args)])
    with pytest.raises(SystemExit) as stop:
        main()
    out, err = capsys.readouterr()
    return stop.value.code, out, err
