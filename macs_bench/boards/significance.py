"""Best marks that mean something: a best row is marked only where its lead over the second is significant.

For each metric, the best row is compared with the second-best row(s) by :func:`macs_bench.compare` (the same
videos for both, a paired permutation test; fold by fold for rows of several folds), and the p-values of the
table's metrics are Holm-corrected together. Where the lead is not significant at ``alpha``, or cannot be
tested (a tie, a quoted row, no per-sample data or features, different sample sets), neither the best nor the
second mark is shown for that metric, and the caption says why.
"""

from __future__ import annotations

from typing import Any

from macs_bench.errors import MacsError
from macs_bench.metric_spec import DIRECTIONS, LABELS, PAPER_METRICS as METRICS

ALPHA = 0.05
ROUNDS = 300  # permutations: 7 metrics at the smallest p, 1/301, still pass Holm at 0.05


def _test(best, second, metric: str, rounds: int, seed: int) -> tuple[float | None, str]:
    """(raw p, why untested) of best's lead over second on ``metric``."""
    from macs_bench.comparison import compare

    for row in (best, second):
        if row.source != "computed" or not row.results:
            return None, f"{row.name} is quoted, not computed here"
    try:
        c = compare([*best.results, *second.results], metrics=[metric], rounds=rounds, seed=seed,
                    intervals=False)
    except MacsError as exc:
        return None, str(exc).split(";")[0]
    d = c.differences[0]
    if d.value is None or d.p is None:
        return None, "undefined difference"
    lower_better = DIRECTIONS[metric] == "lower"
    if (d.value < 0) != lower_better or d.value == 0:  # compare's a is the best row's model
        return 1.0, ""
    return d.p, ""


def significant_marks(rows, marks: list[dict[str, str]], *, rounds: int = ROUNDS, seed: int = 0,
                      alpha: float = ALPHA) -> tuple[list[dict[str, str]], list[str]]:
    """The marks with every best / second cleared where the best's lead is not significant, and the notes."""
    from macs_bench.metrics.paired import holm

    tests: list[tuple[str, float | None]] = []
    why: dict[str, str] = {}
    for m in METRICS:
        best = [i for i, mk in enumerate(marks) if mk.get(m) == "best"]
        second = [i for i, mk in enumerate(marks) if mk.get(m) == "second"]
        if not best:
            continue
        if len(best) > 1:
            why[m] = "a tie for best"
        elif not second:
            why[m] = "no second row to lead"
        else:
            ps = []
            for j in second:
                p, reason = _test(rows[best[0]], rows[j], m, rounds, seed)
                if p is None:
                    why[m] = reason
                    break
                ps.append(p)
            else:
                tests.append((m, max(ps)))
    adjusted = dict(zip([m for m, _ in tests], holm([p for _, p in tests])))
    for m, q in adjusted.items():
        if q >= alpha:
            why[m] = f"lead not significant (p = {q:.3g}, Holm)"
    out = [{m: v for m, v in mk.items() if m not in why} for mk in marks]
    notes = []
    if any(mk for mk in marks):
        notes.append(f"Best and second are marked only where the best row's lead over the second is significant: "
                     f"paired permutation test on the same videos ({rounds} rounds, `macs-bench compare`), "
                     f"Holm-corrected over the table's metrics, α = {alpha}.")
    if why:
        notes.append("Not marked: " + "; ".join(f"{LABELS[m]} ({w})" for m, w in why.items()) + ".")
    return out, notes


def row_kind(row) -> str:
    """How the table labels a row: computed or quoted, and control / may have seen the test clips."""
    parts = [row.source]
    if row.kind == "control":
        parts.append("control")
    if row.may_have_seen_test:
        parts.append("may have seen the test clips")
    return ", ".join(parts)


def describe(row) -> dict[str, Any]:
    return {"kind": row.kind, "source": row.source, "may_have_seen_test": row.may_have_seen_test,
            "note": row.note}
