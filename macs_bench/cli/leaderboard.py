"""``macs-bench leaderboard``: aggregate results beside the paper's tables, radar charts and sample grids."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from macs_bench.clikit import MANIFEST_HELP, MEDIA_HELP, OVERWRITE_HELP, console, parse_folds
from macs_bench.errors import MacsError

leaderboard_app = typer.Typer(help="Leaderboards of score results beside the paper's Tables 1-4, radar charts and "
                              "sample grids.", no_args_is_help=True)
BOARD_FILES = ("leaderboard.md", "leaderboard.csv", "leaderboard.json", "radar.png")


class PaperRows(str, Enum):
    auto = "auto"
    always = "always"
    never = "never"


class PaperTable(str, Enum):
    t1 = "1"
    t2 = "2"
    t3 = "3"
    t4 = "4"


def _refuse_existing(paths: list[Path], overwrite: bool) -> None:
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        raise MacsError(f"{existing[0]}: exists; pass --overwrite to replace it")


def _print_written(paths: dict[str, Path], board, notes: bool = True) -> None:
    for note in board.notes if notes else []:
        console.print(f"[yellow]note:[/yellow] {escape(note)}", highlight=False)
    console.print(f"{len(board.rows)} rows; wrote " + ", ".join(escape(str(p)) for p in paths.values()),
                  highlight=False)


OUT_HELP = "Folder for leaderboard.md, .csv, .json and radar.png."
NO_RADAR_HELP = "Do not draw radar.png."


@leaderboard_app.command("build")
def leaderboard_build(
    results: Path = typer.Option(..., "--results", help="A score result JSON, or a folder searched recursively "
                                 "for them (*.json)."),
    dataset: str = typer.Option(..., "--dataset", help="llp-multi, audioset-eval, landscape, ... (every result must "
                                "be of it)."),
    out: Path = typer.Option(..., "--out", help=OUT_HELP),
    folds: Optional[str] = typer.Option(None, "--folds", help="Expected folds, e.g. 0,1,2,3,4 (default: every fold "
                                        "seen); missing ones are reported."),
    separate_signatures: bool = typer.Option(False, "--separate-signatures", help="List results measured "
                                             "differently (metric version, encoder weights, preset) as separate "
                                             "rows instead of refusing."),
    paper_rows: PaperRows = typer.Option(PaperRows.auto, "--paper-rows", help="The paper's rows: auto (only when "
                                         "every result ran the published encoder weights), always or never."),
    no_significance: bool = typer.Option(False, "--no-significance", help="Mark best and second by value alone "
                                         "(default: only where the best's lead is significant)."),
    rounds: int = typer.Option(300, "--rounds", min=4, help="Permutations of the significance test."),
    no_radar: bool = typer.Option(False, "--no-radar", help=NO_RADAR_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help=OVERWRITE_HELP),
) -> None:
    """Aggregate score results over folds into a leaderboard, beside the paper's numbers."""
    from macs_bench.boards import build_leaderboard, load_results, write_leaderboard

    _refuse_existing([out / name for name in BOARD_FILES], overwrite)
    board = build_leaderboard(load_results(results), dataset, folds=parse_folds(folds),
                              separate_signatures=separate_signatures, paper_rows=paper_rows.value,
                              significance=not no_significance, rounds=rounds)
    _print_written(write_leaderboard(out, board, radar=not no_radar), board)


@leaderboard_app.command("paper")
def leaderboard_paper(
    table: PaperTable = typer.Option(..., "--table", help="The paper's table: 1 (LLP-multi), 2 (AudioSet-Eval), "
                                     "3 (Landscape) or 4 (separators on LLP-multi)."),
    out: Optional[Path] = typer.Option(None, "--out", help=OUT_HELP + " Default: print the Markdown table."),
    no_radar: bool = typer.Option(False, "--no-radar", help=NO_RADAR_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help=OVERWRITE_HELP),
) -> None:
    """Show one of the paper's Tables 1-4 alone, marked by the leaderboard's rules (--out writes the files)."""
    from macs_bench.boards import paper_leaderboard, to_markdown, write_leaderboard

    board = paper_leaderboard(int(table.value))
    if out is None:
        typer.echo(to_markdown(board), nl=False)
        return
    _refuse_existing([out / name for name in BOARD_FILES], overwrite)
    _print_written(write_leaderboard(out, board, radar=not no_radar), board, notes=False)


@leaderboard_app.command("grid")
def leaderboard_grid(
    manifest: Path = typer.Option(..., "--manifest", help=MANIFEST_HELP + " Labels for the captions."),
    media: Path = typer.Option(..., "--media", help=MEDIA_HELP),
    pred: list[str] = typer.Option(..., "--pred", help="NAME=DIR: a model's images (<id>.png or .jpg); repeat "
                                   "for each model, in column order."),
    out: Path = typer.Option(..., "--out", help="Output PNG."),
    n: int = typer.Option(6, "--n", min=1, help="Samples (rows): the first N sorted ids every model has."),
    tile: int = typer.Option(128, "--tile", min=16, help="Tile size in pixels."),
    sample_ids: Optional[str] = typer.Option(None, "--sample-ids", help="Comma-separated sample ids instead of "
                                             "the first N."),
    overwrite: bool = typer.Option(False, "--overwrite", help=OVERWRITE_HELP),
) -> None:
    """Draw a qualitative grid: per sample the ground-truth frame beside each model's image."""
    from macs_bench.plots.grid import sample_grid

    predictions: dict[str, Path] = {}
    for item in pred:
        name, sep, folder = item.partition("=")
        if not sep or not name or not folder:
            raise MacsError(f"--pred must be NAME=DIR, got {item!r}")
        if name in predictions:
            raise MacsError(f"--pred: model name {name!r} given twice")
        predictions[name] = Path(folder)
    if not out.is_dir():
        _refuse_existing([out], overwrite)
    ids = [s.strip() for s in sample_ids.split(",") if s.strip()] if sample_ids is not None else None
    shown = sample_grid(manifest, media, predictions, out, sample_ids=ids, n=n, tile=tile)
    console.print(f"{len(shown)} samples x {len(predictions)} models; wrote {escape(str(out))}", highlight=False)
