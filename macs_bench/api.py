"""The notebook front door's table helpers: manifests and leaderboards as pandas DataFrames (files unchanged)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from macs_bench.datasets.manifest import read_manifest

__all__ = ["leaderboard", "read_manifest"]  # read_manifest: the one reader, re-exported


def leaderboard(results: str | os.PathLike | Iterable[Any], dataset: str, *, folds: Iterable[int] | None = None,
                separate_signatures: bool = False, paper_rows: str = "auto", out: str | os.PathLike | None = None,
                radar: bool = False):
    """Aggregate score results (a folder / file of result JSON, or ScoreResult objects) over folds beside the
    paper's rows; writes leaderboard.md/.csv/.json (and radar.png) into ``out`` when given. Returns the
    :class:`~macs_bench.boards.Leaderboard` (``.to_frame()`` for a DataFrame)."""
    from macs_bench.boards import build_leaderboard, load_results, write_leaderboard

    if isinstance(results, (str, os.PathLike)):
        results = load_results(results)
    board = build_leaderboard(results, dataset, folds=folds, separate_signatures=separate_signatures,
                              paper_rows=paper_rows)
    if out is not None:
        write_leaderboard(Path(out).expanduser(), board, radar=radar)
    return board

