"""Bootstrap confidence intervals (``score --bootstrap``) on the leaderboard.

A row of one result (one fold, or a whole-set / split run) shows its 95% interval beside the value; a row of
several folds shows mean ± std over the folds as before, and the JSON keeps every fold's interval.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def fold_intervals(results: Iterable[Any], metrics: Iterable[str]) -> dict[str, list[list[float] | None]]:
    """Per metric, each result's ``[low, high]`` (``None`` where it has none), in the rows' fold order; empty
    when no result carries intervals."""
    results = list(results)
    found = [((r.data.get("intervals") or {}).get("metrics") or {}) for r in results]
    if not any(found):
        return {}
    out = {}
    for m in metrics:
        per_fold = []
        for intervals in found:
            ci = intervals.get(m) or {}
            low, high = ci.get("low"), ci.get("high")
            per_fold.append([low, high] if low is not None and high is not None else None)
        out[m] = per_fold
    return out


def interval_suffix(intervals: dict[str, list[list[float] | None]], metric: str,
                    fmt: Callable[[float, str], str]) -> str:
    """`` [low, high]`` for a row of exactly one result with an interval for ``metric``, else empty."""
    per_fold = intervals.get(metric) or []
    if len(per_fold) != 1 or per_fold[0] is None:
        return ""
    low, high = per_fold[0]
    return f" [{fmt(low, metric)}, {fmt(high, metric)}]"
