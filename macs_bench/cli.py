"""``macs-bench``: a thin typer layer over :mod:`macs_bench`'s Python API."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.exceptions import TyperException

from macs_bench import __version__
from macs_bench.errors import MacsError

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def new_app(name: str, help: str) -> typer.Typer:
    """A typer app with the settings and ``--version`` option every macs CLI shares."""
    app = typer.Typer(name=name, help=help, no_args_is_help=True, rich_markup_mode="rich",
                      pretty_exceptions_enable=False)

    def version(value: bool) -> None:
        if value:
            console.print(f"{name} {__version__}")
            raise typer.Exit()

    @app.callback(help=help)
    def root(
        _: bool = typer.Option(False, "--version", callback=version, is_eager=True, help="Print the version."),
    ) -> None:
        pass

    return app


def run(app: typer.Typer) -> None:
    """Run a CLI: a user error (bad input or bad usage) becomes one line on stderr and exit status 2."""
    try:
        code = app(standalone_mode=False)
    except MacsError as exc:
        _fail(str(exc))
    except TyperException as exc:  # bad usage: unknown option, invalid value, missing argument
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError":
            app(args=[*sys.argv[1:], "--help"])  # a bare group: show its rich help, as standalone typer does
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        _fail(exc.format_message().replace("\n", " ") + hint)
    except typer.Abort:
        _fail("aborted")
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str) -> NoReturn:
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    sys.exit(2)


app = new_app("macs-bench", "Build the MACS benchmarks and score audio-to-image models.")
datasets_app = typer.Typer(help="Build benchmark splits offline from pinned metadata.", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")
weights_app = typer.Typer(help="The model weights every metric and model uses, in one verified cache "
                          "($MACS_HOME, default ~/.cache/macs).", no_args_is_help=True)
app.add_typer(weights_app, name="weights")


@datasets_app.command("list")
def datasets_list() -> None:
    """List the datasets macs can build."""
    from macs_bench.datasets import DATASETS

    table = Table("name", "what")
    for spec in DATASETS.values():
        table.add_row(spec.name, spec.summary)
    console.print(table)


@datasets_app.command("build")
def datasets_build(
    name: str = typer.Argument(..., help="llp-multi, audioset-eval, landscape or fsd50k."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder for manifest.csv and stats.json."),
    seed: int = typer.Option(0, help="Seed of the fold / train-test assignment."),
    folds: int = typer.Option(5, help="Number of cross-validation folds (llp-multi, audioset-eval)."),
    num_sources: int = typer.Option(6, "--num-sources", "-M", help="Prompt slots M per clip (fsd50k)."),
    available: Optional[Path] = typer.Option(
        None, help="File of sample ids or YTIDs you obtained (one per line): keep only those, folds unchanged."
    ),
    metadata_dir: Optional[Path] = typer.Option(
        None, help="Read metadata from this folder instead of the vendored copy (still checksum-verified)."
    ),
) -> None:
    """Build a benchmark split: writes OUT/manifest.csv and OUT/stats.json (offline, seconds)."""
    from macs_bench.datasets import build

    manifest = build(
        name, out, seed=seed, n_folds=folds, num_sources=num_sources, available=available, metadata_dir=metadata_dir
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
    console.print(f"wrote {out / 'manifest.csv'} and {out / 'stats.json'}")


@datasets_app.command("info")
def datasets_info(name: str = typer.Argument(..., help="llp-multi, audioset-eval, landscape or fsd50k.")) -> None:
    """Print the dataset card and the counts of a fresh build."""
    from macs_bench.datasets import build, card

    text = card(name)
    counts = build(name).counts()
    console.print(text, markup=False, highlight=False)  # raw Markdown: nothing cropped, checksums whole
    table = Table("count", "value", title=f"{name}: counts of a build with the default options")
    for key, value in counts.items():
        table.add_row(key, str(value))
    console.print(table)


@datasets_app.command("fetch")
def datasets_fetch(
    manifest_dir: Path = typer.Argument(..., help="Folder of a built manifest (datasets build --out)."),
    root: Path = typer.Option(..., "--root", help="MEDIA folder: audio/, frames/, the ledger and reports."),
    jobs: int = typer.Option(4, "--jobs", "-j", min=1, max=64, help="Clips fetched in parallel."),
    source_dir: Optional[Path] = typer.Option(
        None, help="Local videos (<sample_id> or <ytid>.mp4/.mkv/..., full-length or trimmed), or the FSD50K "
        "folder for fsd50k; without it clips are downloaded with yt-dlp."),
    frames: str = typer.Option("selected", help="'selected': the manifest's frame(s); 'all': also one per second "
                               "under frames_all/."),
    retries: int = typer.Option(3, min=1, help="Attempts per clip for transient errors in one run."),
    backoff: float = typer.Option(2.0, min=0, help="Seconds before the 2nd attempt, doubling after."),
    retry_unavailable: bool = typer.Option(False, help="Also retry clips recorded as unavailable."),
    quality_filter: Optional[bool] = typer.Option(
        None, help="Mark silent, blank-frame and frozen clips unavailable (default: on for audioset-eval only)."),
    min_rms_dbfs: float = typer.Option(-60.0, help="Quality: audio RMS below this (dBFS) is silent."),
    min_frame_std: float = typer.Option(2.0, help="Quality: frame grey-level std below this is blank."),
    min_motion: float = typer.Option(0.5, help="Quality: largest per-second frame difference below this is frozen."),
    downloader: Optional[str] = typer.Option(None, help="Another downloader as 'module:Class' (a mirror, a test "
                                             "double); default yt-dlp."),
    dry_run: bool = typer.Option(False, help="Say what would be fetched; write nothing."),
) -> None:
    """Fetch each clip's 16 kHz audio and frame(s) into MEDIA, resumably, with an availability ledger."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
        TimeRemainingColumn

    from macs_bench.media.fetch import FetchOptions, fetch
    from macs_bench.media.quality import QualityThresholds
    from macs_bench.media.sources import load_downloader

    if frames not in ("selected", "all"):
        raise MacsError(f"--frames must be 'selected' or 'all', got {frames!r}")
    options = FetchOptions(
        jobs=jobs, all_frames=frames == "all", retries=retries, backoff=backoff, retry_unavailable=retry_unavailable,
        quality="auto" if quality_filter is None else
        QualityThresholds(min_rms_dbfs, min_frame_std, min_motion) if quality_filter else None,
    )
    loaded = load_downloader(downloader) if downloader else None
    progress = Progress(TextColumn("fetch"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[last]}"),
                        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=err_console)

    def factory(total: int):
        task = progress.add_task("fetch", total=total, last="")
        return lambda item, outcome: progress.update(
            task, advance=1, last=f"{outcome.status} {outcome.reason}".strip())

    try:
        with progress:
            result = fetch(manifest_dir, root, source_dir=source_dir, downloader=loaded, options=options,
                           dry_run=dry_run, progress_factory=factory)
    except KeyboardInterrupt:
        err_console.print("interrupted: finished clips are recorded; rerun the same command to continue")
        sys.exit(130)
    if dry_run:
        console.print(f"dry run: {result['to_fetch']:,} of {result['n_samples']:,} samples would be fetched; "
                      f"skipped: {result['skipped'] or 'none'}")
        return
    table = Table("labels", "total", "ok", "unavailable", "failed", "ok %", title=f"availability in {root}")
    for bucket, c in result["by_label_count"].items():
        table.add_row(bucket, f"{c['total']:,}", f"{c['ok']:,}", f"{c['unavailable']:,}", f"{c['failed']:,}",
                      f"{100 * c['ok'] / c['total']:.1f}")
    console.print(table)
    if result["unavailable_reasons"]:
        console.print("unavailable: " + ", ".join(f"{k} {v}" for k, v in result["unavailable_reasons"].items()))
    console.print(f"{result['n_ok']:,} of {result['n_samples']:,} samples available; wrote {root / 'available.txt'} "
                  f"(for 'datasets build --available') and {root / 'fetch_report.json'}")


@app.command("score")
def score_command(
    manifest: Path = typer.Option(..., "--manifest", help="Folder of a built manifest (datasets build --out)."),
    pred: Path = typer.Option(..., "--pred", help="Folder with one generated image per sample id (png or jpg)."),
    media: Path = typer.Option(..., "--media", help="MEDIA folder of 'datasets fetch' (frames/, audio/)."),
    out: Path = typer.Option(..., "--out", help="Result JSON; per-sample AIS/IIS go to <out>.per_sample.csv."),
    model_name: str = typer.Option(..., "--model-name", help="Name of the scored model, for the leaderboard."),
    fold: Optional[int] = typer.Option(None, "--fold", help="Score only this fold's samples."),
    split: Optional[str] = typer.Option(None, "--split", help="Score only this split's samples (e.g. test)."),
    allow_missing: bool = typer.Option(False, help="Score the intersection when predictions are missing or extra."),
    preset: str = typer.Option("paper", help="Encoder weights: paper (published; comparable with the paper), "
                               "random or tiny (random weights: smoke tests only), world (the demo world's towers)."),
    device: str = typer.Option("auto", help="cpu, cuda, cuda:1, ... (auto: cuda when available)."),
    batch_size: int = typer.Option(32, min=1, help="Files per encoder batch."),
    num_workers: int = typer.Option(0, min=0, help="DataLoader workers for decoding and resizing."),
    kid_seed: int = typer.Option(0, help="Seed of KID's subset sampling."),
    inception_weights: Optional[Path] = typer.Option(None, help="Local inception-2015-12-05.pt instead of the cache."),
    clip_weights: Optional[Path] = typer.Option(None, help="Local OpenAI ViT-B-32.pt instead of the cache."),
    wav2clip_weights: Optional[Path] = typer.Option(None, help="Local Wav2CLIP.pt instead of the cache."),
    cache_dir: Optional[Path] = typer.Option(None, help="Feature cache (default $MACS_HOME/features)."),
) -> None:
    """Score generated images with FID, CLIP-FID, KID, AIS/AIS-z and IIS/IIS-z (one encoder pass per file)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from macs_bench.score import ScoreConfig, per_sample_path, score

    weights = {name: str(path) for name, path in
               (("inception", inception_weights), ("clip", clip_weights), ("wav2clip", wav2clip_weights)) if path}
    config = ScoreConfig(preset=preset, weights=weights, batch_size=batch_size, num_workers=num_workers,
                         device=device, kid_seed=kid_seed, allow_missing=allow_missing,
                         cache_dir=str(cache_dir) if cache_dir else None)
    bar = Progress(TextColumn("{task.description:>15}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=err_console)

    def progress(key: str, total: int):
        task = bar.add_task(key, total=total)
        return lambda n: bar.update(task, advance=n)

    with bar:
        result = score(manifest, pred, media, model_name=model_name, fold=fold, split=split, out=out, config=config,
                       progress=progress)
    if result is None:  # a non-main process of 'accelerate launch'
        return
    table = Table("metric", "value", "better", title=f"{model_name}: {result['n']} samples"
                  + (f", fold {fold}" if fold is not None else ""))
    for key, value in result["metrics"].items():
        table.add_row(key, "undefined" if value is None else f"{value:.6g}", result["directions"].get(key, ""))
    console.print(table)
    for warning in result["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {warning}")
    if not result["comparable_with_paper"]:
        console.print("[yellow]note:[/yellow] these encoders do not all run the published weights: the numbers "
                      "are not comparable with the paper")
    console.print(f"wrote {out} and {per_sample_path(out)}")


@weights_app.command("list")
def weights_list() -> None:
    """The registry: each file, where it lives, whether it is present and pinned, and who uses it."""
    from macs_bench.weights import list_weights

    table = Table("present", "pinned", "size", "used by", "path")
    table.columns[-1].overflow = "fold"
    table.add_column("name", no_wrap=True)
    table.columns.insert(0, table.columns.pop())  # name first, never cropped
    for row in list_weights():
        size = f"{row.size / 1e6:,.0f} MB" if row.size else "?"
        table.add_row(row.name, "yes" if row.present else "no", "sha256" if row.pinned else "on first use", size,
                      row.used_by, row.file)
    console.print(table)


@weights_app.command("fetch")
def weights_fetch(
    names: list[str] = typer.Argument(None, help="Entries to fetch (default: all)."),
    force: bool = typer.Option(False, help="Download again even when a verified copy is present."),
) -> None:
    """Download, verify (sha256) and install weights; a partial download is never used."""
    from macs_bench.weights import WEIGHTS, fetch

    for name in names or list(WEIGHTS):
        console.print(f"{name}: {fetch(name, force=force)}")


@weights_app.command("verify")
def weights_verify(names: list[str] = typer.Argument(None, help="Entries to check (default: all).")) -> None:
    """Re-check every present file against its pinned (or locally recorded) sha256; exit 1 if any is corrupt."""
    from macs_bench.weights import verify

    results = [r for name in (names or [None]) for r in verify(name)]
    table = Table("status", "detail")
    table.add_column("name", no_wrap=True)
    table.columns.insert(0, table.columns.pop())
    for r in results:
        table.add_row(r.name, r.status, r.detail)
    console.print(table)
    if any(r.status == "corrupt" for r in results):
        raise typer.Exit(1)


def main() -> None:
    run(app)


# ------------------------------------------------------------------------------------------------ leaderboard

leaderboard_app = typer.Typer(help="Leaderboards of score results beside the paper's Tables 1-4, radar charts and "
                              "sample grids.", no_args_is_help=True)
app.add_typer(leaderboard_app, name="leaderboard")


def _parse_folds(text: Optional[str]) -> Optional[list[int]]:
    if text is None:
        return None
    try:
        folds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise MacsError(f"--folds must be comma-separated integers such as 0,1,2,3,4, got {text!r}") from None
    if not folds:
        raise MacsError("--folds is empty")
    return folds


def _print_written(paths: dict[str, Path], board, notes: bool = True) -> None:
    for note in board.notes if notes else []:
        console.print(f"[yellow]note:[/yellow] {escape(note)}", highlight=False)
    console.print(f"{len(board.rows)} rows; wrote " + ", ".join(escape(str(p)) for p in paths.values()),
                  highlight=False)


@leaderboard_app.command("build")
def leaderboard_build(
    results: Path = typer.Option(..., "--results", help="A score result JSON, or a folder searched recursively "
                                 "for them (*.json)."),
    dataset: str = typer.Option(..., "--dataset", help="llp-multi, audioset-eval, landscape, ... (every result must "
                                "be of it)."),
    out: Path = typer.Option(..., "--out", help="Folder for leaderboard.md/.csv/.json (and radar.png)."),
    folds: Optional[str] = typer.Option(None, "--folds", help="Expected folds, e.g. 0,1,2,3,4 (default: every fold "
                                        "seen); missing ones are reported."),
    separate_signatures: bool = typer.Option(False, "--separate-signatures", help="List results measured "
                                             "differently (metric version, encoder weights, preset) as separate "
                                             "rows instead of refusing."),
    paper_rows: str = typer.Option("auto", "--paper-rows", help="The paper's rows: auto (only when every result "
                                   "ran the published encoder weights), always or never."),
    radar: bool = typer.Option(True, "--radar/--no-radar", help="Also draw radar.png."),
) -> None:
    """Aggregate score results over folds into a leaderboard, beside the paper's numbers."""
    from macs_bench.leaderboard import build_leaderboard, load_results, write_leaderboard

    board = build_leaderboard(load_results(results), dataset, folds=_parse_folds(folds),
                              separate_signatures=separate_signatures, paper_rows=paper_rows)
    _print_written(write_leaderboard(out, board, radar=radar), board)


@leaderboard_app.command("paper")
def leaderboard_paper(
    table: int = typer.Option(..., "--table", help="The paper's table: 1 (LLP-multi), 2 (AudioSet-Eval), "
                              "3 (Landscape) or 4 (separators on LLP-multi)."),
    out: Path = typer.Option(..., "--out", help="Folder for leaderboard.md/.csv/.json (and radar.png)."),
    radar: bool = typer.Option(True, "--radar/--no-radar", help="Also draw radar.png."),
) -> None:
    """Render one of the paper's Tables 1-4 alone, marked by the leaderboard's rules."""
    from macs_bench.leaderboard import paper_leaderboard, write_leaderboard

    board = paper_leaderboard(table)
    _print_written(write_leaderboard(out, board, radar=radar), board, notes=False)


@leaderboard_app.command("grid")
def leaderboard_grid(
    manifest: Path = typer.Option(..., "--manifest", help="Folder of a built manifest (labels for the captions)."),
    media: Path = typer.Option(..., "--media", help="MEDIA folder of 'datasets fetch' (frames/<id>.jpg)."),
    pred: list[str] = typer.Option(..., "--pred", help="NAME=DIR: a model's images (<id>.png or .jpg); repeat "
                                   "for each model, in column order."),
    out: Path = typer.Option(..., "--out", help="Output PNG."),
    n: int = typer.Option(6, "--n", help="Samples (rows): the first N sorted ids every model has."),
    tile: int = typer.Option(128, "--tile", help="Tile size in pixels."),
    sample_ids: Optional[str] = typer.Option(None, "--sample-ids", help="Comma-separated sample ids instead of "
                                             "the first N."),
) -> None:
    """Draw a qualitative grid: per sample the ground-truth frame beside each model's image."""
    from macs_bench.grid import sample_grid

    predictions: dict[str, Path] = {}
    for item in pred:
        name, sep, folder = item.partition("=")
        if not sep or not name or not folder:
            raise MacsError(f"--pred must be NAME=DIR, got {item!r}")
        if name in predictions:
            raise MacsError(f"--pred: model name {name!r} given twice")
        predictions[name] = Path(folder)
    ids = [s.strip() for s in sample_ids.split(",") if s.strip()] if sample_ids is not None else None
    shown = sample_grid(manifest, media, predictions, out, sample_ids=ids, n=n, tile=tile)
    console.print(f"{len(shown)} samples x {len(predictions)} models; wrote {escape(str(out))}", highlight=False)
