"""The paper's Tables 1-4 (vendored as ``macs_bench/reference/paper_tables.csv``) as leaderboard rows."""

from __future__ import annotations

import csv
import io
from functools import lru_cache
from importlib import resources
from typing import Any

from macs_bench.errors import MacsError
from macs_bench.boards.rows import Leaderboard, Row, mark
from macs_bench.metric_spec import LABELS, PAPER_METRICS as METRICS

# the paper's dataset names -> macs names, and the paper's main comparison table per dataset
PAPER_DATASETS = {"LLP-multi": "llp-multi", "AudioSet-Eval": "audioset-eval", "Landscape": "landscape"}
MAIN_TABLE = {"llp-multi": 1, "audioset-eval": 2, "landscape": 3}
TABLE_CAPTIONS = {
    1: "Performance comparison with the baselines on LLP-multi (multi-source)",
    2: "Performance comparison on AudioSet-Eval (mixed-source)",
    3: "Performance comparison on Landscape (single-source)",
    4: "MACS benchmarked with MixIT on LLP-multi",
}
TABLE_TITLES = {1: "LLP-multi (multi-source)", 2: "AudioSet-Eval (mixed-source)", 3: "Landscape (single-source)",
                4: "separators on LLP-multi (MACS vs MixIT)"}
TABLE_PROTOCOL = {1: "mean over 5-fold cross-validation", 2: "mean over 5-fold cross-validation",
                  3: "the standard train-test split",
                  4: "LLP-multi as in Table 1 (its MACS row repeats Table 1's)"}
REFERENCE_CSV = "paper_tables.csv"
_CSV_METRICS = {label: key for key, label in LABELS.items()}


def reference_csv_bytes() -> bytes:
    """The vendored copy of the paper's Tables 1-4 (``macs_bench/reference/paper_tables.csv``)."""
    return resources.files("macs_bench").joinpath("reference", REFERENCE_CSV).read_bytes()


@lru_cache(maxsize=1)
def _paper_records() -> tuple[dict[str, Any], ...]:
    text = reference_csv_bytes().decode("utf-8")
    records = []
    for line, rec in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        try:
            records.append({
                "table": int(rec["table"]), "dataset": rec["dataset"], "method": rec["method"],
                "reference_only": {"yes": True, "no": False}[rec["reference_only"]],
                "metrics": {key: float(rec[col]) for col, key in _CSV_METRICS.items()},
            })
        except (KeyError, ValueError, TypeError) as exc:  # a vendored file: checked by the tests, never expected
            raise MacsError(f"{REFERENCE_CSV}:{line}: malformed row ({exc})") from None
    return tuple(records)


def _paper_row(rec: dict[str, Any]) -> Row:
    return Row(name=rec["method"], mean=dict(rec["metrics"]), std={m: None for m in METRICS}, paper=True,
               reference_only=rec["reference_only"], paper_table=rec["table"], source="quoted",
               sources=[f"{REFERENCE_CSV} (Table {rec['table']})"])


def paper_table(n: int) -> list[Row]:
    """The rows of the paper's Table ``n`` (1-4), in the paper's order."""
    if n not in TABLE_CAPTIONS:
        raise MacsError(f"the paper has Tables 1-4, not {n}")
    return [_paper_row(rec) for rec in _paper_records() if rec["table"] == n]


def reference_rows(dataset: str, *, table: int | None = None) -> list[Row]:
    """The paper's rows for a macs dataset name: by default its main comparison table (Table 1 for llp-multi,
    2 for audioset-eval, 3 for landscape; Table 4 is an ablation); none for a dataset the paper does not report."""
    table = table if table is not None else MAIN_TABLE.get(dataset)
    if table is None:
        return []
    if any(PAPER_DATASETS.get(rec["dataset"]) != dataset for rec in _paper_records() if rec["table"] == table):
        raise MacsError(f"the paper's Table {table} is not on {dataset}")
    return paper_table(table)


def paper_leaderboard(n: int) -> Leaderboard:
    """The paper's Table ``n`` alone, marked by the same rules as our leaderboards."""
    rows = paper_table(n)
    dataset = PAPER_DATASETS[next(rec["dataset"] for rec in _paper_records() if rec["table"] == n)]
    notes = [f"{TABLE_CAPTIONS[n]}: the numbers as reported in the paper (MACS, AAAI 2026), "
             f"{TABLE_PROTOCOL[n]}; macs dataset `{dataset}`."]
    return Leaderboard(title=f"Paper Table {n}: {TABLE_TITLES[n]}", dataset=dataset,
                       rows=rows, marks=mark(rows), notes=notes, paper_table=n)
