"""CMMD (Jayasumana et al., CVPR 2024, "Rethinking FID"): MMD with a Gaussian RBF kernel on CLIP embeddings.

As the reference implementation (google-research ``cmmd/distance.py``) computes it: sigma = 10, the biased
(V-statistic) estimator, i.e. the means of k(x, x'), k(y, y') and k(x, y) over *all* pairs including each
point with itself, and the result times 1000. The embeddings are CLIP ViT-L/14 at 336 px, L2-normalised
(:func:`unit_rows`). We compute in float64 and in blocks, so memory stays at one block of the kernel matrix.

The biased estimate is inflated at small N (each set's self-similarity k(x, x) = 1 enters its mean): with
``unbiased=True`` the diagonal is left out of the two within-set means (the U-statistic MMD^2, as KID uses),
whose expectation is the population value at any N. Both need at least 2 samples per set.
"""

from __future__ import annotations

import numpy as np

# unit_rows is re-exported: the reference's CLIP model returns normalised embeddings, so callers normalise first
from macs_bench.metrics.fid import as_feature_matrix, check_same_dim, unit_rows  # noqa: F401

SIGMA = 10.0
SCALE = 1000.0
BLOCK = 2048


def rbf_kernel_mean(a: np.ndarray, b: np.ndarray, sigma: float = SIGMA) -> float:
    """Mean of exp(-||a_i - b_j||^2 / (2 sigma^2)) over every pair (i, j), block by block."""
    gamma = 1.0 / (2.0 * sigma**2)
    a_sq, b_sq = np.einsum("ij,ij->i", a, a), np.einsum("ij,ij->i", b, b)
    total = 0.0
    for start in range(0, a.shape[0], BLOCK):
        rows = slice(start, start + BLOCK)
        dist = a_sq[rows, None] + b_sq[None, :] - 2.0 * (a[rows] @ b.T)
        total += float(np.exp(-gamma * dist).sum())
    return total / (a.shape[0] * b.shape[0])


def _within(x: np.ndarray, sigma: float, unbiased: bool) -> float:
    """Mean of k(x_i, x_j) over all pairs, or over i != j (k(x, x) = 1 for the RBF kernel)."""
    n = x.shape[0]
    total = rbf_kernel_mean(x, x, sigma)
    return (total * n * n - n) / (n * (n - 1)) if unbiased else total


def cmmd(feats_a, feats_b, sigma: float = SIGMA, scale: float = SCALE, unbiased: bool = False) -> float:
    """``scale`` x MMD^2 between two embedding sets under the RBF kernel of width ``sigma``: the reference's
    biased estimate, or with ``unbiased`` the U-statistic (within-set diagonals left out).

    Give it L2-normalised CLIP ViT-L/14-336 embeddings (``unit_rows``) for CMMD as published."""
    a = as_feature_matrix(feats_a, "feats_a", min_rows=2)
    b = as_feature_matrix(feats_b, "feats_b", min_rows=2)
    check_same_dim(a, b, "feats_a", "feats_b")
    return scale * (_within(a, sigma, unbiased) + _within(b, sigma, unbiased) - 2 * rbf_kernel_mean(a, b, sigma))
