"""``macs-bench datasets``: build, inspect, fetch, export and merge benchmark splits."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from macs_bench.clikit import MANIFEST_HELP, choice_enum, console, err_console
from macs_bench.datasets import DATASETS
from macs_bench.errors import MacsError
from macs_bench.media.layout import MediaLayout

datasets_app = typer.Typer(help="Build benchmark splits offline from pinned metadata.", no_args_is_help=True)


DatasetName = choice_enum("DatasetName", DATASETS)  # the buildable datasets


class FrameChoice(str, Enum):
    selected = "selected"
    all = "all"


class QualityFilter(str, Enum):
    auto = "auto"
    on = "on"
    off = "off"


class ExportFormat(str, Enum):
    webdataset = "webdataset"
    parquet = "parquet"


MEDIA_HELP = "MEDIA folder: audio/, frames/, the ledger and reports."


@datasets_app.command("list")
def datasets_list() -> None:
    """List the datasets macs can build."""
    table = Table("name", "what")
    for spec in DATASETS.values():
        table.add_row(spec.name, spec.summary)
    console.print(table)


@datasets_app.command("build")
def datasets_build(
    name: DatasetName = typer.Argument(..., metavar="NAME", help="The dataset.", show_default=False),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for manifest.csv and stats.json."),
    seed: int = typer.Option(0, help="Seed of the fold / train-test assignment."),
    n_folds: int = typer.Option(5, "--n-folds", help="Cross-validation folds (llp-multi, audioset-eval)."),
    num_sources: int = typer.Option(6, "--num-sources", "-M", help="Prompt slots M per clip (fsd50k)."),
    available: Optional[Path] = typer.Option(
        None, help="File of sample ids or YTIDs you obtained, one per line: keep only those, folds unchanged."),
    metadata_dir: Optional[Path] = typer.Option(
        None, help="Read metadata from this folder, not the vendored copy (still checksum-verified)."),
) -> None:
    """Build a benchmark split: writes OUT/manifest.csv and OUT/stats.json (offline, seconds)."""
    from macs_bench.datasets import build

    name = name.value
    manifest = build(
        name, out, seed=seed, n_folds=n_folds, num_sources=num_sources, available=available, metadata_dir=metadata_dir
    )
    counts = manifest.counts()
    summary = f"{name}: {counts['n_samples']:,} samples, {counts['n_classes']} classes"
    if "folds" in counts:
        summary += f", {len(counts['folds'])} folds (" + " / ".join(f"{n:,}" for n in counts["folds"].values()) + ")"
    else:
        summary += ", splits " + ", ".join(f"{k} {v:,}" for k, v in counts["splits"].items())
    if available is not None:
        summary += f"; {manifest.provenance['available']['n_dropped']:,} dropped as unavailable"
    console.print(summary)
    unknown = manifest.provenance.get("available", {}).get("unknown_ids_first", [])
    if unknown:
        n = manifest.provenance["available"]["n_unknown_ids"]
        more = ", ..." if n > 5 else ""
        console.print(f"{n:,} ids unknown to {name}: {', '.join(unknown[:5])}{more}", highlight=False)
    console.print(f"wrote {out / 'manifest.csv'} and {out / 'stats.json'}")


@datasets_app.command("info")
def datasets_info(name: DatasetName = typer.Argument(..., metavar="NAME", help="The dataset.",
                                                     show_default=False),
                  markdown: bool = typer.Option(False, "--markdown", help="Print the card's Markdown source "
                                                "(for a file or a pager) instead of rendering it.")) -> None:
    """Print the dataset card and the counts of a fresh build."""
    from macs_bench.datasets import build, card

    text = card(name.value)
    counts = build(name.value).counts()
    title = f"{name.value}: counts of a build with the default options"
    if markdown:
        rows = "".join(f"| {key} | {value} |\n" for key, value in counts.items())
        console.print(f"{text}\n## {title}\n\n| count | value |\n| --- | --- |\n{rows}", markup=False,
                      highlight=False, end="")
        return
    _print_markdown(text)
    table = Table("count", "value", title=title)
    for key, value in counts.items():
        table.add_row(key, str(value))
    console.print(table)


def _print_markdown(text: str) -> None:
    """Markdown for the terminal (rich): the prose wraps at the terminal's width; each table keeps its natural
    width, so no file name or checksum is folded or cropped; ``<word>`` stays text, not HTML to drop."""
    import itertools
    import re

    from rich.console import Console
    from rich.markdown import Markdown

    def literal(line: str) -> str:  # backslash-escape "<" outside code spans
        return "".join(part if part.startswith("`") else part.replace("<", "\\<")
                       for part in re.split(r"(`[^`]*`)", line))

    for is_table, group in itertools.groupby(text.splitlines(), key=lambda line: line.startswith("|")):
        lines = [literal(line) for line in group]
        block = Markdown("\n".join(lines))
        if is_table:
            width = max(console.width, max(len(line) for line in lines))
            Console(file=console.file, width=width, force_terminal=console.is_terminal,
                    no_color=console.no_color).print(block)
        else:
            console.print(block, soft_wrap=False)


@datasets_app.command("fetch")
def datasets_fetch(
    manifest: Path = typer.Option(..., "--manifest", help=MANIFEST_HELP),
    media: Path = typer.Option(..., "--media", help=MEDIA_HELP),
    jobs: int = typer.Option(4, "--jobs", "-j", min=1, max=64, help="Clips fetched in parallel (1-64)."),
    source_dir: Optional[Path] = typer.Option(
        None, help="Local videos named <sample_id> or <ytid> (mp4, mkv, ...; whole or trimmed), or the FSD50K "
        "folder for fsd50k. Without it clips are downloaded with yt-dlp."),
    frames: FrameChoice = typer.Option(FrameChoice.selected, help="selected: the manifest's frame(s); all: also "
                                       "one per second under frames_all/."),
    retries: int = typer.Option(3, min=1, help="Attempts per clip for transient errors in one run."),
    backoff: float = typer.Option(2.0, min=0, help="Seconds before the 2nd attempt, doubling after."),
    retry_unavailable: bool = typer.Option(False, "--retry-unavailable", help="Also retry clips recorded as "
                                           "unavailable."),
    quality_filter: QualityFilter = typer.Option(
        QualityFilter.auto, help="Mark silent, blank-frame and frozen clips unavailable (auto: on for "
        "audioset-eval only)."),
    min_rms_dbfs: float = typer.Option(-60.0, help="Quality: audio RMS below this (dBFS) is silent."),
    min_frame_std: float = typer.Option(2.0, help="Quality: frame grey-level std below this is blank."),
    min_motion: float = typer.Option(0.5, help="Quality: largest per-second frame difference below this is "
                                     "frozen."),
    downloader: Optional[str] = typer.Option(None, help="Another downloader as module:Class (a mirror, a test "
                                             "double); default yt-dlp."),
    shard: Optional[str] = typer.Option(None, help="K/N: fetch only shard K of N (whole videos, hashed), e.g. "
                                        "one per Slurm array task, each into its own --media; see merge-media."),
    sleep: float = typer.Option(0.0, min=0, help="Seconds each worker waits before a download (+-50 % jitter)."),
    rate_limit_backoff: float = typer.Option(300.0, min=0, help="Seconds all workers pause after an HTTP 429 "
                                             "or a bot check."),
    cookies: Optional[Path] = typer.Option(None, help="Netscape cookies file for yt-dlp (recorded by path "
                                           "only)."),
    extractor_args: list[str] = typer.Option([], "--extractor-args", help="Passed to yt-dlp as its "
                                             "--extractor-args (IE_KEY:ARG=VALUE, e.g. PO tokens); "
                                             "repeatable."),
    stop_after: int = typer.Option(8, "--stop-after", min=0, help="Stop after this many network failures or "
                                   "bot checks in a row (0: never)."),
    max_per_minute: Optional[float] = typer.Option(None, "--max-per-minute", min=0.1, help="Cap on downloads "
                                                   "started per minute, all workers together."),
    report_every: float = typer.Option(300.0, "--report-every", min=0, help="Seconds between rewrites of "
                                       "available.txt and the report during the run."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be fetched; write nothing."),
) -> None:
    """Fetch each clip's 16 kHz audio and frame(s) into MEDIA, resumably, with an availability ledger.

    Exit status: 0 all settled, some ok; 1 none ok; 2 bad input; 3 rerun (some failed transiently, or the
    run stopped: network gone, bot check, disk full); 130 stopped."""
    from macs_bench.media.fetch import FetchOptions, fetch
    from macs_bench.media.items import parse_shard
    from macs_bench.media.progress import bar_callbacks, fetch_bar
    from macs_bench.media.quality import QualityThresholds
    from macs_bench.media.sources import YtDlpDownloader, load_downloader

    thresholds = QualityThresholds(min_rms_dbfs, min_frame_std, min_motion)
    options = FetchOptions(
        jobs=jobs, all_frames=frames is FrameChoice.all, retries=retries, backoff=backoff,
        retry_unavailable=retry_unavailable,
        quality={QualityFilter.auto: "auto", QualityFilter.on: thresholds, QualityFilter.off: None}[quality_filter],
        sleep=sleep, rate_limit_backoff=rate_limit_backoff, shard=parse_shard(shard) if shard else None,
        stop_after=stop_after, max_per_minute=max_per_minute, report_every=report_every,
    )
    progress = fetch_bar(err_console)
    _, factory = bar_callbacks(progress)
    if (cookies or extractor_args) and (downloader or source_dir):
        raise MacsError("--cookies and --extractor-args apply to yt-dlp downloads only")
    loaded = load_downloader(downloader) if downloader else None
    if not source_dir and not downloader:  # yt-dlp's own lines go to the ledger, not above the bar
        loaded = YtDlpDownloader(cookies=cookies, extractor_args=tuple(extractor_args))

    try:
        with progress:
            result = fetch(manifest, media, source_dir=source_dir, downloader=loaded, options=options,
                           dry_run=dry_run, progress_factory=factory)
    except KeyboardInterrupt:
        err_console.print("interrupted: finished clips are recorded; rerun the same command to continue")
        sys.exit(130)
    if dry_run:
        console.print(f"dry run: {result.to_fetch:,} of {result.n_samples:,} samples would be fetched; "
                      f"skipped: {result.skipped or 'none'}")
        return
    table = Table("labels", "total", "ok", "unavailable", "failed", "ok %", title=f"availability in {media}")
    for bucket, c in result.by_label_count.items():
        table.add_row(bucket, f"{c['total']:,}", f"{c['ok']:,}", f"{c['unavailable']:,}", f"{c['failed']:,}",
                      f"{100 * c['ok'] / c['total']:.1f}")
    console.print(table)
    if result.unavailable_reasons:
        console.print("unavailable: " + ", ".join(f"{k} {v}" for k, v in result.unavailable_reasons.items()))
    layout = MediaLayout(media)
    console.print(f"{result.n_ok:,} of {result.n_samples:,} samples available; wrote {layout.available} "
                  f"({result.n_ok_in_ledger:,} ids, for 'datasets build --available') and {layout.report}")
    if result.n_failed:  # before "nothing could be fetched": a rerun may still get them
        err_console.print(f"{result.n_failed:,} samples failed transiently: rerun the same command to retry them")
        raise typer.Exit(3)
    if result.n_ok == 0:
        err_console.print(f"nothing could be fetched: see the reasons above and {layout.report.name}")
        raise typer.Exit(1)


@datasets_app.command("export")
def datasets_export(
    manifest: Path = typer.Option(..., "--manifest", help=MANIFEST_HELP),
    media: Path = typer.Option(..., "--media", help="MEDIA folder of 'datasets fetch'."),
    out: Path = typer.Option(..., "--out", help="Folder for the shards, index.json and SHA256SUMS."),
    fmt: ExportFormat = typer.Option(ExportFormat.webdataset, "--format", help="Tar shards or Parquet files."),
    shard_size: int = typer.Option(1000, "--shard-size", min=1, help="Samples per shard."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Discard an earlier export in OUT and start "
                                   "afresh (default: resume it)."),
) -> None:
    """Write fetched samples as training shards: WebDataset tars or Parquet, resumable."""
    from macs_bench.media.export import export

    index = export(manifest, media, out, fmt=fmt.value, shard_size=shard_size, overwrite=overwrite)
    console.print(f"{index['n_samples']:,} samples in {len(index['shards'])} {fmt.value} shards; wrote "
                  f"{out / 'index.json'} and {out / 'SHA256SUMS'}", highlight=False)


@datasets_app.command("merge-media")
def datasets_merge_media(
    sources: list[Path] = typer.Argument(..., help="MEDIA folders of 'datasets fetch' (e.g. one per --shard).",
                                         show_default=False),
    out: Path = typer.Option(..., "--out", help="MEDIA folder to merge into (created if needed; may be one of "
                             "the sources)."),
    manifest: Optional[Path] = typer.Option(None, help="Manifest for the report's availability table (default: "
                                            "the one the sources were fetched from, if they agree)."),
) -> None:
    """Merge sharded fetches: ledgers and files, best state per sample, conflicts refused."""
    from macs_bench.media.merge import merge_media

    result = merge_media(out, sources, manifest=manifest)
    line = f"{result['n_ok_in_ledger']:,} samples ok in {out}"
    if "n_samples" in result:
        line += f" ({result['n_ok']:,} of the manifest's {result['n_samples']:,})"
    layout = MediaLayout(out)
    console.print(f"{line}; wrote {layout.available} and {layout.report}", highlight=False)
