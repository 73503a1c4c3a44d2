"""The notebook front door's table helpers: manifests and leaderboards as pandas DataFrames (files unchanged)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from macs_bench.datasets.manifest import read_manifest
from macs_bench.metric_spec import PAPER_METRICS

__all__ = ["board_frame", "leaderboard", "read_manifest"]  # read_manifest: the one reader, re-exported


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


def board_frame(board):
    """One line per leaderboard row: name, flags, folds, n, signature, then mean and std of each metric."""
    import pandas as pd

    records = []
    for row, marks in zip(board.rows, board.marks):
        record = {"name": row.name, "paper": row.paper, "reference_only": row.reference_only,
                  "folds": row.folds, "missing_folds": row.missing_folds, "n": row.n, "signature": row.signature}
        for m in PAPER_METRICS:
            record.update({m: row.mean.get(m), f"{m}_std": row.std.get(m), f"{m}_mark": marks.get(m, "")})
        records.append(record)
    return pd.DataFrame.from_records(records).set_index("name")
