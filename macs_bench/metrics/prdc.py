"""Precision, recall, density and coverage (Naeem et al., ICML 2020) with k nearest neighbours.

As the authors' ``prdc`` package computes them, with r_k(x) the distance from x to its k-th nearest neighbour
in its own set (itself excluded) and strict inequalities:

- precision = share of generated y within r_k(x) of some real x;
- recall    = share of real x within r_k(y) of some generated y;
- density   = (1/k) x mean over generated y of the number of real x with ||x - y|| < r_k(x);
- coverage  = share of real x whose nearest generated y lies within r_k(x).

Distances are Euclidean in float64, computed in blocks so memory stays at one block of the distance matrix.
"""

from __future__ import annotations

import numpy as np

from macs_bench.errors import MacsError
from macs_bench.metrics.fid import as_feature_matrix, check_same_dim

K = 5
BLOCK = 2048


def _distances(a: np.ndarray, b: np.ndarray, rows: slice) -> np.ndarray:
    sq = np.einsum("ij,ij->i", a[rows], a[rows])[:, None] + np.einsum("ij,ij->i", b, b)[None, :] \
        - 2.0 * (a[rows] @ b.T)
    return np.sqrt(np.clip(sq, 0.0, None))


def knn_radii(feats: np.ndarray, k: int) -> np.ndarray:
    """Distance from each row to its k-th nearest other row."""
    out = np.empty(feats.shape[0])
    for start in range(0, feats.shape[0], BLOCK):
        rows = slice(start, start + BLOCK)
        dist = _distances(feats, feats, rows)
        dist[np.arange(dist.shape[0]), np.arange(start, start + dist.shape[0])] = np.inf  # not itself
        out[rows] = np.partition(dist, k - 1, axis=1)[:, k - 1]
    return out


def prdc(real, fake, k: int = K) -> dict[str, float]:
    """``{"precision", "recall", "density", "coverage"}`` of ``fake`` against ``real`` (``n x d`` each)."""
    a = as_feature_matrix(real, "real")
    b = as_feature_matrix(fake, "fake")
    check_same_dim(a, b, "real", "fake")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise MacsError(f"k must be a positive integer, got {k!r}")
    if min(a.shape[0], b.shape[0]) <= k:
        raise MacsError(f"precision/recall need more than k = {k} samples per set, got {a.shape[0]} real and "
                        f"{b.shape[0]} generated")
    real_r, fake_r = knn_radii(a, k), knn_radii(b, k)
    in_real_ball = np.zeros(b.shape[0], dtype=bool)
    real_balls_per_fake = np.zeros(b.shape[0])
    recalled = np.zeros(a.shape[0], dtype=bool)
    covered = np.zeros(a.shape[0], dtype=bool)
    for start in range(0, a.shape[0], BLOCK):
        rows = slice(start, start + BLOCK)
        dist = _distances(a, b, rows)  # real rows x fake columns
        inside = dist < real_r[rows, None]
        in_real_ball |= inside.any(axis=0)
        real_balls_per_fake += inside.sum(axis=0)
        recalled[rows] = (dist < fake_r[None, :]).any(axis=1)
        covered[rows] = dist.min(axis=1) < real_r[rows]
    return {"precision": float(in_real_ball.mean()), "recall": float(recalled.mean()),
            "density": float(real_balls_per_fake.mean() / k), "coverage": float(covered.mean())}
