"""Paired differences between two models scored on the same samples: value, interval and p-value.

Pure functions over per-sample arrays and feature matrices aligned row by row (row i of model A, of model B and
of the reference are the same sample), grouped by unit (the manifest's video id). The same units are drawn for
both models in every round:

- the **interval** of ``metric(A) - metric(B)`` comes from :mod:`macs_bench.metrics.resample` (cluster
  bootstrap for means, m-out-of-n subsampling for set metrics), with both models on the drawn rows;
- the **p-value** is a paired permutation test: under "A and B are exchangeable" each video's generated
  images may be swapped between the models, so each round swaps the images of a random half of the videos
  and recomputes the difference; p = (1 + #{|d*| >= |d|}) / (1 + rounds), two-sided. For a mean this is the
  sign-flip test of the per-video differences; for a set metric it recomputes the metric on the swapped sets.

Several strata (folds) combine as the mean over strata of the per-stratum difference, as a leaderboard row
averages its folds; each stratum is resampled and permuted on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from macs_bench.errors import MacsError
from macs_bench.metrics.resample import LEVEL, check_options, interval, unit_groups

# d(rows, swap): the difference on those rows after swapping the models' images where swap is True (or None)
PairedStat = Callable[[np.ndarray, "np.ndarray | None"], "float | None"]
# on_rows(generated pool, reference) -> fn(generated rows, reference rows): a set metric over row indices
PooledMetric = Callable[[np.ndarray, np.ndarray], Callable[[np.ndarray, np.ndarray], "float | None"]]


@dataclass(frozen=True)
class Difference:
    """``metric(a) - metric(b)`` on the same samples, its interval, p-value and (when corrected) Holm's p."""

    metric: str
    a: str
    b: str
    value: float | None
    low: float | None
    high: float | None
    p: float | None
    p_adjusted: float | None = None
    kind: str = "mean"  # mean | set
    n: int = 0
    units: int = 0
    rounds: int = 0
    level: float = LEVEL

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def mean_difference(a: np.ndarray, b: np.ndarray) -> PairedStat:
    """The paired statistic of two per-sample arrays: mean(a - b) on the rows, NaN rows making it undefined."""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)

    def stat(rows: np.ndarray, swap: np.ndarray | None = None) -> float | None:
        x = d if swap is None else np.where(swap, -d, d)
        value = float(x[rows].mean())
        return value if np.isfinite(value) else None

    return stat


def set_difference(metric: Callable[[np.ndarray, np.ndarray], float | None], gen_a: np.ndarray,
                   gen_b: np.ndarray, ref: np.ndarray, on_rows: PooledMetric | None = None) -> PairedStat:
    """The paired statistic of a set metric ``metric(generated, reference)``: its value on A's rows minus B's.

    ``on_rows`` (optional) builds the same metric as a function of row indices into the stacked generated
    features ``[gen_a; gen_b]`` and into ``ref`` (KID's precomputed kernels): a swap then picks rows instead of
    copying features."""
    gen_a, gen_b, ref = (np.asarray(x) for x in (gen_a, gen_b, ref))
    if not gen_a.shape == gen_b.shape == ref.shape:
        raise MacsError(f"paired features must have one shape, got {gen_a.shape}, {gen_b.shape}, {ref.shape}")
    if on_rows is not None:
        pooled, n = on_rows(np.concatenate([gen_a, gen_b]), ref), len(gen_a)
        own = np.arange(n)

        def stat_on_rows(rows: np.ndarray, swap: np.ndarray | None = None) -> float | None:
            a_rows = own if swap is None else np.where(swap, own + n, own)  # A's images, B's where swapped
            b_rows = own + n if swap is None else np.where(swap, own, own + n)
            va, vb = pooled(a_rows[rows], rows), pooled(b_rows[rows], rows)
            return float(va - vb) if va is not None and vb is not None and np.isfinite(va - vb) else None

        return stat_on_rows

    def stat(rows: np.ndarray, swap: np.ndarray | None = None) -> float | None:
        a, b = gen_a, gen_b
        if swap is not None:
            a, b = np.where(swap[:, None], gen_b, gen_a), np.where(swap[:, None], gen_a, gen_b)
        va, vb = metric(a[rows], ref[rows]), metric(b[rows], ref[rows])
        if va is None or vb is None or not np.isfinite(va - vb):
            return None
        return float(va - vb)

    return stat


def permutation_p(point: float, stats: Sequence[PairedStat], strata_units: Sequence[np.ndarray], rounds: int,
                  rng: np.random.Generator) -> float | None:
    """Two-sided paired permutation p-value of the mean over strata (``strata_units[s][i]``: row i's unit)."""
    hits = used = 0
    for _ in range(rounds):
        values = []
        for fn, units in zip(stats, strata_units):
            flips = rng.random(int(units.max()) + 1) < 0.5
            values.append(fn(np.arange(len(units)), flips[units]))
        if any(v is None for v in values):
            continue
        used += 1
        hits += abs(float(np.mean(values))) >= abs(point) - 1e-12 * max(1.0, abs(point))
    return (1 + hits) / (1 + used) if used else None


def difference(stats: Sequence[PairedStat], units: Sequence[Sequence[Any]], kind: str, *, metric: str = "metric",
               a: str = "a", b: str = "b", rounds: int = 1000, seed: int = 0, level: float = LEVEL,
               with_interval: bool = True) -> Difference:
    """The :class:`Difference` of paired statistics over one or more strata (``units[s]``: stratum s's unit of
    each row), with one seeded generator for the interval and another for the permutation test
    (``with_interval=False``: the p-value only, as the leaderboard's marks need)."""
    check_options(rounds, level)
    groups = [unit_groups(u) for u in units]
    codes = [np.unique(np.asarray(u, dtype=object).astype(str), return_inverse=True)[1] for u in units]
    values = [fn(np.arange(len(u)), None) for fn, u in zip(stats, units)]
    point = float(np.mean(values)) if all(v is not None for v in values) else None
    if point is None:
        return Difference(metric, a, b, None, None, None, None, None, kind, sum(map(len, units)),
                          sum(map(len, groups)), 0, level)
    tag = [seed, *metric.encode()]
    ci = interval(point, [lambda rows, fn=fn: fn(rows, None) for fn in stats], groups, kind, rounds,
                  np.random.default_rng([*tag, 1]), level) if with_interval else \
        {"low": None, "high": None, "rounds": rounds}
    p = permutation_p(point, stats, codes, rounds, np.random.default_rng([*tag, 2]))
    return Difference(metric, a, b, point, ci["low"], ci["high"], p, None, kind, sum(map(len, units)),
                      sum(map(len, groups)), ci["rounds"], level)


def paired_difference(a, b, videos: Sequence[Any], *, rounds: int = 1000, seed: int = 0, level: float = LEVEL,
                      metric: str = "mean") -> Difference:
    """mean(a) - mean(b) of two per-sample arrays of the same samples, resampled by ``videos``."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if not a.shape == b.shape == (len(videos),):
        raise MacsError(f"paired arrays need one value per sample: got {a.shape}, {b.shape} for {len(videos)} "
                        "video ids")
    return difference([mean_difference(a, b)], [videos], "mean", metric=metric, rounds=rounds, seed=seed,
                      level=level)


def paired_set_difference(metric: Callable[[np.ndarray, np.ndarray], float | None], gen_a, gen_b, ref,
                          videos: Sequence[Any], *, rounds: int = 1000, seed: int = 0, level: float = LEVEL,
                          name: str = "set") -> Difference:
    """``metric(gen_a, ref) - metric(gen_b, ref)`` for feature matrices of the same samples, by ``videos``."""
    if len(gen_a) != len(videos):
        raise MacsError(f"paired features need one row per sample: {len(gen_a)} rows for {len(videos)} video ids")
    return difference([set_difference(metric, gen_a, gen_b, ref)], [videos], "set", metric=name, rounds=rounds,
                      seed=seed, level=level)


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (family-wise error), ``None`` kept in place and not counted."""
    idx = [i for i, p in enumerate(pvalues) if p is not None]
    order = sorted(idx, key=lambda i: pvalues[i])
    m, running = len(order), 0.0
    out: list[float | None] = [None] * len(pvalues)
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out
