"""Seeded resampling intervals by unit (the manifest's video id): clips of one video always move together.

Two methods, one per kind of statistic (``docs/scoring.md``, "Intervals"):

- a **mean** of per-sample values (AIS, IIS, their z-scores, coverage, AIC): the cluster bootstrap, units
  drawn with replacement, percentile interval (duplicates do not bias a mean);
- a **set** metric (FID, CLIP-FID, KID, CMMD, FD-DINOv2, PRDC): m-out-of-n subsampling *without* replacement,
  since a duplicated row biases every set metric (KID's diagonal, the covariances, the k-NN radii). Half of the
  rounds draw b1 = n/2 units, half b2 = n/4. The spread of the estimator over subsamples of b units is
  ``A (1/b - 1/n) + C (1/b^2 - 1/n^2)`` (the finite-population variance of a statistic with a linear part A and
  a degenerate quadratic part C, as a U-statistic under the null); A and C are fitted from the two sizes
  (non-negative least squares), giving the variance at n, ``A/n + C/n^2``. The interval is the point
  estimate plus the quantiles of the rescaled b1-deviations (percentile form: in the coverage test the
  reflected "basic" form under-covered the skewed CMMD and PRDC coverage, 0.81-0.88), so it always contains
  the point estimate.
  It covers the estimator's expectation at this N: the population value for the unbiased estimators (KID,
  ``cmmd_unbiased``), the same-N value for the biased ones (FID, CMMD, PRDC), which is why only runs of equal
  N are compared.

Several strata (folds) combine as the mean over strata, each resampled on its own in every round. Rounds in
which a statistic is undefined are left out, and the count used is recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from macs_bench.errors import MacsError

LEVEL = 0.95
METHODS = {"mean": "cluster bootstrap over units, percentile",
           "set": "m-out-of-n subsampling of units without replacement (n/2 and n/4), variance-rescaled, percentile"}
MIN_UNITS = 4  # below this no subsample of n/4 units exists
Statistic = Callable[[np.ndarray], "float | None"]  # a value from row indices


def unit_groups(units: Sequence[Any]) -> list[np.ndarray]:
    """Row indices of each unit, units in first-seen order (``units[i]`` is row i's video id)."""
    groups: dict[Any, list[int]] = {}
    for i, u in enumerate(units):
        groups.setdefault(u, []).append(i)
    return [np.asarray(g, dtype=np.intp) for g in groups.values()]


def check_options(rounds: int, level: float) -> None:
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 4:
        raise MacsError(f"resampling needs at least 4 rounds, got {rounds!r}")
    if not 0 < level < 1:
        raise MacsError(f"the interval level must lie in (0, 1), got {level}")


def _value(fn: Statistic, rows: np.ndarray) -> float | None:
    """The statistic on ``rows``; None where it is undefined there (e.g. PRDC on k rows or fewer)."""
    try:
        v = fn(rows)
    except MacsError:
        return None
    return float(v) if v is not None and np.isfinite(v) else None


def _nan(value: float | None) -> float:
    return np.nan if value is None else value


def _rows(groups: list[np.ndarray], picked: np.ndarray) -> np.ndarray:
    return np.concatenate([groups[i] for i in picked])


def bootstrap_draws(stats: Sequence[Statistic], strata: Sequence[list[np.ndarray]], rounds: int,
                    rng: np.random.Generator) -> np.ndarray:
    """Per round, the mean over strata of each stratum's statistic on units drawn with replacement (NaN when
    undefined in any stratum)."""
    out = np.full(rounds, np.nan)
    for r in range(rounds):
        values = [_value(fn, _rows(g, rng.integers(0, len(g), size=len(g)))) for fn, g in zip(stats, strata)]
        if all(v is not None for v in values):
            out[r] = float(np.mean(values))
    return out


def subsample_deviations(stats: Sequence[Statistic], strata: Sequence[list[np.ndarray]], rounds: int,
                         rng: np.random.Generator) -> np.ndarray:
    """Per round, the mean over strata of each stratum's rescaled deviation (estimated law of ``value - E``),
    NaN where undefined; empty when a stratum has fewer than :data:`MIN_UNITS` units."""
    per_stratum = []
    for fn, groups in zip(stats, strata):
        n = len(groups)
        if n < MIN_UNITS:
            return np.empty(0)
        b1, b2 = n // 2, max(2, n // 4)
        r1 = (rounds + 1) // 2
        draws = {b: np.array([_nan(_value(fn, _rows(groups, rng.choice(n, b, replace=False))))
                              for _ in range(k)]) for b, k in ((b1, r1), (b2, rounds - r1))}
        per_stratum.append(_rescaled(draws[b1], draws[b2], b1, b2, n, r1))
    return np.mean(per_stratum, axis=0)


def _rescaled(d1: np.ndarray, d2: np.ndarray, b1: int, b2: int, n: int, r1: int) -> np.ndarray:
    """The b1-deviations scaled to the fitted variance at n (see the module docstring)."""
    from scipy.optimize import nnls

    kept1, kept2 = d1[np.isfinite(d1)], d2[np.isfinite(d2)]
    if len(kept1) < 2 or len(kept2) < 2:
        return np.full(r1, np.nan)
    v1, v2 = kept1.var(ddof=1), kept2.var(ddof=1)
    design = np.array([[1 / b - 1 / n, 1 / b**2 - 1 / n**2] for b in (b1, b2)])
    scale = max(v1, v2, 1e-300)
    (a, c), _ = nnls(design / scale, np.array([v1, v2]) / scale)
    target = a / n + c / n**2
    factor = np.sqrt(target / v1) if v1 > 0 else 0.0
    return (d1 - kept1.mean()) * factor


def interval_from(point: float | None, kind: str, draws: np.ndarray, level: float) -> dict[str, Any]:
    """``{"low", "high", "rounds"}`` from bootstrap values (``mean``) or rescaled deviations (``set``)."""
    kept = draws[np.isfinite(draws)]
    if point is None or len(kept) < 2:
        return {"low": None, "high": None, "rounds": int(len(kept))}
    lo, hi = np.quantile(kept, [(1 - level) / 2, (1 + level) / 2])
    if kind == "mean":
        return {"low": float(lo), "high": float(hi), "rounds": int(len(kept))}
    return {"low": float(point + lo), "high": float(point + hi), "rounds": int(len(kept))}


def interval(point: float | None, stats: Sequence[Statistic], strata: Sequence[list[np.ndarray]], kind: str,
             rounds: int, rng: np.random.Generator, level: float = LEVEL) -> dict[str, Any]:
    """The interval of ``point`` (the mean over strata of each statistic on all its rows) by ``kind``."""
    if kind not in METHODS:
        raise MacsError(f"unknown statistic kind {kind!r}; choose mean or set")
    draws = (bootstrap_draws if kind == "mean" else subsample_deviations)(stats, strata, rounds, rng)
    return interval_from(point, kind, draws, level)


def resample_intervals(metrics: dict[str, tuple[str, Statistic]], units: Sequence[Any], rounds: int,
                       seed: int = 0, level: float = LEVEL) -> dict[str, dict[str, Any]]:
    """``{metric: {"low", "high", "rounds", "method"}}`` for one set of rows grouped by ``units``;
    ``metrics`` maps a name to (``"mean"`` or ``"set"``, a function of row indices). Each metric restarts
    ``np.random.default_rng(seed)``, so every metric of a kind sees the same draws and adding a metric leaves
    the others' intervals unchanged."""
    check_options(rounds, level)
    groups = unit_groups(units)
    everything = np.arange(len(units))
    out = {}
    for name, (kind, fn) in metrics.items():
        rng = np.random.default_rng(seed)
        out[name] = {**interval(_value(fn, everything), [fn], [groups], kind, rounds, rng, level),
                     "method": kind}
    return out


def mean_of(values: np.ndarray) -> Statistic:
    """A per-sample mean as a function of row indices (NaN rows, e.g. undefined z, make it undefined)."""
    array = np.asarray(values, dtype=np.float64)
    return lambda rows: float(array[rows].mean())


def on_rows(fn: Callable[..., float | None], *feature_sets: np.ndarray) -> Statistic:
    """A set metric recomputed on the same rows of each paired feature set."""
    return lambda rows: fn(*(f[rows] for f in feature_sets))
