"""``datasets fetch``: from a built manifest to ``MEDIA/audio/<id>.wav`` and ``MEDIA/frames/<id>.jpg``.

A run plans which samples still need fetching (from the ledger), fetches them with a pool of threads (one clip
at a time each, :mod:`macs_bench.media.clip`), records each outcome in the ledger as it arrives, and writes
``available.txt`` and the report. Reruns skip ``ok``, retry ``failed``, and keep ``unavailable`` unless asked.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from macs_bench import __version__
from macs_bench.datasets.manifest import manifest_csv, manifest_dataset
from macs_bench.errors import MacsError
from macs_bench.io import atomic_write_text, dumps_json, file_lock, sha256_file
from macs_bench.media.clip import Fetcher, FetchOptions, Outcome
from macs_bench.media.items import FetchItem, read_items, select_shard
from macs_bench.media.layout import MediaLayout
from macs_bench.media.ledger import Entry, Ledger
from macs_bench.media.quality import QualityThresholds
from macs_bench.media.report import availability, ledger_counts, write_available
from macs_bench.media.sources import Downloader
from macs_bench.provenance import ffmpeg_version, package_versions

__all__ = ["FetchOptions", "Fetcher", "Outcome", "fetch", "plan", "run_fetch"]

# unavailable reasons looked at again on every run: the user may have added files or changed the thresholds
RECHECKED_REASONS = ("not-in-source-dir", "ambiguous-trimmed")


@dataclass
class FetchPlan:
    items: list[FetchItem]
    todo: list[FetchItem]
    skipped: Counter


def plan(items: list[FetchItem], fetcher: Fetcher, ledger_entries: dict[str, Entry]) -> FetchPlan:
    todo, skipped = [], Counter()
    for item in items:
        entry = ledger_entries.get(item.sample_id)
        if fetcher.is_done(item, entry):
            skipped["ok"] += 1
        elif (entry is not None and entry.status == "unavailable" and not fetcher.options.retry_unavailable
              and entry.reason not in RECHECKED_REASONS
              and not (entry.reason == "poor-quality" and entry.detail.get("thresholds") != fetcher.thresholds())):
            skipped["unavailable"] += 1
        else:
            todo.append(item)
    return FetchPlan(items, todo, skipped)


def run_fetch(fetcher: Fetcher, ledger: Ledger, todo: list[FetchItem],
              progress: Callable[[FetchItem, Outcome], None] | None = None) -> Counter:
    """Process ``todo`` with ``options.jobs`` threads, recording each outcome as it arrives."""
    done: Counter = Counter()
    pool = ThreadPoolExecutor(max_workers=max(1, fetcher.options.jobs), thread_name_prefix="fetch")
    try:
        futures = {pool.submit(fetcher.process, item): item for item in todo}
        for future in as_completed(futures):
            outcome = future.result()
            if outcome is None:
                continue
            item = futures[future]
            ledger.record(item.sample_id, outcome.status, outcome.reason, outcome.attempts, outcome.detail,
                          outcome.quality)
            done[outcome.status] += 1
            if progress is not None:
                progress(item, outcome)
    except BaseException:
        fetcher.stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return done


def write_report(items: list[FetchItem], entries: dict[str, Entry], layout: MediaLayout, manifest: Path,
                 options: FetchOptions, run_counts: Counter, elapsed: float, sources: dict[str, Any]) -> dict[str, Any]:
    """Availability of the manifest's samples and of the ledger; writes available.txt and the report."""
    write_available(layout.root, entries)
    result = {
        "tool": "macs-bench",
        "version": __version__,
        "manifest": str(manifest),
        "manifest_sha256": sha256_file(manifest),
        "shard": f"{options.shard[0]}/{options.shard[1]}" if options.shard else None,
        "options": {"all_frames": options.all_frames, "retries": options.retries, "backoff": options.backoff,
                    "rate_limit_backoff": options.rate_limit_backoff, "sleep": options.sleep,
                    "quality": options.quality.as_dict() if options.quality else None, **sources},
        "tools": {"ffmpeg": ffmpeg_version(), **package_versions("yt-dlp")},
        **availability(items, entries),
        **ledger_counts(entries),
        "this_run": dict(run_counts),
        "this_run_seconds": round(elapsed, 2),
    }
    atomic_write_text(layout.report, dumps_json(result))
    return result


def fetch(manifest_dir: str | Path, media: str | Path, *, source_dir: str | Path | None = None,
          downloader: Downloader | None = None, options: FetchOptions | None = None, dry_run: bool = False,
          progress_factory: Callable[[int], Callable[[FetchItem, Outcome], None]] | None = None) -> dict[str, Any]:
    """Fetch every sample of a built manifest into the MEDIA folder ``media``; returns the report (also in
    fetch_report.json). Paths may start with ``~``.

    Without ``source_dir`` clips are downloaded with ``downloader`` (yt-dlp when ``None``). With
    ``dry_run`` nothing is written: the result says how many clips would be fetched or skipped.
    """
    from macs_bench.media.sources import YtDlpDownloader

    options = options or FetchOptions()
    manifest = manifest_csv(manifest_dir)
    items = read_items(manifest)
    if not items:
        raise MacsError(f"{manifest}: the manifest has no samples")
    audio_only = {item.audio_only for item in items}
    if len(audio_only) > 1:
        raise MacsError(f"{manifest}: mixes YouTube clips and audio-only samples")
    if options.quality == "auto":  # decided per manifest, on a copy: the caller's options may serve another
        options = dataclasses.replace(
            options, quality=QualityThresholds() if manifest_dataset(manifest) == "audioset-eval" else None)
    fsd50k = audio_only == {True}
    if source_dir is None and not fsd50k and downloader is None:
        downloader = YtDlpDownloader()
    layout = MediaLayout(media)
    root = layout.root
    if root.exists() and not root.is_dir():
        raise MacsError(f"{root}: exists and is not a folder")
    source = Path(source_dir).expanduser() if source_dir is not None else None
    fetcher = Fetcher(root, options, source_dir=source, downloader=downloader, fsd50k=fsd50k)
    fetcher.samples_per_ytid = Counter(item.ytid for item in items if item.ytid)  # over the whole manifest
    items = select_shard(items, options.shard)
    if dry_run:
        entries: dict[str, Entry] = {}
        if layout.ledger.is_file():
            with Ledger(layout.ledger) as ledger:
                entries = ledger.all()
        p = plan(items, fetcher, entries)
        return {"dry_run": True, "n_samples": len(items), "to_fetch": len(p.todo), "skipped": dict(p.skipped)}

    try:
        root.mkdir(parents=True, exist_ok=True)
        with _exclusive(root), Ledger(layout.ledger) as ledger:
            shutil.rmtree(layout.tmp, ignore_errors=True)  # what killed runs left: nothing there counts as done
            p = plan(items, fetcher, ledger.all())
            started = time.monotonic()
            callback = progress_factory(len(p.todo)) if progress_factory else None
            counts = run_fetch(fetcher, ledger, p.todo, callback)
            counts.update({f"skipped_{k}": v for k, v in p.skipped.items()})
            shutil.rmtree(layout.tmp, ignore_errors=True)
            sources = {"source_dir": str(source) if source else None,
                       "downloader": type(downloader).__name__ if downloader else None, "jobs": options.jobs,
                       **(downloader.describe() if hasattr(downloader, "describe") else {})}
            return write_report(items, ledger.all(), layout, manifest, options, counts,
                                time.monotonic() - started, sources)
    except OSError as exc:
        raise MacsError(f"{exc.filename or root}: {exc.strerror or exc}") from None


@contextmanager
def _exclusive(media: str | Path) -> Iterator[None]:
    """One fetch per MEDIA folder at a time (a second would delete the first one's temporary files)."""
    layout = MediaLayout(media)
    with file_lock(layout.lock, wait=False) as held:
        if not held:
            raise MacsError(f"{layout.root}: another fetch is writing to this folder")
        yield
