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
    promoted to float64 first (clean-fid computes in the input dtype).
    """
    a = as_feature_matrix(feats_a, "feats_a")
    b = as_feature_matrix(feats_b, "feats_b")
    check_same_dim(a, b, "feats_a", "feats_b")
    num_subsets = _positive_int(num_subsets, "num_subsets", 1)
    max_subset_size = _positive_int(max_subset_size, "max_subset_size", 2)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise MacsError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    rng = np.random.RandomState(seed)
    m = min(a.shape[0], b.shape[0], max_subset_size)
    values = np.empty(num_subsets)
    for k in range(num_subsets):
        x = b[rng.choice(b.shape[0], m, replace=False)]
        y = a[rng.choice(a.shape[0], m, replace=False)]
        values[k] = _subset_mmd2(x, y)
    return float(values.mean()), float(values.std())


def kid_resampler(feats_a, feats_b, num_subsets: int = 100, max_subset_size: int = 1000, seed: int = 0,
                  max_rows: int = 4096):
    """For the bootstrap: a function of row indices ``rows`` giving ``kernel_inception_distance(feats_a[rows],
    feats_b[rows], ...)``'s mean (paired sets of equal size), from kernel matrices computed once, so a round
    gathers entries instead of multiplying features (``benchmarks/bootstrap_kid.py``). Above
    ``max_rows`` samples the three N x N matrices would not fit comfortably: each round recomputes instead."""
    a = as_feature_matrix(feats_a, "feats_a")
    b = as_feature_matrix(feats_b, "feats_b")
    check_same_dim(a, b, "feats_a", "feats_b")
    if a.shape[0] != b.shape[0] or a.shape[0] > max_rows:
        return lambda rows: kernel_inception_distance(a[rows], b[rows], num_subsets, max_subset_size, seed)[0]
    d = a.shape[1]
    k_aa, k_bb, k_ab = _cube(a @ a.T / d + 1), _cube(b @ b.T / d + 1), _cube(a @ b.T / d + 1)

    def kid(rows: np.ndarray) -> float:
        rng = np.random.RandomState(seed)  # the same draws, in the same order, as kernel_inception_distance
        n = len(rows)
        m = min(n, max_subset_size)
        values = np.empty(num_subsets)
        for k in range(num_subsets):
            x = rows[rng.choice(n, m, replace=False)]  # from feats_b first, as clean-fid draws
            y = rows[rng.choice(n, m, replace=False)]
            within = k_bb[np.ix_(x, x)] + k_aa[np.ix_(y, y)]
            across = k_ab[np.ix_(y, x)]
            values[k] = ((within.sum() - np.trace(within)) / (m - 1) - across.sum() * 2 / m) / m
        return float(values.mean())

    return kid
