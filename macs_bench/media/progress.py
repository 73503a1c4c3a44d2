"""One progress bar for the long MEDIA jobs (export, merge-media), on stderr, shown only in a terminal.

``show=None`` decides by stderr: a bar in a terminal, nothing in a log file or a pipe (no control codes, no
final frame), so batch jobs' logs stay clean. The Python API and the CLI share it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def progress_bar(label: str, total: int, show: bool | None = None, unit: str = "samples"
                 ) -> Iterator[Callable[[int], None]]:
    """A bar of ``total`` steps; the block gets ``advance(n=1)``."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
        TimeRemainingColumn

    console = Console(stderr=True)
    if show is None:
        show = console.is_terminal
    if not show:
        yield lambda n=1: None
        return
    bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn(unit), TimeElapsedColumn(),
                   TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=False)
    with bar:
        task = bar.add_task(label, total=total)
        yield lambda n=1: bar.update(task, advance=n)
