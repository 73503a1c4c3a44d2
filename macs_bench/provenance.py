"""Versions of the code that shapes a result, for the provenance every result file records."""

from __future__ import annotations

import shutil
import subprocess
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
