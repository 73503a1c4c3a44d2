"""Seeded bootstrap confidence intervals over samples (percentile method).

Each round draws N sample indices with replacement from a private ``np.random.default_rng(seed)`` and recomputes
every metric on those rows, keeping the pairs together (generated image i with ground truth i and audio i). A
metric that is a mean of per-sample values (AIS, IIS, their z-scores, coverage, AIC) is resampled as that mean;
a set distance (FID, KID, CMMD, PRDC) is recomputed from the resampled features. Rounds in which a metric is
undefined are left out of its interval, and the count of rounds used is recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from macs_bench.errors import MacsError

LEVEL = 0.95


def bootstrap_intervals(metrics: dict[str, Callable[[np.ndarray], float | None]], n: int, rounds: int,
                        seed: int = 0, level: float = LEVEL) -> dict[str, dict[str, Any]]:
    """``{metric: {"low", "high", "rounds"}}``: the (1 - level)/2 and (1 + level)/2 quantiles of each metric
    over ``rounds`` resamples of N rows. ``metrics`` maps a name to a function of the row indices."""
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 2:
        raise MacsError(f"the bootstrap needs at least 2 rounds, got {rounds!r}")
    if not 0 < level < 1:
        raise MacsError(f"the interval level must lie in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    values: dict[str, list[float]] = {name: [] for name in metrics}
    for _ in range(rounds):  # round by round, so the metrics of one draw can share work
        rows = rng.integers(0, n, size=n)
        for name, fn in metrics.items():
            value = fn(rows)
            if value is not None and np.isfinite(value):
                values[name].append(float(value))
    out = {}
    for name, kept in values.items():
        if len(kept) < 2:
            out[name] = {"low": None, "high": None, "rounds": len(kept)}
            continue
        low, high = np.quantile(kept, [(1 - level) / 2, (1 + level) / 2])
        out[name] = {"low": float(low), "high": float(high), "rounds": len(kept)}
    return out


def mean_of(values: np.ndarray) -> Callable[[np.ndarray], float | None]:
    """A per-sample mean as a function of row indices (NaN rows, e.g. undefined z, make it undefined)."""
    array = np.asarray(values, dtype=np.float64)
    return lambda rows: float(array[rows].mean())


def on_rows(fn: Callable[..., float | None], *feature_sets: np.ndarray) -> Callable[[np.ndarray], float | None]:
    """A set metric recomputed on the same resampled rows of each paired feature set."""
    return lambda rows: fn(*(f[rows] for f in feature_sets))
