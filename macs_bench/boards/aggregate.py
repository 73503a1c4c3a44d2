"""Aggregate score results over folds into leaderboard rows, and set them beside the paper's rows.

Results are only aggregated when they were measured the same way: the *signature* of a result (metric code
version, each encoder's id and weights hash, the encoder preset) must agree across every result of a table, or
each signature gets its own row (``separate_signatures``). The paper's rows join a table of our results only
when every result ran the published encoder weights (``comparable_with_paper``), unless asked otherwise.
"""

from __future__ import annotations

from typing import Any, Iterable

from macs_bench.errors import MacsError
from macs_bench.boards.intervals import fold_intervals
from macs_bench.boards.paper import TABLE_PROTOCOL, reference_rows
from macs_bench.boards.rows import PAPER_MARK, Leaderboard, Row, fold_list, mark
from macs_bench.boards.significance import significant_marks
from macs_bench.metric_spec import PAPER_METRICS as METRICS
from macs_bench.results import ScoreResult

PAPER_ROWS = ("auto", "always", "never")


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


def aggregate(results: Iterable[ScoreResult | dict[str, Any]], dataset: str, *, folds: Iterable[int] | None = None,
              separate_signatures: bool = False) -> list[Row]:
    """One row per model (per model and signature with ``separate_signatures``), sorted by name: the folds
    present and missing, mean and std (ddof=1) per metric over the folds where it is defined, samples.

    Missing folds are relative to ``folds`` when given (a result of another fold is then an error), else to the
    union of the folds seen. Results of another dataset or split, two results for the same (model, fold), a
    model mixing per-fold and whole-set results, and (unless ``separate_signatures``) different signatures are
    errors naming the files.
    """
    results = [r if isinstance(r, ScoreResult) else ScoreResult.from_dict(r, f"<result {i}>")
               for i, r in enumerate(results)]
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
                raise MacsError(f"{r.source}: a whole-set result (fold null), but folds {fold_list(expected)} "
                                "were asked for")
            if r.fold not in expected:
                raise MacsError(f"{r.source}: fold {r.fold} is not among the folds asked for "
                                f"({fold_list(expected)})")
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
    groups: dict[tuple[str, str | None], list[ScoreResult]] = {}
    for r in results:
        groups.setdefault((r.model, r.signature if several else None), []).append(r)
    rows = []
    for (model, sig), group in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        seen: dict[int | None, ScoreResult] = {}
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
        kinds = [r.row for r in group]
        seen_test = [k["may_have_seen_test"] for k in kinds]
        rows.append(Row(
            name=f"{model} [{sig}]" if sig else model, mean=mean, std=std, folds_with_value=defined, folds=present,
            missing_folds=[f for f in expected if f not in present], split=first.split,
            n=sum(r.n for r in group), n_per_fold={"all" if r.fold is None else str(r.fold): r.n for r in group},
            model=model, signature=group[0].signature, signature_fields=group[0].signature_fields,
            comparable_with_paper=all(r.comparable_with_paper for r in group), sources=[r.source for r in group],
            intervals=fold_intervals(group, METRICS),
            kind="control" if any(k["kind"] == "control" for k in kinds) else "model",
            source="quoted" if any(k["source"] == "quoted" for k in kinds) else "computed",
            may_have_seen_test=True if True in seen_test else (None if None in seen_test else False),
            note="; ".join(dict.fromkeys(k["note"] for k in kinds if k["note"])), results=group))
    return rows




def build_leaderboard(results: Iterable[ScoreResult | dict[str, Any]], dataset: str, *,
                      folds: Iterable[int] | None = None, separate_signatures: bool = False,
                      paper_rows: str = "auto", significance: bool = True, rounds: int = 300,
                      seed: int = 0) -> Leaderboard:
    """Our results for ``dataset`` (see :func:`aggregate`) with the paper's rows for it per ``paper_rows``:
    ``auto`` adds them only when every result is comparable with the paper, ``always`` / ``never``.

    With ``significance`` (the default) a best mark stands only where the best row's lead over the second is
    significant (:mod:`.significance`, ``rounds`` permutations); without, marks go by value alone."""
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
    missing = [f"{r.name} lacks fold{'s' if len(r.missing_folds) > 1 else ''} {fold_list(r.missing_folds)}"
               for r in ours if r.missing_folds]
    if missing:
        notes.append(f"Missing folds: {'; '.join(missing)}.")
    if len({r.signature for r in ours}) > 1:
        notes.append("The rows were measured differently (see the signature column): they are listed, not ranked, "
                     "so no cell is marked.")
    controls = [r.name for r in ours if r.kind == "control"]
    if controls:
        notes.append(f"Controls, never ranked: {', '.join(controls)} (a cheat that wins against them is caught; "
                     "they are not models).")
    seen = [r.name for r in ours if r.may_have_seen_test]
    if seen:
        notes.append(f"May have seen the test clips, kept out of the marks: {', '.join(seen)}.")
    marks = mark(rows)
    if significance:
        marks, why = significant_marks(rows, marks, rounds=rounds, seed=seed)
        notes += why
    else:
        notes.append("Marks go by value alone (no significance test was asked for).")
    return Leaderboard(title=f"Leaderboard: {dataset}", dataset=dataset, rows=rows, marks=marks, notes=notes,
                       paper_rows=paper_rows, expected_folds=expected or None)
