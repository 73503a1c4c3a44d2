"""Versions of the code that shapes a result, for the provenance every result file records."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path
from importlib.metadata import PackageNotFoundError, version


def package_versions(*names: str) -> dict[str, str | None]:
    """Installed distribution versions (``None`` for one that is not installed)."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def ffmpeg_version() -> str | None:
    """The first line of ``ffmpeg -version``, or ``None`` without ffmpeg."""
    binary = shutil.which("ffmpeg")
    if binary is None:
        return None
    try:
        lines = subprocess.run([binary, "-hide_banner", "-version"], capture_output=True, text=True,
                               timeout=30).stdout.splitlines()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return lines[0] if lines else None


def source_commit() -> dict[str, str | bool] | None:
    """``{"commit": <sha>, "dirty": bool}`` of the git checkout this package runs from, or ``None`` (an
    installed wheel, or no git)."""
    binary = shutil.which("git")
    if binary is None:
        return None
    here = str(Path(__file__).resolve().parent)
    try:
        head = subprocess.run([binary, "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=30)
        if head.returncode != 0:
            return None
        status = subprocess.run([binary, "-C", here, "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}


def digest_lines(rows) -> str:
    """sha256 of tab-joined rows, one per line: one hash that pins a whole list of (id, file hash, ...)."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(("\t".join(row) + "\n").encode())
    return digest.hexdigest()


# every library whose code changes a score: decoding, resizing, resampling, the networks, the metric maths
SCORE_LIBRARIES = ("torch", "torchvision", "torchaudio", "soundfile", "numpy", "scipy", "clean-fid",
                   "open-clip-torch", "wav2clip", "pillow", "transformers", "torchmetrics")
