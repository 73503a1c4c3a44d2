"""``datasets fetch``: from a built manifest to ``MEDIA/audio/<id>.wav`` and ``MEDIA/frames/<id>.jpg``.

A run plans which samples still need fetching (from the ledger), probes the downloader's site once, fetches
them with a pool of threads (one clip at a time each, :mod:`macs_bench.media.clip`; a few per worker submitted
ahead, never one future per id), records each outcome in the ledger as it arrives, and rewrites
``available.txt`` and the report every few minutes and at the end. Reruns skip ``ok``, retry ``failed``, and
keep ``unavailable`` unless asked. A run that cannot go on (the network gone, a bot check, a full disk) stops
with one :class:`~macs_bench.errors.RetryLater` line after writing the report.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import ExitStack, contextmanager
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
from macs_bench.media.network import unreachable
from macs_bench.media.quality import QualityThresholds
from macs_bench.media.report import FetchDryRun, FetchReport, availability, ledger_counts, write_available
from macs_bench.media.sources import Downloader
from macs_bench.media.storage import disk_error, is_disk_error
from macs_bench.provenance import ffmpeg_version, package_versions

__all__ = ["FetchDryRun", "FetchOptions", "FetchReport", "Fetcher", "Outcome", "fetch", "plan", "run_fetch"]

# unavailable reasons looked at again on every run: the user may have added files or changed the thresholds
RECHECKED_REASONS = ("not-in-source-dir", "ambiguous-trimmed")
IN_FLIGHT_PER_JOB = 4  # clips submitted ahead per worker: memory stays flat however many ids a manifest has


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


def run_fetch(fetcher: Fetcher, ledger: Ledger, todo: Iterable[FetchItem],
              progress: Callable[[FetchItem, Outcome], None] | None = None,
              checkpoint: Callable[[Counter], None] | None = None) -> Counter:
    """Process ``todo`` with ``options.jobs`` threads, recording each outcome as it arrives.

    Items are taken from ``todo`` as workers free up, at most :data:`IN_FLIGHT_PER_JOB` per worker ahead, so
    a 100k-id run holds a few dozen futures, not 100k. ``checkpoint(counts)`` runs every
    ``options.report_every`` seconds (the run's available.txt and report). A stopped fetcher (interrupted,
    network gone, disk full) takes no new items; the ones in flight return at once.
    """
    done: Counter = Counter()
    jobs = max(1, fetcher.options.jobs)
    queue = iter(todo)
    pending: dict[Future, FetchItem] = {}
    due = time.monotonic() + fetcher.options.report_every
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="fetch")
    try:
        while True:
            while len(pending) < jobs * IN_FLIGHT_PER_JOB and not fetcher.stop.is_set():
                item = next(queue, None)
                if item is None:
                    break
                pending[pool.submit(fetcher.process, item)] = item
            if not pending:
                break
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                item = pending.pop(future)
                outcome = future.result()
                if outcome is None:
                    continue
                ledger.record(item.sample_id, outcome.status, outcome.reason, outcome.attempts, outcome.detail,
                              outcome.quality)
                done[outcome.status] += 1
                if progress is not None:
                    progress(item, outcome)
            if checkpoint is not None and time.monotonic() >= due:
                checkpoint(done)
                due = time.monotonic() + fetcher.options.report_every
    except BaseException:
        fetcher.stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return done


def report_head(manifest: Path, options: FetchOptions, sources: dict[str, Any]) -> dict[str, Any]:
    """The report's fields that do not change during a run (hashed once, not at every rewrite)."""
    return {
        "tool": "macs-bench",
        "version": __version__,
        "manifest": str(manifest),
        "manifest_sha256": sha256_file(manifest),
        "shard": f"{options.shard[0]}/{options.shard[1]}" if options.shard else None,
        "options": {"all_frames": options.all_frames, "retries": options.retries, "backoff": options.backoff,
                    "rate_limit_backoff": options.rate_limit_backoff, "sleep": options.sleep,
                    "stop_after": options.stop_after, "max_per_minute": options.max_per_minute,
                    "quality": options.quality.as_dict() if options.quality else None, **sources},
        "tools": {"ffmpeg": ffmpeg_version(), **package_versions("yt-dlp")},
    }


def write_report(head: dict[str, Any], items: list[FetchItem], entries: dict[str, Entry], layout: MediaLayout,
                 run_counts: Counter, elapsed: float) -> FetchReport:
    """Availability of the manifest's samples and of the ledger; writes available.txt and the report."""
    write_available(layout.root, entries)
    report = FetchReport(**head, **availability(items, entries), **ledger_counts(entries),
                         this_run=dict(run_counts), this_run_seconds=round(elapsed, 2))
    atomic_write_text(layout.report, dumps_json(report.to_dict()))
    return report


def fetch(manifest_dir: str | Path, media: str | Path, *, source_dir: str | Path | None = None,
          downloader: Downloader | None = None, options: FetchOptions | None = None, dry_run: bool = False,
          progress: bool | None = None,
          progress_factory: Callable[[int], Callable[[FetchItem, Outcome], None]] | None = None,
          ) -> FetchReport | FetchDryRun:
    """Fetch every sample of a built manifest into the MEDIA folder ``media``; returns the
    :class:`FetchReport` (also in fetch_report.json, rewritten every ``options.report_every`` seconds during
    the run with available.txt). Paths may start with ``~``.

    Without ``source_dir`` clips are downloaded with ``downloader`` (yt-dlp when ``None``); a downloader with a
    ``probe()`` is asked first whether its site answers. With ``dry_run`` nothing is written: the
    :class:`FetchDryRun` says how many clips would be fetched or skipped. ``progress``: a progress bar on
    stderr (default ``None``: when stderr is a terminal or in a notebook, unless a ``progress_factory`` is
    given; ``True``: always; ``False``: never). A run stopped by the
    network (``options.stop_after`` failures in a row) or a full disk raises
    :class:`~macs_bench.errors.RetryLater` after writing the report (its ``report`` attribute): rerun once
    fixed.
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
        return FetchDryRun(len(items), len(p.todo), dict(p.skipped))

    try:
        root.mkdir(parents=True, exist_ok=True)
        with ExitStack() as stack:
            stack.enter_context(_exclusive(root))
            ledger = stack.enter_context(Ledger(layout.ledger))
            shutil.rmtree(layout.tmp, ignore_errors=True)  # what killed runs left: nothing there counts as done
            p = plan(items, fetcher, ledger.all())
            if p.todo and source is None and callable(getattr(downloader, "probe", None)):
                why = downloader.probe()  # once, before thousands of downloads that would each time out
                if why:
                    raise unreachable(why)
            sources = {"source_dir": str(source) if source else None,
                       "downloader": type(downloader).__name__ if downloader else None, "jobs": options.jobs,
                       **(downloader.describe() if hasattr(downloader, "describe") else {})}
            head = report_head(manifest, options, sources)
            skipped = Counter({f"skipped_{k}": v for k, v in p.skipped.items()})
            started = time.monotonic()

            def checkpoint(counts: Counter) -> FetchReport:
                return write_report(head, items, ledger.all(), layout, counts + skipped, time.monotonic() - started)

            if progress is not False and progress_factory is None:
                from rich.console import Console

                from macs_bench.media.progress import bar_callbacks, fetch_bar, shows_bar

                console = Console(stderr=True, force_terminal=True if progress else None)
                if shows_bar(console):
                    _, progress_factory = bar_callbacks(stack.enter_context(fetch_bar(console)))
            callback = progress_factory(len(p.todo)) if progress_factory else None
            counts = run_fetch(fetcher, ledger, p.todo, callback, checkpoint)
            shutil.rmtree(layout.tmp, ignore_errors=True)
            report = checkpoint(counts)
    except OSError as exc:
        if is_disk_error(exc):
            raise disk_error(exc, root) from None
        raise MacsError(f"{exc.filename or root}: {exc.strerror or exc}") from None
    if fetcher.halted is not None:
        fetcher.halted.report = report  # what was done before the stop, as written to fetch_report.json
        raise fetcher.halted
    return report


@contextmanager
def _exclusive(media: str | Path) -> Iterator[None]:
    """One fetch per MEDIA folder at a time (a second would delete the first one's temporary files)."""
    layout = MediaLayout(media)
    with file_lock(layout.lock, wait=False) as held:
        if not held:
            raise MacsError(f"{layout.root}: another fetch, merge or export is using this folder; wait for it to end")
        yield
