"""One clip of ``datasets fetch``: obtain its video, locate the range, extract, verify, filter, install.

The clip comes from a local folder of videos (full-length or already trimmed), a local FSD50K copy, or a
downloader. One ffmpeg pass extracts its audio and frames into a private temporary folder under MEDIA; the
outputs are verified, optionally quality-filtered, then renamed into place. The :class:`Outcome` it returns is
recorded in the ledger by the run (:mod:`macs_bench.media.fetch`), on the caller's thread.
"""

from __future__ import annotations

import random
import shutil
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from macs_bench import __version__
from macs_bench.datasets.frames import whole_seconds
from macs_bench.errors import MacsError, RetryLater
from macs_bench.media import ffmpeg
from macs_bench.media.checks import DURATION_TOLERANCE, audio_padding, explain, verify_image, verify_wav
from macs_bench.media.items import FetchItem
from macs_bench.media.layout import MediaLayout, all_frame_name
from macs_bench.media.ledger import Entry
from macs_bench.media.network import CircuitBreaker, RateCap
from macs_bench.media.quality import DIGITAL_SILENCE_DBFS, QualityThresholds, assess, rms_dbfs
from macs_bench.media.sources import Downloader, LocalFSD50K, LocalVideos, Transient, Unavailable, classify_error
from macs_bench.media.storage import disk_error, is_disk_error

TRIMMED_SLACK = 2.0  # a pre-trimmed clip may run this much longer than the range


@dataclass
class FetchOptions:
    jobs: int = 4
    all_frames: bool = False
    retries: int = 3
    backoff: float = 2.0
    retry_unavailable: bool = False
    # "auto": the quality filter is on for AudioSet-Eval (the paper's "filtered" set) and off elsewhere
    quality: QualityThresholds | None | str = "auto"
    sleep: float = 0.0  # seconds each worker waits before a download, with +-50 % jitter
    rate_limit_backoff: float = 300.0  # every worker pauses this long after a 429 or a bot check
    shard: tuple[int, int] | None = None  # (K, N): only the samples of shard K of N (by video)
    stop_after: int = 8  # consecutive network failures or bot checks that stop the run (0: never)
    max_per_minute: float | None = None  # downloads started per minute over all workers (None: no cap)
    report_every: float = 300.0  # seconds between rewrites of available.txt and the report during a run


@dataclass
class Outcome:
    status: str
    reason: str = ""
    attempts: int = 1
    detail: dict[str, Any] = field(default_factory=dict)
    quality: dict[str, Any] = field(default_factory=dict)  # the quality filter's measurements and problems


class Fetcher:
    """Fetches items into ``root``; thread-safe per item, the ledger is written by the caller's thread."""

    def __init__(self, root: Path, options: FetchOptions, *, source_dir: Path | None = None,
                 downloader: Downloader | None = None, fsd50k: bool = False):
        self.layout = MediaLayout(root)
        self.options = options
        self.stop = threading.Event()
        self.fsd50k = LocalFSD50K(source_dir) if fsd50k and source_dir else None
        self.videos = LocalVideos(source_dir) if source_dir and not fsd50k else None
        self.downloader = downloader
        self.samples_per_ytid: Counter = Counter()
        self.hold_until = 0.0  # monotonic time before which no worker downloads (after a rate limit)
        self.breaker = CircuitBreaker(options.stop_after)
        self.cap = RateCap(options.max_per_minute) if options.max_per_minute else None
        self.halted: RetryLater | None = None  # why the run stopped early (network gone, disk full)
        self._halt_lock = threading.Lock()
        if fsd50k and self.fsd50k is None:
            raise MacsError("fsd50k media come from a local FSD50K copy: give its folder as the source folder")
        if not fsd50k and self.videos is None and downloader is None:
            raise MacsError("no source: give a source folder of videos or a downloader")

    def halt(self, error: RetryLater) -> None:
        """Stop the run: every worker returns at its next check; the first reason is the one reported."""
        with self._halt_lock:
            if self.halted is None:
                self.halted = error
        self.stop.set()

    def thresholds(self) -> dict[str, float] | None:
        return self.options.quality.as_dict() if self.options.quality else None

    # -- paths -------------------------------------------------------------------------------------------
    def audio_path(self, item: FetchItem) -> Path:
        return self.layout.audio(item.sample_id)

    def frame_paths(self, item: FetchItem) -> list[Path]:
        return self.layout.frames(item.sample_id, item.frame_seconds)

    def all_frames_dir(self, item: FetchItem) -> Path:
        return self.layout.frames_all(item.sample_id)

    def is_done(self, item: FetchItem, entry: Entry | None) -> bool:
        """``ok`` in the ledger, for the same frame choice, with every output still on disk."""
        if entry is None or entry.status != "ok":
            return False
        if tuple(entry.detail.get("frame_seconds", ())) != item.frame_seconds:
            return False
        if entry.detail.get("thresholds") != self.thresholds():
            return False  # judged under other quality thresholds (or none): judge again
        if self.options.all_frames and not item.audio_only and not self.all_frames_dir(item).is_dir():
            return False
        return all(p.is_file() for p in [self.audio_path(item), *self.frame_paths(item)])

    # -- one clip ----------------------------------------------------------------------------------------
    def process(self, item: FetchItem) -> Outcome | None:
        """Fetch one clip; ``None`` when the run was interrupted before it finished."""
        workdir = self.layout.tmp / f"{item.sample_id}.{uuid.uuid4().hex[:8]}"
        attempts = 0
        try:
            workdir.mkdir(parents=True)
            while True:
                attempts += 1
                try:
                    outcome = self._attempt(item, workdir)
                    self.breaker.success()
                    outcome.attempts = attempts
                    outcome.detail.update(tool=f"macs-bench {__version__}", thresholds=self.thresholds())
                    return outcome
                except Unavailable as exc:
                    self.breaker.success()  # an answer about this clip: the network and YouTube work
                    return Outcome("unavailable", exc.reason, attempts,
                                   {"detail": exc.detail, "thresholds": self.thresholds(), **_log(exc)}, exc.quality)
                except Transient as exc:
                    if self.stop.is_set():
                        return None
                    if is_disk_error(exc):  # ffmpeg's "No space left on device"
                        self.halt(disk_error(exc, self.layout.root))
                        return None
                    reason = exc.kind
                    failed = Outcome("failed", reason, attempts, {"detail": str(exc)[-300:], **_log(exc)})
                    streak, stop = self.breaker.failure(reason, str(exc))
                    if stop is not None:
                        self.halt(stop)
                        return failed
                    wait = self.options.backoff * 2 ** (attempts - 1)
                    # everyone waits: more requests now would prolong the block; one long pause per run of bot
                    # checks (a second in a row means waiting did not help: count on to the stop instead)
                    if exc.rate_limited and not (reason == "bot-check" and streak > 1):
                        wait = max(wait, self.options.rate_limit_backoff)
                        self.hold_until = max(self.hold_until, time.monotonic() + wait)
                    if attempts >= self.options.retries:
                        return failed
                    self.pause(wait)
                    for child in workdir.iterdir():
                        _remove(child)
        except Exception as exc:  # one clip's unexpected error (a bug) must not stop the others; a full disk does
            if self.stop.is_set():
                return None
            if is_disk_error(exc):
                self.halt(disk_error(exc, self.layout.root))
                return None
            return Outcome("failed", type(exc).__name__, max(attempts, 1), {"detail": str(exc)[-300:]})
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def pause(self, seconds: float) -> None:
        """Back off before a retry; returns at once when the run is interrupted."""
        self.stop.wait(seconds)

    def _attempt(self, item: FetchItem, workdir: Path) -> Outcome:
        if self.stop.is_set():
            raise Transient("interrupted")
        if item.audio_only:
            return self._attempt_audio_only(item, workdir)
        src, kind = self._obtain(item, workdir)
        local = kind != "download"
        try:
            info = ffmpeg.probe(src)
        except ffmpeg.ProbeError as exc:
            if local:
                raise Unavailable("corrupt", str(exc)) from None
            raise Transient(f"downloaded file unreadable: {exc}") from None
        if not info.has_audio:
            raise Unavailable("no-audio", f"{src.name} has no audio stream")
        if not info.has_video:
            raise Unavailable("no-video", f"{src.name} has no video stream")
        offset, layout = (0.0, "download") if not local else self._locate(item, info.duration, kind)
        pad_start, pad_end = audio_padding(info, offset, item.duration)
        n_frames = whole_seconds(item.start, item.end)
        wav, frames_dir = workdir / "audio.wav", workdir / "frames"
        frames_dir.mkdir()
        try:
            frames = ffmpeg.extract_clip(src, offset, item.duration, n_frames, wav, frames_dir)
        except ffmpeg.ExtractError as exc:
            if local and not exc.transient:
                raise Unavailable("corrupt", str(exc)) from None
            raise Transient(f"extraction failed: {exc}") from None
        try:
            verify_wav(wav, round(item.duration * ffmpeg.SAMPLE_RATE))
            missing = [f for f in frames if not f.is_file()]
            if missing:
                raise Unavailable("too-short", f"video ends before second {frames.index(missing[0])} of the clip")
            for frame in frames:
                verify_image(frame)
        except Unavailable as exc:
            if local:
                raise
            raise Transient(f"downloaded clip failed its checks: {exc}") from None
        selected = [frames[k] for k in item.frame_seconds if k < len(frames)]
        if len(selected) != len(item.frame_seconds):
            raise Unavailable("too-short", f"frame seconds {item.frame_seconds} beyond the clip's {len(frames)} s")
        detail: dict[str, Any] = {"source": kind, "layout": layout, "offset": offset, "source_name": src.name,
                                  "source_duration": round(info.duration, 3), "frame_seconds": list(item.frame_seconds),
                                  "pad_start": pad_start, "pad_end": pad_end,
                                  "width": info.width, "height": info.height}
        quality = self._filter(wav, selected, frames)  # the paper's filter first: it reports every problem
        reject_digital_silence(wav, quality.get("rms_dbfs"))
        self._install(item, wav, selected, frames)
        return Outcome("ok", "", detail=detail, quality=quality)

    def _attempt_audio_only(self, item: FetchItem, workdir: Path) -> Outcome:
        assert self.fsd50k is not None
        src = self.fsd50k.find(item.sample_id)
        if src is None:
            raise Unavailable("not-in-source-dir", f"no audio file for {item.sample_id}")
        wav = workdir / "audio.wav"
        try:
            info = ffmpeg.probe(src)
            if not info.has_audio:
                raise Unavailable("no-audio", f"{src.name} has no audio stream")
            ffmpeg.extract_audio(src, wav)
        except ffmpeg.ExtractError as exc:
            if exc.transient:
                raise Transient(str(exc)) from None
            raise Unavailable("corrupt", str(exc)) from None
        except ffmpeg.ProbeError as exc:
            raise Unavailable("corrupt", str(exc)) from None
        verify_wav(wav, None)
        detail: dict[str, Any] = {"source": "fsd50k", "source_name": src.name, "frame_seconds": [],
                                  "source_duration": round(info.duration, 3)}
        quality = self._filter(wav, [], [])
        reject_digital_silence(wav, quality.get("rms_dbfs"))
        self._install(item, wav, [], [])
        return Outcome("ok", "", detail=detail, quality=quality)

    def _obtain(self, item: FetchItem, workdir: Path) -> tuple[Path, str]:
        if self.videos is not None:
            found = self.videos.find(item.sample_id, item.ytid, item.start, item.end)
            if found is None:
                raise Unavailable("not-in-source-dir", f"no video named {item.sample_id} or {item.ytid}")
            path, naming = found
            return path, "local" if naming == "sample" else "local-ytid"
        assert self.downloader is not None
        self._polite()
        try:
            return self.downloader.download(item.ytid, float(item.start), float(item.end), workdir), "download"
        except (Unavailable, Transient):
            raise
        except Exception as exc:  # a downloader's own error type: classify by its message
            raise classify_error(f"{type(exc).__name__}: {exc}", item.ytid) from None

    def _polite(self) -> None:
        """Before each download: wait out a rate-limit pause, then ``--sleep`` seconds with +-50 % jitter, then
        for a slot under the requests-per-minute cap."""
        hold = self.hold_until - time.monotonic()
        if hold > 0:
            self.pause(hold)
        if self.options.sleep > 0:
            self.pause(self.options.sleep * random.uniform(0.5, 1.5))
        if self.cap is not None and not self.stop.is_set():
            wait = self.cap.reserve()
            if wait > 0:
                self.pause(wait)
        if self.stop.is_set():
            raise Transient("interrupted")

    def _locate(self, item: FetchItem, duration: float, kind: str) -> tuple[float, str]:
        """Where the range starts in a local file. A file reaching the range's end is full-length and cut at
        ``start``; a file about as long as the clip is taken as already trimmed to it, unless it is named by a
        YTID that several samples of the manifest share (then it cannot be a trim of each of them)."""
        start, end = float(item.start), float(item.end)
        trimmed_fits = item.duration - DURATION_TOLERANCE <= duration <= item.duration + TRIMMED_SLACK
        if duration >= end - 0.05:
            return start, "full"
        if trimmed_fits:
            if kind == "local-ytid" and self.samples_per_ytid[item.ytid] > 1:
                raise Unavailable("ambiguous-trimmed", f"the {duration:.2f} s file named {item.ytid} could be a "
                                  f"trim of any of its {self.samples_per_ytid[item.ytid]} samples; name it "
                                  f"{item.sample_id}")
            return 0.0, "trimmed"
        if duration + DURATION_TOLERANCE >= end:
            return start, "full"
        raise Unavailable("too-short", f"the file lasts {duration:.2f} s: neither the whole video up to {end:g} s "
                                       f"nor a {item.duration:g} s clip")

    def _filter(self, wav: Path, selected: list[Path], frames: list[Path]) -> dict[str, Any]:
        if self.options.quality is None:
            return {}
        problems, measured = assess(wav, selected, frames, self.options.quality)
        quality = {**measured, "problems": problems}
        if problems:
            raise Unavailable("poor-quality", explain(problems, measured, self.options.quality), quality)
        return quality

    def _install(self, item: FetchItem, wav: Path, selected: list[Path], frames: list[Path]) -> None:
        """Rename verified outputs into place (same filesystem: each rename is atomic)."""
        if self.stop.is_set():
            raise Transient("interrupted")
        for src, dst in zip(selected, self.frame_paths(item)):
            dst.parent.mkdir(parents=True, exist_ok=True)
            src.replace(dst)  # the selected frames are moved; with all_frames they are re-copied below
        if self.options.all_frames and frames:
            staging = wav.parent / "all"
            staging.mkdir()
            for k, frame in enumerate(frames):
                target = staging / all_frame_name(k)
                if frame.exists():
                    frame.replace(target)
                else:
                    shutil.copyfile(self.frame_paths(item)[item.frame_seconds.index(k)], target)
            final = self.all_frames_dir(item)
            final.parent.mkdir(parents=True, exist_ok=True)
            _remove(final)
            staging.replace(final)
        self.audio_path(item).parent.mkdir(parents=True, exist_ok=True)
        wav.replace(self.audio_path(item))


def reject_digital_silence(wav: Path, level: float | None = None) -> None:
    """No clip of only zeros (or at most :data:`DIGITAL_SILENCE_DBFS`) is ever ``ok``, whatever the quality
    filter says: an audio-to-image benchmark cannot score a sample without sound. ``level``: the clip's
    ``rms_dbfs`` when the quality filter measured it already (the WAV is read only when it did not)."""
    level = round(rms_dbfs(wav), 2) if level is None else level
    if level <= DIGITAL_SILENCE_DBFS:
        raise Unavailable("silent", f"digital silence (rms_dbfs {level} <= {DIGITAL_SILENCE_DBFS})",
                          {"rms_dbfs": level, "problems": ["silent"]})


def _log(exc: Exception) -> dict[str, Any]:
    """The downloader's own lines (yt-dlp's warnings and retries) for the ledger's detail, if any."""
    lines = getattr(exc, "log", None)
    return {"log": list(lines)} if lines else {}


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
