"""Leaderboard rows and their marks: the data every renderer and chart takes (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from macs_bench.metric_spec import DECIMALS, DIRECTIONS, PAPER_METRICS as METRICS

REF_MARK, PAPER_MARK = "†", "‡"


@dataclass
class Row:
    """One leaderboard line: a model aggregated over folds, or one of the paper's methods."""

    name: str  # display name: the model, "model [sig8]", or the paper's method
    mean: dict[str, float | None]
    std: dict[str, float | None] = field(default_factory=dict)  # ddof=1; None with fewer than two folds
    folds_with_value: dict[str, int] = field(default_factory=dict)  # folds whose value of the metric is defined
    folds: list[int | None] = field(default_factory=list)  # folds present (None: a whole-set / split result)
    missing_folds: list[int] = field(default_factory=list)
    split: str | None = None
    n: int | None = None  # samples, summed over the folds
    n_per_fold: dict[str, int] = field(default_factory=dict)
    model: str | None = None
    paper: bool = False
    reference_only: bool = False
    paper_table: int | None = None
    signature: str | None = None
    signature_fields: dict[str, Any] | None = None
    comparable_with_paper: bool | None = None
    sources: list[str] = field(default_factory=list)
    intervals: dict[str, list] = field(default_factory=dict)  # per metric, each fold's bootstrap [low, high]
    kind: str = "model"  # model | control (oracle, shuffled, noise, colour-only, all-motifs: never ranked)
    source: str = "computed"  # computed here | quoted (the paper's numbers)
    may_have_seen_test: bool | None = None  # True: kept out of the marks and stamped; None: unknown
    note: str = ""
    results: list = field(default_factory=list, repr=False)  # the score results behind the row (for tests)

    @property
    def ranked(self) -> bool:
        """Whether the row competes for the marks."""
        return not (self.reference_only or self.kind == "control" or self.may_have_seen_test)


@dataclass
class Leaderboard:
    """Rows plus their marks and the notes a reader needs; what the renderers take."""

    title: str
    dataset: str | None
    rows: list[Row]
    marks: list[dict[str, str]]
    notes: list[str] = field(default_factory=list)
    paper_table: int | None = None  # set when the board is one of the paper's tables alone
    paper_rows: str | None = None  # the policy used for a board of our results
    expected_folds: list[int] | None = None

    def to_frame(self):
        """The rows as a pandas DataFrame indexed by name: flags, folds, n, signature, then mean / std / mark per
        metric."""
        import pandas as pd

        records = []
        for row, marks in zip(self.rows, self.marks):
            record = {"name": row.name, "paper": row.paper, "reference_only": row.reference_only,
                      "folds": row.folds, "missing_folds": row.missing_folds, "n": row.n, "signature": row.signature}
            for m in METRICS:
                record.update({m: row.mean.get(m), f"{m}_std": row.std.get(m), f"{m}_mark": marks.get(m, "")})
            records.append(record)
        return pd.DataFrame.from_records(records).set_index("name")

    @property
    def mixed(self) -> bool:
        """Whether paper rows and our rows share the table (then the paper rows are flagged)."""
        return any(r.paper for r in self.rows) and any(not r.paper for r in self.rows)


def display_name(row: Row, board: Leaderboard) -> str:
    """The row's name with its flags: † reference-only, ‡ a paper row in a table of our results."""
    return row.name + (REF_MARK if row.reference_only else "") + (PAPER_MARK if row.paper and board.mixed else "")


def fmt_value(value: float | None, metric: str) -> str:
    """A metric value as the paper prints it (its decimals); — when undefined."""
    return "—" if value is None else f"{value:.{DECIMALS[metric]}f}"


def fold_list(folds: Iterable[int | None]) -> str:
    return ",".join("all" if f is None else str(f) for f in folds)


def _tie_key(value: float, metric: str) -> float:
    """Values that print alike tie: the marks must agree with what the table shows."""
    return float(fmt_value(value, metric))


def mark(rows: list[Row]) -> list[dict[str, str]]:
    """Per row, ``{metric: "best" | "second"}``: the best and the second-best distinct value per metric by its
    direction, over the ranked rows (not reference-only, not a control, not one that may have seen the test
    clips); ties share the mark; None values are skipped.

    Rows measured differently (several signatures, see ``separate_signatures``) are not ranked at all."""
    marks: list[dict[str, str]] = [{} for _ in rows]
    if len({r.signature for r in rows if r.signature is not None}) > 1:
        return marks
    for m in METRICS:
        values = [(i, _tie_key(r.mean[m], m)) for i, r in enumerate(rows)
                  if r.ranked and r.mean.get(m) is not None]
        ranked = sorted({v for _, v in values}, reverse=DIRECTIONS[m] == "higher")
        for label, target in zip(("best", "second"), ranked):
            for i, v in values:
                if v == target:
                    marks[i][m] = label
    return marks


