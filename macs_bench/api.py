"""The notebook front door's table helpers: manifests and leaderboards as pandas DataFrames (files unchanged)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from macs_bench.datasets.manifest import COLUMNS, split_list
from macs_bench.datasets.manifest import read_manifest as read_rows

LIST_COLUMNS = ("labels", "mids", "frame_seconds")
INT_COLUMNS = ("n_labels", "fold")


def read_manifest(path: str | os.PathLike):
    """A built manifest (its folder or ``manifest.csv``) as a DataFrame indexed by ``sample_id``: list columns
    as lists, counts and folds as nullable integers, everything else as the CSV's text."""
    import pandas as pd

    rows = read_rows(Path(path).expanduser())
    frame = pd.DataFrame(rows, columns=list(COLUMNS) + [k for k in (rows[0] if rows else {}) if k not in COLUMNS])
    for column in LIST_COLUMNS:
        frame[column] = [split_list(v) for v in frame[column]]
    frame["frame_seconds"] = [[int(x) for x in v] for v in frame["frame_seconds"]]
    for column in INT_COLUMNS:
        frame[column] = pd.array([int(v) if v != "" else None for v in frame[column]], dtype="Int64")
    return frame.set_index("sample_id")


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

