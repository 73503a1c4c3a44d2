"""The progress bar of a fetch, shared by ``datasets fetch`` and Python :func:`macs_bench.fetch` (shown there
when stderr is a terminal, or in a notebook)."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
    TimeRemainingColumn

# an outcome the stop line (or the final count) sums up: no line per clip, which offline was one per id
QUIET_REASONS = ("network", "bot-check")


def shows_bar(console: Console) -> bool:
    """A terminal or a notebook: in a log file (a Slurm job's) the bar would only be one more line at the end."""
    return console.is_terminal or console.is_jupyter


def fetch_bar(console: Console) -> Progress:
    """The bar, drawn only where :func:`shows_bar`."""
    return Progress(TextColumn("fetch"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[last]}"),
                    TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console,
                    disable=not shows_bar(console))


def bar_callbacks(progress: Progress) -> tuple[Callable[[str], None], Callable[[int], Callable]]:
    """``(log, factory)``: ``log`` prints a line above the bar; ``factory(total)`` makes the per-outcome
    callback that advances it and names each clip that failed for a reason of its own."""

    def log(message: str) -> None:  # above the bar, which redraws below it
        progress.console.print(escape(message), highlight=False)

    def factory(total: int):
        task = progress.add_task("fetch", total=total, last="")

        def advance(item, outcome) -> None:
            if outcome.status == "failed" and outcome.reason not in QUIET_REASONS:
                log(f"{item.sample_id}: failed ({outcome.reason}, {outcome.attempts} attempts): "
                    f"{outcome.detail.get('detail', '')}")
            progress.update(task, advance=1, last=f"{outcome.status} {outcome.reason}".strip())
        return advance

    return log, factory
