"""Kernel Inception Distance: clean-fid's subset estimator with a seeded, private RNG."""

from __future__ import annotations

import numpy as np

from macs_bench.errors import MacsError
from macs_bench.metrics.fid import as_feature_matrix, check_same_dim


def _positive_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise MacsError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _cube(t: np.ndarray) -> np.ndarray:
    """``t ** 3`` by multiplication: numpy's float power is an order of magnitude slower here."""
    return t * t * t


def _subset_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 of two equal-size subsets under the cubic kernel (x.y/d + 1)^3, as clean-fid computes it."""
    m, d = x.shape
    a = _cube(x @ x.T / d + 1) + _cube(y @ y.T / d + 1)
    b = _cube(x @ y.T / d + 1)
    return ((a.sum() - np.diag(a).sum()) / (m - 1) - b.sum() * 2 / m) / m


def kernel_inception_distance(
    feats_a, feats_b, num_subsets: int = 100, max_subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """KID between two ``n x d`` feature sets: (mean, population std) of unbiased MMD^2 over random subsets.

    Same estimator and sampling order as clean-fid's ``kernel_distance`` (each subset draws
    ``m = min(n_a, n_b, max_subset_size)`` rows without replacement, from ``feats_b`` first, then
    ``feats_a``), but from ``np.random.RandomState(seed)`` instead of numpy's global RNG, so the mean
    equals clean-fid's after ``np.random.seed(seed)`` and the global RNG is left alone. clean-fid
    returns only the mean; the std (ddof=0, as torchmetrics reports it) is ours. Features are
    promoted to float64 first (clean-fid computes in the input dtype). When both sets have at most
    ``max_subset_size`` rows and the same count, every subset is a permutation of both whole sets, so one
    evaluation gives the mean (equal up to summation order) and the std is 0.
    """
    a = as_feature_matrix(feats_a, "feats_a")
    b = as_feature_matrix(feats_b, "feats_b")
    check_same_dim(a, b, "feats_a", "feats_b")
    num_subsets = _positive_int(num_subsets, "num_subsets", 1)
    max_subset_size = _positive_int(max_subset_size, "max_subset_size", 2)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise MacsError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    m = min(a.shape[0], b.shape[0], max_subset_size)
    if m == a.shape[0] == b.shape[0]:
        return _subset_mmd2(b, a), 0.0  # every subset is both whole sets (see the docstring)
    rng = np.random.RandomState(seed)
    values = np.empty(num_subsets)
    for k in range(num_subsets):
        x = b[rng.choice(b.shape[0], m, replace=False)]
        y = a[rng.choice(a.shape[0], m, replace=False)]
        values[k] = _subset_mmd2(x, y)
    return float(values.mean()), float(values.std())


def kid_resampler(feats_a, feats_b, num_subsets: int = 100, max_subset_size: int = 1000, seed: int = 0,
                  max_rows: int = 4096):
    """For the bootstrap: a function of row indices ``rows`` giving ``kernel_inception_distance(feats_a[rows],
    feats_b[rows], ...)``'s mean (paired sets of equal size), from kernel matrices computed once
    (:func:`kid_on_rows`)."""
    on_rows = kid_on_rows(feats_a, feats_b, num_subsets, max_subset_size, seed, max_rows)
    return lambda rows: on_rows(rows, rows)


def kid_on_rows(pool, ref, num_subsets: int = 100, max_subset_size: int = 1000, seed: int = 0,
                max_rows: int = 4096):
    """A function ``(gen_rows, ref_rows)`` giving ``kernel_inception_distance(pool[gen_rows], ref[ref_rows],
    ...)``'s mean, for resampling and for the paired test, whose swapped sets are rows of the two models'
    stacked features. The three kernel matrices are computed once, so a call gathers entries instead of
    multiplying features (``benchmarks/bootstrap_kid.py``); above ``max_rows`` rows in ``pool`` or ``ref``
    they would not fit comfortably, and each call recomputes instead."""
    pool = as_feature_matrix(pool, "feats_a")
    ref = as_feature_matrix(ref, "feats_b")
    check_same_dim(pool, ref, "feats_a", "feats_b")
    if max(pool.shape[0], ref.shape[0]) > max_rows:
        return lambda gen_rows, ref_rows: kernel_inception_distance(pool[gen_rows], ref[ref_rows], num_subsets,
                                                                    max_subset_size, seed)[0]
    d = pool.shape[1]
    k_gg, k_rr, k_gr = _cube(pool @ pool.T / d + 1), _cube(ref @ ref.T / d + 1), _cube(pool @ ref.T / d + 1)

    def mmd2(x: np.ndarray, y: np.ndarray) -> float:  # x: ref rows, y: generated rows, as _subset_mmd2
        m = len(x)
        within = k_rr[np.ix_(x, x)] + k_gg[np.ix_(y, y)]
        return ((within.sum() - np.trace(within)) / (m - 1) - k_gr[np.ix_(y, x)].sum() * 2 / m) / m

    def kid(gen_rows: np.ndarray, ref_rows: np.ndarray) -> float:
        n_gen, n_ref = len(gen_rows), len(ref_rows)
        m = min(n_gen, n_ref, max_subset_size)
        if m == n_gen == n_ref:
            return float(mmd2(ref_rows, gen_rows))  # every subset is both whole sets
        rng = np.random.RandomState(seed)  # the same draws, in the same order, as kernel_inception_distance
        values = np.empty(num_subsets)
        for k in range(num_subsets):
            x = ref_rows[rng.choice(n_ref, m, replace=False)]  # from feats_b first, as clean-fid draws
            y = gen_rows[rng.choice(n_gen, m, replace=False)]
            values[k] = mmd2(x, y)
        return float(values.mean())

    return kid
