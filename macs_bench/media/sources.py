"""Where a clip's media comes from: a local folder of videos, a local FSD50K copy, or a downloader.

A downloader turns ``(ytid, start, end)`` into a local file holding (at least) that range, or raises
:class:`Unavailable` (permanent: removed, private, ...) or :class:`Transient` (worth retrying). The default is
yt-dlp's Python API; ``--downloader module:Class`` plugs in another (a mirror, a test double).
"""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path
from typing import Protocol

from macs_bench.errors import MacsError

VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".flv")


class Unavailable(Exception):
    """The clip cannot be obtained (a permanent reason, e.g. ``removed``, ``private``, ``too-short``)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


class Transient(Exception):
    """A failure worth retrying later (network error, rate limit, server error)."""


class Downloader(Protocol):
    def download(self, ytid: str, start: float, end: float, workdir: Path) -> Path:
        """Fetch the range ``[start, end]`` of video ``ytid`` into ``workdir``; return the file."""


# yt-dlp error texts -> permanent reasons. Anything unmatched is treated as transient and retried.
_PERMANENT = [  # specific reasons first: YouTube prefixes most of them with a generic "Video unavailable"
    (r"private video", "private"),
    (r"sign in to confirm your age|age-restricted|inappropriate", "age-restricted"),
    (r"available in your country|geo.?restrict", "geo-blocked"),
    (r"members-only|join this channel", "members-only"),
    (r"copyright", "removed-copyright"),
    (r"requested format is not available|no video formats", "no-formats"),
    (r"removed|terminated|no longer available|does not exist|has been deleted|video unavailable", "removed"),
]
_TRANSIENT = r"http error 5\d\d|http error 429|timed out|timeout|temporar|connection|reset by peer|network|ssl"


def classify_error(message: str) -> Exception:
    """Map a download error message to :class:`Unavailable` or :class:`Transient`."""
    text = message.lower()
    if re.search(_TRANSIENT, text):
        return Transient(message)
    for pattern, reason in _PERMANENT:
        if re.search(pattern, text):
            return Unavailable(reason, message.strip().splitlines()[-1][:200])
    return Transient(message)


class YtDlpDownloader:
    """Downloads just the clip's range with yt-dlp's Python API (no shell, no subprocess of ours).

    Video is capped at ``max_height`` pixels (720 by default): frames are taken at the downloaded resolution.
    """

    def __init__(self, quiet: bool = True, max_height: int = 720):
        self.quiet = quiet
        self.max_height = max_height

    def download(self, ytid: str, start: float, end: float, workdir: Path) -> Path:
        import yt_dlp
        from yt_dlp.utils import DownloadError, download_range_func

        options = {
            "quiet": self.quiet,
            "no_warnings": self.quiet,
            "noprogress": True,
            "format": f"bv*[height<={self.max_height}]+ba/b[height<={self.max_height}]/bv*+ba/b",
            "merge_output_format": "mkv",
            "outtmpl": {"default": str(Path(workdir).resolve() / "download.%(ext)s")},
            "download_ranges": download_range_func(None, [(start, end)]),
            "force_keyframes_at_cuts": True,
            "noplaylist": True,
            "retries": 2,
            "socket_timeout": 30,
        }
        url = f"https://www.youtube.com/watch?v={ytid}"  # the id is inside the URL, never a bare argument
        try:
            with yt_dlp.YoutubeDL(options) as ydl:
                ydl.download([url])
        except DownloadError as exc:
            raise classify_error(str(exc)) from None
        files = sorted(p for p in Path(workdir).glob("download.*") if not p.name.endswith((".part", ".ytdl")))
        if not files:
            raise Transient("yt-dlp reported success but wrote no file")
        return files[0]


def load_downloader(spec: str | None) -> Downloader:
    """``None`` -> yt-dlp; ``"module:Class"`` -> that class, constructed without arguments."""
    if spec is None:
        return YtDlpDownloader()
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise MacsError(f"--downloader {spec!r}: expected 'module:Class'")
    try:
        return getattr(importlib.import_module(module_name), attr)()
    except (ImportError, AttributeError) as exc:
        raise MacsError(f"--downloader {spec!r}: cannot load ({exc})") from None


class LocalVideos:
    """A folder of videos named ``<sample_id>``, ``<ytid>#<start>#<end>`` (Landscape's naming) or ``<ytid>``,
    with any of :data:`VIDEO_SUFFIXES`: full-length or already trimmed to the clip."""

    def __init__(self, folder: Path):
        self.folder = Path(folder).resolve()
        if not self.folder.is_dir():
            raise MacsError(f"{folder}: --source-dir is not a folder")

    def find(self, sample_id: str, ytid: str, start: str = "", end: str = "") -> tuple[Path, str] | None:
        """``(path, naming)`` with naming ``"sample"`` (the clip's own name) or ``"ytid"``, else ``None``."""
        stems = [(sample_id, "sample")]
        if ytid and start and end:
            stems.append((f"{ytid}#{start}#{end}", "sample"))
        if ytid:
            stems.append((ytid, "ytid"))
        for stem, naming in stems:
            if not stem:
                continue
            for suffix in VIDEO_SUFFIXES:
                candidate = self._inside(stem + suffix)
                if candidate.is_file():
                    return candidate, naming
        return None

    def _inside(self, name: str) -> Path:
        """``folder/name``, refused if the name could lead out of the folder. Symbolic links the user put in the
        folder are followed: they are the user's own mapping."""
        candidate = self.folder / name
        if "/" in name or "\\" in name or name.startswith(".") or Path(os.path.normpath(candidate)).parent != self.folder:
            raise Unavailable("outside-source-dir", f"{name!r} would leave {self.folder}")
        return candidate


class LocalFSD50K:
    """The official FSD50K layout: ``FSD50K.dev_audio/<id>.wav`` and ``FSD50K.eval_audio/<id>.wav``."""

    def __init__(self, folder: Path):
        self.folder = Path(folder).resolve()
        if not self.folder.is_dir():
            raise MacsError(f"{folder}: --source-dir is not a folder")
        if not any((self.folder / f"FSD50K.{split}_audio").is_dir() for split in ("dev", "eval")):
            raise MacsError(f"{folder}: no FSD50K.dev_audio/ or FSD50K.eval_audio/ folder (official layout)")

    def find(self, sample_id: str) -> Path | None:
        split, _, clip = sample_id.partition("_")
        if split not in ("dev", "eval") or not clip.isdigit():
            raise Unavailable("bad-id", f"{sample_id} is not dev_<id> or eval_<id>")
        candidate = self.folder / f"FSD50K.{split}_audio" / f"{clip}.wav"
        return candidate if candidate.is_file() else None
