"""Render a leaderboard as Markdown, CSV and JSON, and write them (with the radar chart) atomically."""

from __future__ import annotations

import csv
import hashlib
import io
import os
from pathlib import Path
from typing import Any

from macs_bench import __version__
from macs_bench.errors import MacsError
from macs_bench.io import atomic_write_text, dumps_json
from macs_bench.boards.intervals import interval_suffix
from macs_bench.boards.paper import REFERENCE_CSV, reference_csv_bytes
from macs_bench.boards.rows import REF_MARK, Leaderboard, Row, display_name, fmt_value, fold_list
from macs_bench.boards.significance import describe, row_kind
from macs_bench.metrics.spec import ARROWS, DIRECTIONS, LABELS, PAPER_METRICS as METRICS

GENERATOR = "macs-bench leaderboard"  # marks the JSON this module writes


def _cell(row: Row, metric: str, marks: dict[str, str]) -> str:
    value = row.mean.get(metric)
    if value is None:
        return "—"
    text = fmt_value(value, metric)
    if row.std.get(metric) is not None:
        text += f" ± {fmt_value(row.std[metric], metric)}"
    text += interval_suffix(row.intervals, metric, fmt_value)
    if not row.paper and row.folds_with_value.get(metric, len(row.folds)) < len(row.folds):
        text += f" ({row.folds_with_value[metric]}/{len(row.folds)} folds)"
    if marks.get(metric) == "best":
        return f"**{text}**"
    if marks.get(metric) == "second":
        return f"<u>{text}</u>"
    return text


def _folds_cell(row: Row) -> str:
    if row.paper:
        return "—"
    text = fold_list(row.folds) if row.folds != [None] else (row.split or "all")
    if row.missing_folds:
        text += f" (missing {fold_list(row.missing_folds)})"
    return text


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def to_markdown(board: Leaderboard) -> str:
    """A GitHub-flavoured Markdown table: header arrows, mean ± std, best **bold**, second <u>underlined</u>,
    † reference-only rows, ‡ paper rows beside ours, then the notes (one paragraph each)."""
    ours = any(not r.paper for r in board.rows)
    header = ["Method", *(f"{LABELS[m]}{ARROWS[DIRECTIONS[m]]}" for m in METRICS)]
    align = ["---", *("---:" for _ in METRICS)]
    if ours:
        header += ["folds", "n", "signature", "row"]
        align += ["---", "---:", "---", "---"]
    table = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    for row, marks in zip(board.rows, board.marks):
        cells = [_md_escape(display_name(row, board)), *(_cell(row, m, marks) for m in METRICS)]
        if ours:
            cells += [_folds_cell(row), "—" if row.n is None else str(row.n),
                      f"`{row.signature}`" if row.signature else "—", row_kind(row)]
        table.append("| " + " | ".join(cells) + " |")
    has_ref = any(r.reference_only for r in board.rows)
    notes = list(board.notes)
    intro = [notes.pop(0)] if board.paper_table is not None else []
    paragraphs = [
        "**Bold**: best, <u>underlined</u>: second best per metric (↓ lower is better, ↑ higher is better; ties "
        "share a mark" + ("; rows marked † excluded" if has_ref else "") + ")."]
    if ours:
        paragraphs.append("Values: mean ± standard deviation (ddof=1) over the folds listed; [low, high]: the 95% "
                          "bootstrap interval of a single result scored with --bootstrap; signature: the first 8 "
                          "hex digits of the sha256 of the metric version, encoder ids, weights hashes and preset.")
    if has_ref:
        paragraphs.append(f"{REF_MARK} Reference only: shown in grey in the paper, as the method saw this dataset "
                          "in pre-training; excluded from the best / second-best marks.")
    paragraphs += notes
    if board.paper_table is not None:
        paragraphs.append(f"Source: `{REFERENCE_CSV}` (sha256 `{hashlib.sha256(reference_csv_bytes()).hexdigest()}`),"
                          f" rendered by `macs-bench leaderboard paper --table {board.paper_table}`.")
    blocks = [f"# {board.title}", *intro, "\n".join(table), *paragraphs]
    return "\n\n".join(blocks) + "\n"


def board_dict(board: Leaderboard) -> dict[str, Any]:
    """Everything the JSON rendering holds: every number, flag, fold, signature and source file."""
    rows = []
    for row, marks in zip(board.rows, board.marks):
        rows.append({
            "name": row.name, "display_name": display_name(row, board), "model": row.model, "paper": row.paper,
            "paper_table": row.paper_table, "reference_only": row.reference_only,
            "mean": {m: row.mean.get(m) for m in METRICS},
            "std": {m: row.std.get(m) for m in METRICS},
            "folds_with_value": {m: row.folds_with_value[m] for m in METRICS} if row.folds_with_value else None,
            "marks": {m: marks[m] for m in METRICS if m in marks},
            "folds": row.folds, "missing_folds": row.missing_folds, "split": row.split,
            "n": row.n, "n_per_fold": row.n_per_fold or None,
            "signature": row.signature, "signature_fields": row.signature_fields,
            "comparable_with_paper": row.comparable_with_paper, "sources": row.sources,
            **({"intervals": row.intervals} if row.intervals else {}), "row": describe(row),
        })
    return {
        "title": board.title,
        "dataset": board.dataset,
        "paper_table": board.paper_table,
        "paper_rows": board.paper_rows,
        "expected_folds": board.expected_folds,
        "metrics": list(METRICS),
        "labels": LABELS,
        "directions": DIRECTIONS,
        "marking": "best and second-best distinct value per metric over the ranked rows (not reference_only, "
                   "not controls, not may_have_seen_test); ties share; on boards of our results only where the "
                   "best's lead over the second is significant (see notes)",
        "rows": rows,
        "notes": board.notes,
        "reference": {"file": REFERENCE_CSV, "sha256": hashlib.sha256(reference_csv_bytes()).hexdigest()},
        "generator": GENERATOR, "tool_version": __version__,
    }


def to_json(board: Leaderboard) -> str:
    return dumps_json(board_dict(board))


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def to_csv(board: Leaderboard) -> str:
    """One line per row: flags, folds, samples, signature, then mean / std / folds with a value / mark per
    metric, the row's kind, source and may-have-seen-test flag, then the source files (``;``-separated);
    numbers at full precision."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    head = ["name", "model", "paper", "paper_table", "reference_only", "folds", "missing_folds", "split", "n",
            "signature", "comparable_with_paper"]
    for m in METRICS:
        head += [m, f"{m}_std", f"{m}_folds", f"{m}_mark"]
    writer.writerow(head + ["row_kind", "row_source", "may_have_seen_test", "sources"])
    for row, marks in zip(board.rows, board.marks):
        cells = [row.name, row.model, row.paper, row.paper_table, row.reference_only,
                 ";".join("all" if f is None else str(f) for f in row.folds), ";".join(map(str, row.missing_folds)),
                 row.split, row.n, row.signature, row.comparable_with_paper]
        for m in METRICS:
            cells += [row.mean.get(m), row.std.get(m), row.folds_with_value.get(m), marks.get(m, "")]
        cells += [row.kind, row.source, row.may_have_seen_test]
        writer.writerow([_csv_value(c) for c in cells] + [";".join(row.sources)])
    return buf.getvalue()


def write_leaderboard(out_dir: str | os.PathLike, board: Leaderboard, *, radar: bool = False,
                      radar_ranges: dict[str, tuple[float, float]] | None = None,
                      radar_note: str | None = None) -> dict[str, Path]:
    """Write ``leaderboard.md``, ``leaderboard.csv``, ``leaderboard.json`` (and ``radar.png``, on fixed axes
    when ``radar_ranges`` gives metric -> (worst, best)) atomically."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise MacsError(f"{out}: exists and is not a folder")
    paths = {"md": out / "leaderboard.md", "csv": out / "leaderboard.csv", "json": out / "leaderboard.json"}
    texts = {"md": to_markdown(board), "csv": to_csv(board), "json": to_json(board)}
    try:
        for key, path in paths.items():
            atomic_write_text(path, texts[key])
    except OSError as exc:
        raise MacsError(f"{exc.filename or out}: cannot write the leaderboard ({exc.strerror})") from None
    if radar:
        from macs_bench.boards.radar import radar_png

        paths["radar"] = radar_png(board.rows, out / "radar.png", title=board.title,
                                   names=[display_name(r, board) for r in board.rows], ranges=radar_ranges,
                                   scale_note=radar_note)
    return paths
