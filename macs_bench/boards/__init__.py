"""Leaderboards: aggregate ``macs-bench score`` results over folds, set them beside the paper's numbers, mark the
best and second best per metric, and render Markdown / CSV / JSON and a radar chart.

:mod:`.aggregate` (results -> rows), :mod:`.paper` (the paper's Tables 1-4), :mod:`.rows` (rows and marks),
:mod:`.render` (Markdown, CSV, JSON, writing), :mod:`.radar` (the radar chart).
"""

from macs_bench.boards.aggregate import PAPER_ROWS, aggregate, build_leaderboard
from macs_bench.boards.paper import (MAIN_TABLE, PAPER_DATASETS, REFERENCE_CSV, TABLE_CAPTIONS, paper_leaderboard,
                                          paper_table, reference_csv_bytes, reference_rows)
from macs_bench.boards.render import (GENERATOR, board_dict, to_csv, to_json, to_markdown,
                                           write_leaderboard)
from macs_bench.boards.rows import PAPER_MARK, REF_MARK, Leaderboard, Row, display_name, mark
from macs_bench.metrics.spec import DIRECTIONS, LABELS, PAPER_METRICS as METRICS
from macs_bench.boards.radar import radar_png, radar_values
from macs_bench.results import ScoreResult


def load_results(path) -> list[ScoreResult]:
    """Score results from a JSON file or a folder of them (leaderboards written there are skipped)."""
    from macs_bench.results import load_results as load

    return load(path, skip_generator=GENERATOR)


__all__ = ["METRICS", "LABELS", "DIRECTIONS", "Row", "Leaderboard", "load_results", "aggregate", "paper_table",
           "reference_rows", "mark", "build_leaderboard", "paper_leaderboard", "to_markdown", "to_csv", "to_json",
           "board_dict", "write_leaderboard", "radar_values", "radar_png", "reference_csv_bytes", "display_name",
           "PAPER_ROWS", "MAIN_TABLE", "PAPER_DATASETS", "REFERENCE_CSV", "TABLE_CAPTIONS", "GENERATOR",
           "PAPER_MARK", "REF_MARK", "ScoreResult"]
