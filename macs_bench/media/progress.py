"""The progress bars of the long MEDIA jobs, on stderr: fetch (``datasets fetch`` and Python
:func:`macs_bench.fetch`), export and merge-media. Drawn only in a terminal or a notebook: in a log file or a
pipe (a Slurm job's) there are no control codes and no final frame, so batch logs stay clean."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, \
    TimeElapsedColumn, TimeRemainingColumn

# an outcome the stop line (or the final count) sums up: no line per clip, which offline was one per id
QUIET_REASONS = ("network", "bot-check")


def shows_bar(console: Console) -> bool:
    """A terminal or a notebook."""
    return console.is_terminal or console.is_jupyter


def _bar(label: str, detail: ProgressColumn, console: Console, show: bool) -> Progress:
    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), detail, TimeElapsedColumn(),
                    TextColumn("ETA"), TimeRemainingColumn(), console=console, disable=not show)


def fetch_bar(console: Console) -> Progress:
    """The fetch bar (the last outcome beside the count), drawn only where :func:`shows_bar`."""
    return _bar("fetch", TextColumn("{task.fields[last]}"), console, shows_bar(console))


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


@contextmanager
def progress_bar(label: str, total: int, show: bool | None = None, unit: str = "samples"
                 ) -> Iterator[Callable[[int], None]]:
    """A bar of ``total`` steps for export and merge-media (``show=None``: where :func:`shows_bar`); the block
    gets ``advance(n=1)``."""
    console = Console(stderr=True)
    show = shows_bar(console) if show is None else show
    if not show:
        yield lambda n=1: None
        return
    with _bar(label, TextColumn(unit), console, True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n=1: bar.update(task, advance=n)
