"""Where a clip's media comes from: a local folder of videos, a local FSD50K copy, or a downloader.

A downloader turns ``(ytid, start, end)`` into a local file holding (at least) that range, or raises
:class:`Unavailable` (permanent: removed, private, ...) or :class:`Transient` (worth retrying). The default is
yt-dlp's Python API; ``--downloader module:Class`` plugs in another (a mirror, a test double).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from macs_bench.errors import MacsError

VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".flv")


class Unavailable(Exception):
    """The clip cannot be obtained (a permanent reason, e.g. ``removed``, ``private``, ``too-short``)."""

    def __init__(self, reason: str, detail: str = "", quality: dict[str, Any] | None = None):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail, self.quality = reason, detail, quality or {}


class Transient(Exception):
    """A failure worth retrying later. ``kind``: ``network`` (no connection, DNS, timeouts), ``bot-check``
    (YouTube asks to sign in), ``rate-limited`` (HTTP 429) or ``transient`` (a server error, anything else).
    Rate limits and bot checks call for a long pause rather than a quick retry; a run of network failures or
    bot checks stops the run (:mod:`macs_bench.media.network`)."""

    def __init__(self, message: str = "", rate_limited: bool = False, kind: str | None = None):
        super().__init__(message)
        self.kind = kind or ("rate-limited" if rate_limited else "transient")
        self.log: list[str] = []  # the downloader's own warnings, for the ledger

    @property
    def rate_limited(self) -> bool:
        return self.kind in ("rate-limited", "bot-check")


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
    (r"removed|terminated|no longer available|does not exist|has been deleted|video unavailable", "removed"),
]
_BOT_CHECK = r"not a bot|confirm you.?re not"
_RATE_LIMITED = r"http error 429|too many requests|rate.?limit|try again later"
# permanent for this id (its formats), not a rate limit: retried only with --retry-unavailable
_NO_FORMAT = r"requested format is not available|no video formats"
_NETWORK = (r"name resolution|name or service not known|getaddrinfo|nodename nor servname|failed to resolve|"
            r"network is unreachable|no route to host|connection refused|connection reset|reset by peer|"
            r"connection aborted|remote end closed|timed out|timeout|urlopen error|unable to connect|ssl|network")
_TRANSIENT = r"http error 5\d\d|temporar|connection"
# what yt-dlp puts around its own text: "[youtube] <id>: ", and URLs, which hold the id
_TAG = re.compile(r"\[[\w:.-]+\]\s*(?:[A-Za-z0-9_-]{11}:\s)?")
_URL = re.compile(r"\S+://\S+")


def error_text(message: str, ytid: str | None = None) -> str:
    """yt-dlp's own words in an error message: without ``[extractor] <id>:`` tags, URLs and the video id, so
    an id such as ``r6ssLI51RZ4`` ("ssl") cannot decide the class."""
    text = _TAG.sub(" ", _URL.sub(" ", message))
    if ytid:
        text = text.replace(ytid, " ")
    return " ".join(text.split()).lower()


def classify_error(message: str, ytid: str | None = None) -> Exception:
    """Map a download error message to :class:`Unavailable` or :class:`Transient`."""
    text = error_text(message, ytid)
    if re.search(_BOT_CHECK, text):
        return Transient(message, kind="bot-check")
    if re.search(_RATE_LIMITED, text):
        return Transient(message, kind="rate-limited")
    if re.search(_NO_FORMAT, text):
        return Unavailable("no-formats", message.strip().splitlines()[-1][:200])
    if re.search(_NETWORK, text):
        return Transient(message, kind="network")
    if re.search(_TRANSIENT, text):
        return Transient(message)
    for pattern, reason in _PERMANENT:
        if re.search(pattern, text):
            return Unavailable(reason, message.strip().splitlines()[-1][:200])
    return Transient(message)


class _Log:
    """yt-dlp's logger: its warnings, errors and retry lines are kept in ``lines`` (the ledger's detail of a
    failed clip) and passed to ``log`` if given, never printed to the terminal: offline, yt-dlp says about
    eight lines per clip."""

    def __init__(self, log: Callable[[str], None] | None, lines: list[str] | None = None):
        self.log = log
        self.lines = lines if lines is not None else []

    def debug(self, message: str) -> None:
        pass

    def info(self, message: str) -> None:
        pass

    def warning(self, message: str) -> None:
        if len(self.lines) < 50:
            self.lines.append(" ".join(message.split())[:300])
        if self.log is not None:
            self.log(message)

    error = warning


class YtDlpDownloader:
    """Downloads just the clip's range with yt-dlp's Python API (no shell, no subprocess of ours).

    Video is capped at ``max_height`` pixels (720 by default): frames are taken at the downloaded resolution.
    ``cookies`` is a Netscape cookies file; ``extractor_args`` are yt-dlp's ``--extractor-args`` strings
    (e.g. ``youtube:po_token=web.gvs+TOKEN``); ``log``, if given, receives yt-dlp's warnings and errors (they
    are also kept in the ledger's detail of a failed clip). :meth:`probe` is the connectivity check a run
    makes before its first download.
    """

    def __init__(self, quiet: bool = True, max_height: int = 720, cookies: str | os.PathLike | None = None,
                 extractor_args: tuple[str, ...] = (), log: Callable[[str], None] | None = None):
        self.quiet = quiet
        self.max_height = max_height
        self.cookies = str(Path(cookies).expanduser().resolve()) if cookies else None
        if self.cookies and not Path(self.cookies).is_file():
            raise MacsError(f"{cookies}: the cookies file does not exist")
        self.extractor_args = parse_extractor_args(extractor_args)
        self.log = log

    def ydl_options(self, start: float, end: float, workdir: Path, lines: list[str] | None = None) -> dict[str, Any]:
        from yt_dlp.utils import download_range_func

        options: dict[str, Any] = {
            "quiet": self.quiet,
            "no_warnings": self.quiet,
            "noprogress": True,
            "logger": _Log(self.log, lines),
            "format": f"bv*[height<={self.max_height}]+ba/b[height<={self.max_height}]/bv*+ba/b",
            "merge_output_format": "mkv",
            "outtmpl": {"default": str(Path(workdir).resolve() / "download.%(ext)s")},
            "download_ranges": download_range_func(None, [(start, end)]),
            "force_keyframes_at_cuts": True,
            "noplaylist": True,
            "retries": 2,
            "socket_timeout": 30,
        }
        if self.cookies:
            options["cookiefile"] = self.cookies
        if self.extractor_args:
            options["extractor_args"] = self.extractor_args
        return options

    def download(self, ytid: str, start: float, end: float, workdir: Path) -> Path:
        import yt_dlp
        from yt_dlp.utils import DownloadError

        url = f"https://www.youtube.com/watch?v={ytid}"  # the id is inside the URL, never a bare argument
        lines: list[str] = []
        try:
            with yt_dlp.YoutubeDL(self.ydl_options(start, end, workdir, lines)) as ydl:
                ydl.download([url])
        except DownloadError as exc:
            error = classify_error(str(exc), ytid)
            error.log = lines[-20:]
            raise error from None
        files = sorted(p for p in Path(workdir).glob("download.*") if not p.name.endswith((".part", ".ytdl")))
        if not files:
            raise Transient("yt-dlp reported success but wrote no file")
        return files[0]

    def probe(self) -> str | None:
        """``None`` when YouTube answers, else why not (see :func:`macs_bench.media.network.probe`)."""
        from macs_bench.media import network

        return network.probe()

    def describe(self) -> dict[str, Any]:
        """What the report records: the cookies file by path only, extractor arguments without secret values."""
        return {"cookies": self.cookies,
                "extractor_args": {ie: {k: (["<redacted>"] if SECRET_ARG.search(k) else v) for k, v in args.items()}
                                   for ie, args in self.extractor_args.items()}}


SECRET_ARG = re.compile(r"token|secret|key|pass|auth|cookie|visitor|session", re.I)


def parse_extractor_args(specs: tuple[str, ...] | list[str]) -> dict[str, dict[str, list[str]]]:
    """yt-dlp's own parser for ``--extractor-args IE_KEY:ARG=VAL;ARG=VAL`` strings."""
    if not specs:
        return {}
    import yt_dlp

    bad = [spec for spec in specs if not re.match(r"[\w-]+:", spec)]
    if bad:
        raise MacsError(f"extractor argument {bad[0]!r}: expected IE_KEY:ARG=VALUE[;ARG=VALUE]")
    argv = [part for spec in specs for part in ("--extractor-args", spec)]
    try:
        with contextlib.redirect_stderr(io.StringIO()) as err:
            return yt_dlp.parse_options(argv).ydl_opts["extractor_args"]
    except SystemExit:
        lines = err.getvalue().strip().splitlines() or ["yt-dlp refused them"]
        raise MacsError(f"extractor arguments: {lines[-1]}") from None


def load_downloader(spec: str | None) -> Downloader:
    """``None`` -> yt-dlp; ``"module:Class"`` -> that class, constructed without arguments."""
    if spec is None:
        return YtDlpDownloader()
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise MacsError(f"downloader {spec!r}: expected 'module:Class'")
    try:
        return getattr(importlib.import_module(module_name), attr)()
    except (ImportError, AttributeError) as exc:
        raise MacsError(f"downloader {spec!r}: cannot load ({exc})") from None


class LocalVideos:
    """A folder of videos named ``<sample_id>``, ``<ytid>#<start>#<end>`` (Landscape's naming) or ``<ytid>``,
    with any of :data:`VIDEO_SUFFIXES`: full-length or already trimmed to the clip."""

    def __init__(self, folder: Path):
        self.folder = Path(folder).expanduser().resolve()
        if not self.folder.is_dir():
            raise MacsError(f"{folder}: not a folder")
        self._names: dict[str, dict[str, str]] | None = None

    def find(self, sample_id: str, ytid: str, start: str = "", end: str = "") -> tuple[Path, str] | None:
        """``(path, naming)`` with naming ``"sample"`` (the clip's own name) or ``"ytid"``, else ``None``. Stems
        match exactly (YouTube ids are case-sensitive), suffixes in any case (``.MP4`` from a camera or
        Windows)."""
        stems = [(sample_id, "sample")]
        if ytid and start and end:
            stems.append((f"{ytid}#{start}#{end}", "sample"))
        if ytid:
            stems.append((ytid, "ytid"))
        for stem, naming in stems:
            if not stem:
                continue
            self._inside(stem + VIDEO_SUFFIXES[0])
            by_suffix = self._index().get(stem, {})
            for suffix in VIDEO_SUFFIXES:
                if suffix in by_suffix:
                    return self.folder / by_suffix[suffix], naming
        return None

    def _index(self) -> dict[str, dict[str, str]]:
        """``stem -> {lower-case suffix: file name}`` of the folder's videos, listed once per run."""
        if self._names is None:  # built whole before it is shared: fetch threads may call this at once
            names: dict[str, dict[str, str]] = {}
            with os.scandir(self.folder) as entries:
                for entry in entries:
                    stem, dot, suffix = entry.name.rpartition(".")
                    if dot and f".{suffix.lower()}" in VIDEO_SUFFIXES and entry.is_file():
                        names.setdefault(stem, {})[f".{suffix.lower()}"] = entry.name
            self._names = names
        return self._names

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
        self.folder = Path(folder).expanduser().resolve()
        if not self.folder.is_dir():
            raise MacsError(f"{folder}: not a folder")
        if not any((self.folder / f"FSD50K.{split}_audio").is_dir() for split in ("dev", "eval")):
            raise MacsError(f"{folder}: no FSD50K.dev_audio/ or FSD50K.eval_audio/ folder (official layout)")

    def find(self, sample_id: str) -> Path | None:
        split, _, clip = sample_id.partition("_")
        if split not in ("dev", "eval") or not clip.isdigit():
            raise Unavailable("bad-id", f"{sample_id} is not dev_<id> or eval_<id>")
        candidate = self.folder / f"FSD50K.{split}_audio" / f"{clip}.wav"
        return candidate if candidate.is_file() else None
