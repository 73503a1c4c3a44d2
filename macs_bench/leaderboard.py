"""Leaderboards: aggregate ``macs-bench score`` results over folds, set them beside the paper's numbers, mark the
best and second best per metric, and render Markdown / CSV / JSON and a radar chart.

Results are only aggregated when they were measured the same way: the *signature* of a result (metric code
version, each encoder's id and weights hash, the encoder preset) must agree across every result of a table, or
each signature gets its own row (``separate_signatures``). The paper's rows (Tables 1-4, vendored as
``macs_bench/reference/paper_tables.csv``) join a table of our results only when every result ran the published
encoder weights (``comparable_with_paper``), unless asked otherwise.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

from macs_bench import __version__
from macs_bench.errors import MacsError
from macs_bench.io import atomic_write_bytes, atomic_write_text, dumps_json

GENERATOR = "macs-bench leaderboard"  # marks the JSON this module writes
METRICS = ("fid", "clip_fid", "kid", "ais", "ais_z", "iis", "iis_z")
LABELS = {"fid": "FID", "clip_fid": "CLIP-FID", "kid": "KID", "ais": "AIS", "ais_z": "AIS-z", "iis": "IIS",
          "iis_z": "IIS-z"}
# the same directions as macs_bench.score.DIRECTIONS (kept here so the leaderboard does not import torch)
DIRECTIONS = {"fid": "lower", "clip_fid": "lower", "kid": "lower", "ais": "higher", "ais_z": "higher",
              "iis": "higher", "iis_z": "higher"}
DECIMALS = {"fid": 2, "clip_fid": 2, "kid": 4, "ais": 4, "ais_z": 4, "iis": 4, "iis_z": 4}  # as the paper prints
ARROWS = {"lower": "↓", "higher": "↑"}
PAPER_ROWS = ("auto", "always", "never")

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
_CSV_METRICS = {"FID": "fid", "CLIP-FID": "clip_fid", "KID": "kid", "AIS": "ais", "AIS-z": "ais_z", "IIS": "iis",
                "IIS-z": "iis_z"}
REF_MARK, PAPER_MARK = "†", "‡"


# ---------------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Result:
    """One validated score result (the JSON ``macs-bench score`` writes) and where it came from."""

    source: str
    data: dict[str, Any]

    @property
    def model(self) -> str:
        return self.data["model"]

    @property
    def dataset(self) -> str | None:
        return self.data["dataset"]

    @property
    def fold(self) -> int | None:
        return self.data["fold"]

    @property
    def split(self) -> str | None:
        return self.data.get("split")

    @property
    def n(self) -> int:
        return self.data["n"]

    @property
    def metrics(self) -> dict[str, float | None]:
        return {m: self.data["metrics"][m] for m in METRICS}

    @property
    def comparable_with_paper(self) -> bool:
        return self.data["comparable_with_paper"]

    @property
    def signature_fields(self) -> dict[str, Any]:
        """What must agree for two results to be averaged or ranked together."""
        config = self.data.get("config") or {}
        out: dict[str, Any] = {"metric_version": self.data["metric_version"], "preset": config.get("preset")}
        for knob in ("kid_subsets", "kid_subset_size"):  # they change KID's value
            if knob in config:
                out[f"config.{knob}"] = config[knob]
        for name in sorted(self.data["encoders"]):
            enc = self.data["encoders"][name]
            out[f"encoders.{name}.weights"] = enc["weights"]  # first: a weights change also changes the id
            out[f"encoders.{name}.id"] = enc["id"]
        return out

    @property
    def signature(self) -> str:
        """The first 8 hex digits of the sha256 of :attr:`signature_fields` (canonical JSON)."""
        blob = json.dumps(self.signature_fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:8]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def parse_result(data: Any, source: str) -> Result:
    """Check that ``data`` is a macs score result; MacsError naming ``source`` and the first problem if not."""

    def bad(why: str) -> MacsError:
        return MacsError(f"{source}: not a macs score result ({why})")

    if not isinstance(data, dict):
        raise bad(f"a JSON {type(data).__name__}, not an object")
    for key in ("model", "dataset", "fold", "n", "metrics", "metric_version", "encoders", "comparable_with_paper"):
        if key not in data:
            raise bad(f"no {key!r}")
    if not isinstance(data["model"], str) or not data["model"].strip():
        raise bad("'model' must be a non-empty string")
    if data["dataset"] is not None and not isinstance(data["dataset"], str):
        raise bad("'dataset' must be a string")
    if data["fold"] is not None and (not isinstance(data["fold"], int) or isinstance(data["fold"], bool)):
        raise bad("'fold' must be an integer or null")
    if data.get("split") is not None and not isinstance(data["split"], str):
        raise bad("'split' must be a string or null")
    if not isinstance(data["n"], int) or isinstance(data["n"], bool) or data["n"] < 0:
        raise bad("'n' must be a non-negative integer")
    metrics = data["metrics"]
    if not isinstance(metrics, dict):
        raise bad("'metrics' must be an object")
    for m in METRICS:
        if m not in metrics:
            raise bad(f"no metric {m!r}")
        if metrics[m] is not None and not _is_number(metrics[m]):
            raise bad(f"metric {m!r} is {metrics[m]!r}, not a finite number or null")
    if not isinstance(data["metric_version"], str):
        raise bad("'metric_version' must be a string")
    encoders = data["encoders"]
    if not isinstance(encoders, dict) or not encoders:
        raise bad("'encoders' must be a non-empty object")
    for name, enc in encoders.items():
        if not isinstance(enc, dict) or not isinstance(enc.get("id"), str) or not isinstance(enc.get("weights"), str):
            raise bad(f"encoder {name!r} needs string 'id' and 'weights'")
    if not isinstance(data["comparable_with_paper"], bool):
        raise bad("'comparable_with_paper' must be true or false")
    if data.get("config") is not None and not isinstance(data["config"], dict):
        raise bad("'config' must be an object")
    return Result(source, data)


def load_results(path: str | os.PathLike) -> list[Result]:
    """Results from one JSON file, or from every ``*.json`` under a folder (recursively; other files skipped),
    sorted by path. Any JSON that is not a score result is an error naming it."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.json") if p.is_file())
        if not files:
            raise MacsError(f"{path}: no result JSON (*.json) under this folder")
    elif path.is_file():
        files = [path]
    else:
        raise MacsError(f"{path}: no such file or folder")
    results = []
    for file in files:
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise MacsError(f"{file}: cannot read ({exc.strerror})") from None
        except UnicodeDecodeError as exc:
            raise MacsError(f"{file}: not a macs score result (not UTF-8 text, byte {exc.start})") from None
        except ValueError as exc:
            raise MacsError(f"{file}: not a macs score result (invalid JSON: {exc})") from None
        if isinstance(data, dict) and data.get("generator") == GENERATOR:
            continue  # a leaderboard this tool wrote (e.g. --out inside --results), not a score result
        results.append(parse_result(data, str(file)))
    if not results:
        raise MacsError(f"{path}: no score result among its JSON files")
    return results


# ------------------------------------------------------------------------------------------------------- rows


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


def _first_difference(a: dict[str, Any], b: dict[str, Any]) -> str | None:
    for key in list(a) + [k for k in b if k not in a]:
        if a.get(key, "(absent)") != b.get(key, "(absent)"):
            return key
    return None


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    import numpy as np

    if not values:
        return None, None
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), (float(arr.std(ddof=1)) if len(arr) > 1 else None)


def aggregate(results: Iterable[Result | dict[str, Any]], dataset: str, *, folds: Iterable[int] | None = None,
              separate_signatures: bool = False) -> list[Row]:
    """One row per model (per model and signature with ``separate_signatures``), sorted by name: the folds
    present and missing, mean and std (ddof=1) per metric over the folds where it is defined, samples.

    Missing folds are relative to ``folds`` when given (a result of another fold is then an error), else to the
    union of the folds seen. Results of another dataset or split, two results for the same (model, fold), a
    model mixing per-fold and whole-set results, and (unless ``separate_signatures``) different signatures are
    errors naming the files.
    """
    results = [r if isinstance(r, Result) else parse_result(r, f"<result {i}>") for i, r in enumerate(results)]
    if not results:
        raise MacsError("no results to aggregate")
    for r in results:
        if r.dataset != dataset:
            raise MacsError(f"{r.source}: a result for dataset {r.dataset!r}, not {dataset!r}")
    first = results[0]
    for r in results[1:]:
        if r.split != first.split:
            raise MacsError(f"{first.source} and {r.source} differ in split ({first.split!r} vs {r.split!r}); "
                            "a leaderboard ranks one split")
    expected = sorted(set(folds)) if folds is not None else None
    if expected is not None:
        for r in results:
            if r.fold is None:
                raise MacsError(f"{r.source}: a whole-set result (fold null), but folds {_fold_list(expected)} "
                                "were asked for")
            if r.fold not in expected:
                raise MacsError(f"{r.source}: fold {r.fold} is not among the folds asked for "
                                f"({_fold_list(expected)})")
    else:
        expected = sorted({r.fold for r in results if r.fold is not None})
    if not separate_signatures:
        for r in results[1:]:
            key = _first_difference(first.signature_fields, r.signature_fields)
            if key is not None:
                raise MacsError(
                    f"{first.source} and {r.source} were measured differently: {key} is "
                    f"{first.signature_fields.get(key, '(absent)')!r} vs {r.signature_fields.get(key, '(absent)')!r}; "
                    "they are never averaged or ranked together (separate_signatures / --separate-signatures "
                    "lists each signature as its own row)")
    several = separate_signatures and len({r.signature for r in results}) > 1
    groups: dict[tuple[str, str | None], list[Result]] = {}
    for r in results:
        groups.setdefault((r.model, r.signature if several else None), []).append(r)
    rows = []
    for (model, sig), group in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        seen: dict[int | None, Result] = {}
        for r in group:
            if r.fold in seen:
                raise MacsError(f"{seen[r.fold].source} and {r.source}: two results for model {model!r}, "
                                f"fold {r.fold}")
            seen[r.fold] = r
        if None in seen and len(seen) > 1:
            other = next(r for f, r in seen.items() if f is not None)
            raise MacsError(f"{seen[None].source} (whole set, fold null) and {other.source} (fold {other.fold}): "
                            f"model {model!r} mixes per-fold and whole-set results")
        group = sorted(group, key=lambda r: -1 if r.fold is None else r.fold)
        mean, std, defined = {}, {}, {}
        for m in METRICS:
            values = [r.metrics[m] for r in group if r.metrics[m] is not None]
            mean[m], std[m] = _mean_std(values)
            defined[m] = len(values)
        present = [r.fold for r in group]
        rows.append(Row(
            name=f"{model} [{sig}]" if sig else model, mean=mean, std=std, folds_with_value=defined, folds=present,
            missing_folds=[f for f in expected if f not in present], split=first.split,
            n=sum(r.n for r in group), n_per_fold={"all" if r.fold is None else str(r.fold): r.n for r in group},
            model=model, signature=group[0].signature, signature_fields=group[0].signature_fields,
            comparable_with_paper=all(r.comparable_with_paper for r in group), sources=[r.source for r in group]))
    return rows


def _fold_list(folds: Iterable[int | None]) -> str:
    return ",".join("all" if f is None else str(f) for f in folds)


# ------------------------------------------------------------------------------------------- the paper's rows


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
               reference_only=rec["reference_only"], paper_table=rec["table"],
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


# ------------------------------------------------------------------------------------------------- marking


def _tie_key(value: float, metric: str) -> float:
    """Values that print alike tie: the marks must agree with what the table shows."""
    return float(_fmt(value, metric))


def mark(rows: list[Row]) -> list[dict[str, str]]:
    """Per row, ``{metric: "best" | "second"}``: the best and the second-best distinct value per metric by its
    direction, over the rows that are not reference-only; ties share the mark; None values are skipped.

    Rows measured differently (several signatures, see ``separate_signatures``) are not ranked at all."""
    marks: list[dict[str, str]] = [{} for _ in rows]
    if len({r.signature for r in rows if r.signature is not None}) > 1:
        return marks
    for m in METRICS:
        values = [(i, _tie_key(r.mean[m], m)) for i, r in enumerate(rows)
                  if not r.reference_only and r.mean.get(m) is not None]
        ranked = sorted({v for _, v in values}, reverse=DIRECTIONS[m] == "higher")
        for label, target in zip(("best", "second"), ranked):
            for i, v in values:
                if v == target:
                    marks[i][m] = label
    return marks


# --------------------------------------------------------------------------------------------- leaderboards


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

    @property
    def mixed(self) -> bool:
        """Whether paper rows and our rows share the table (then the paper rows are flagged)."""
        return any(r.paper for r in self.rows) and any(not r.paper for r in self.rows)


def build_leaderboard(results: Iterable[Result | dict[str, Any]], dataset: str, *,
                      folds: Iterable[int] | None = None, separate_signatures: bool = False,
                      paper_rows: str = "auto") -> Leaderboard:
    """Our results for ``dataset`` (see :func:`aggregate`) with the paper's rows for it per ``paper_rows``:
    ``auto`` adds them only when every result is comparable with the paper, ``always`` / ``never``."""
    if paper_rows not in PAPER_ROWS:
        raise MacsError(f"paper_rows must be one of {', '.join(PAPER_ROWS)}, got {paper_rows!r}")
    ours = aggregate(results, dataset, folds=folds, separate_signatures=separate_signatures)
    expected = sorted({f for r in ours for f in r.folds if f is not None} | {f for r in ours for f in r.missing_folds})
    reference = reference_rows(dataset)
    not_comparable = [r.name for r in ours if not r.comparable_with_paper]
    include = bool(reference) and (paper_rows == "always" or (paper_rows == "auto" and not not_comparable))
    rows = (reference if include else []) + ours
    notes = []
    if not_comparable:
        what = (f"{', '.join(not_comparable)}: scored with encoder weights other than the published ones "
                "(comparable_with_paper false), so the numbers are not comparable with the paper's")
        if reference and include:
            what += f"; the paper's rows ({PAPER_MARK}) are shown anyway (paper_rows='always')"
        elif reference and paper_rows == "auto":
            what += "; the paper's rows are left out (paper_rows='always' shows them anyway)"
        notes.append(f"Not comparable with the paper: {what}.")
    if not reference:
        notes.append(f"The paper reports no numbers for {dataset}.")
    if include:
        table = reference[0].paper_table
        notes.append(f"Rows marked {PAPER_MARK} are the paper's numbers (Table {table}, "
                     f"{TABLE_PROTOCOL[table]}), computed with the authors' code, not measured here.")
    missing = [f"{r.name} lacks fold{'s' if len(r.missing_folds) > 1 else ''} {_fold_list(r.missing_folds)}"
               for r in ours if r.missing_folds]
    if missing:
        notes.append(f"Missing folds: {'; '.join(missing)}.")
    if len({r.signature for r in ours}) > 1:
        notes.append("The rows were measured differently (see the signature column): they are listed, not ranked, "
                     "so no cell is marked.")
    return Leaderboard(title=f"Leaderboard: {dataset}", dataset=dataset, rows=rows, marks=mark(rows), notes=notes,
                       paper_rows=paper_rows, expected_folds=expected or None)


def paper_leaderboard(n: int) -> Leaderboard:
    """The paper's Table ``n`` alone, marked by the same rules as our leaderboards."""
    rows = paper_table(n)
    dataset = PAPER_DATASETS[next(rec["dataset"] for rec in _paper_records() if rec["table"] == n)]
    notes = [f"{TABLE_CAPTIONS[n]}: the numbers as reported in the paper (MACS, AAAI 2026), "
             f"{TABLE_PROTOCOL[n]}; macs dataset `{dataset}`."]
    return Leaderboard(title=f"Paper Table {n}: {TABLE_TITLES[n]}", dataset=dataset,
                       rows=rows, marks=mark(rows), notes=notes, paper_table=n)


# ------------------------------------------------------------------------------------------------ renderers


def display_name(row: Row, board: Leaderboard) -> str:
    """The row's name with its flags: † reference-only, ‡ a paper row in a table of our results."""
    return row.name + (REF_MARK if row.reference_only else "") + (PAPER_MARK if row.paper and board.mixed else "")


def _fmt(value: float | None, metric: str) -> str:
    return "—" if value is None else f"{value:.{DECIMALS[metric]}f}"


def _cell(row: Row, metric: str, marks: dict[str, str]) -> str:
    value = row.mean.get(metric)
    if value is None:
        return "—"
    text = _fmt(value, metric)
    if row.std.get(metric) is not None:
        text += f" ± {_fmt(row.std[metric], metric)}"
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
    text = _fold_list(row.folds) if row.folds != [None] else (row.split or "all")
    if row.missing_folds:
        text += f" (missing {_fold_list(row.missing_folds)})"
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
        header += ["folds", "n", "signature"]
        align += ["---", "---:", "---"]
    table = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    for row, marks in zip(board.rows, board.marks):
        cells = [_md_escape(display_name(row, board)), *(_cell(row, m, marks) for m in METRICS)]
        if ours:
            cells += [_folds_cell(row), "—" if row.n is None else str(row.n),
                      f"`{row.signature}`" if row.signature else "—"]
        table.append("| " + " | ".join(cells) + " |")
    has_ref = any(r.reference_only for r in board.rows)
    notes = list(board.notes)
    intro = [notes.pop(0)] if board.paper_table is not None else []
    paragraphs = [
        "**Bold**: best, <u>underlined</u>: second best per metric (↓ lower is better, ↑ higher is better; ties "
        "share a mark" + ("; rows marked † excluded" if has_ref else "") + ")."]
    if ours:
        paragraphs.append("Values: mean ± standard deviation (ddof=1) over the folds listed; signature: the first 8 "
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
        "marking": "best and second-best distinct value per metric over the rows not reference_only; ties share",
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
    metric, then the source files (``;``-separated); numbers at full precision."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    head = ["name", "model", "paper", "paper_table", "reference_only", "folds", "missing_folds", "split", "n",
            "signature", "comparable_with_paper"]
    for m in METRICS:
        head += [m, f"{m}_std", f"{m}_folds", f"{m}_mark"]
    writer.writerow(head + ["sources"])
    for row, marks in zip(board.rows, board.marks):
        cells = [row.name, row.model, row.paper, row.paper_table, row.reference_only,
                 ";".join("all" if f is None else str(f) for f in row.folds), ";".join(map(str, row.missing_folds)),
                 row.split, row.n, row.signature, row.comparable_with_paper]
        for m in METRICS:
            cells += [row.mean.get(m), row.std.get(m), row.folds_with_value.get(m), marks.get(m, "")]
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
        paths["radar"] = radar_png(board.rows, out / "radar.png", title=board.title,
                                   names=[display_name(r, board) for r in board.rows], ranges=radar_ranges,
                                   scale_note=radar_note)
    return paths


# ---------------------------------------------------------------------------------------------------- radar


RADAR_SIZE = 800  # pixels, square


def radar_values(rows: list[Row], ranges: dict[str, tuple[float, float]] | None = None) -> list[list[float]]:
    """Per row, each metric on [0, 1] with 1 the best. With ``ranges`` (metric -> (worst, best)), a fixed axis:
    (v - worst) / (best - worst), clipped to [0, 1]. Without, min-max normalised across the rows, lower-is-better
    metrics inverted; a metric on which every row agrees is 1. A missing value is NaN."""
    out = [[math.nan] * len(METRICS) for _ in rows]
    for j, m in enumerate(METRICS):
        values = [r.mean.get(m) for r in rows]
        present = [v for v in values if v is not None]
        if not present:
            continue
        if ranges is not None and m in ranges:
            worst, best = ranges[m]
            for i, v in enumerate(values):
                if v is not None:
                    out[i][j] = min(1.0, max(0.0, (v - worst) / (best - worst))) if best != worst else math.nan
            continue
        lo, hi = min(present), max(present)
        for i, v in enumerate(values):
            if v is None:
                continue
            norm = 1.0 if hi == lo else (v - lo) / (hi - lo)
            out[i][j] = 1.0 - norm if DIRECTIONS[m] == "lower" and hi != lo else norm
    return out


def radar_png(rows: list[Row], path: str | os.PathLike, *, title: str | None = None,
              names: list[str] | None = None, size: int = RADAR_SIZE,
              ranges: dict[str, tuple[float, float]] | None = None, scale_note: str | None = None) -> Path:
    """A radar chart in the style of the paper's Fig. 1 (one axis per metric, values normalised across the rows,
    outward is better), ``size`` x ``size`` pixels, written atomically with matplotlib's Agg backend."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not rows:
        raise MacsError("a radar chart needs at least one row")
    names = names or [r.name + (REF_MARK if r.reference_only else "") for r in rows]
    values = radar_values(rows, ranges)
    dpi = 100
    fig = Figure(figsize=(size / dpi, size / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.15, 0.24, 0.70, 0.64), projection="polar")
    ax.set_theta_offset(math.pi / 2)  # FID at the top, clockwise
    ax.set_theta_direction(-1)
    angles = [2 * math.pi * j / len(METRICS) for j in range(len(METRICS))]
    cmap = matplotlib.colormaps["tab10" if len(rows) <= 10 else "tab20"]
    for i, (row, name, vals) in enumerate(zip(rows, names, values)):
        style = "--" if row.reference_only else ":" if row.paper and any(not r.paper for r in rows) else "-"
        color = cmap(i % cmap.N)
        ax.plot(angles + angles[:1], vals + vals[:1], style, color=color, linewidth=1.8, marker="o", markersize=3,
                label=name)
        if not row.reference_only:
            ax.fill(angles + angles[:1], [0 if math.isnan(v) else v for v in vals + vals[:1]], color=color,
                    alpha=0.06)
    ax.set_xticks(angles)
    ax.set_xticklabels([f"{LABELS[m]}{ARROWS[DIRECTIONS[m]]}" + (" (inv.)" if DIRECTIONS[m] == "lower" else "")
                        for m in METRICS], fontsize=11)
    ax.set_ylim(0, 1.05)
    ax.set_rorigin(-0.15)
    ax.set_yticks([0.25, 0.5, 0.75, 1.0])
    ax.set_yticklabels([])
    ax.tick_params(axis="x", pad=16)
    if title:
        fig.suptitle(title, fontsize=14, y=0.975)
    fig.legend(loc="lower center", ncol=2 if len(rows) > 4 else 1, fontsize=10, frameon=False,
               bbox_to_anchor=(0.5, 0.01))
    note = scale_note or ("fixed axis ranges" if ranges else "min-max normalised across rows")
    fig.text(0.99, 0.005, f"{note}; outward is better", ha="right", va="bottom",
             fontsize=8, color="0.4")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    path = Path(path)
    try:
        atomic_write_bytes(path, buf.getvalue())
    except OSError as exc:
        raise MacsError(f"{exc.filename or path}: cannot write the radar chart ({exc.strerror})") from None
    return path


__all__ = ["METRICS", "LABELS", "DIRECTIONS", "Result", "Row", "Leaderboard", "parse_result", "load_results",
           "aggregate", "paper_table", "reference_rows", "mark", "build_leaderboard", "paper_leaderboard",
           "to_markdown", "to_csv", "to_json", "board_dict", "write_leaderboard", "radar_values", "radar_png",
           "reference_csv_bytes", "display_name"]
