"""Frechet distance between two feature sets (FID on Inception features, CLIP-FID on CLIP embeddings).

``frechet_distance_from_stats`` is clean-fid's own ``frechet_distance``. ``frechet_distance`` on features
computes the same quantity exactly but faster: clean-fid's ``scipy.linalg.sqrtm`` of the 2048 x 2048 product
takes about 40 s on two CPU cores, while ``Tr sqrt(S_a S_b)`` equals the nuclear norm of ``F_a F_b^T`` for any
factors ``S = F^T F`` (the centred, scaled features), or the trace of ``sqrt(S_a^1/2 S_b S_a^1/2)``, whichever
matrix is smaller. Tests hold it to clean-fid's value within 1e-6 relative.
"""

from __future__ import annotations

import warnings

import numpy as np

from macs_bench.errors import MacsError


def as_feature_matrix(feats, name: str, min_rows: int = 2) -> np.ndarray:
    """``feats`` as a finite float64 ``n x d`` array with ``n >= min_rows``, else a MacsError naming ``name``.

    Shared by every metric in this package so that bad input fails the same way everywhere.
    """
    array = np.asarray(feats)
    if array.dtype.kind not in "iuf":
        raise MacsError(f"{name}: expected a numeric feature matrix, got dtype {array.dtype}")
    if array.ndim != 2:
        raise MacsError(f"{name}: expected a 2-D (samples x features) array, got shape {array.shape}")
    n, d = array.shape
    if d == 0:
        raise MacsError(f"{name}: feature dimension is 0")
    if n < min_rows:
        raise MacsError(f"{name}: needs at least {min_rows} samples, got {n}")
    array = array.astype(np.float64, copy=False)
    bad = ~np.isfinite(array).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise MacsError(f"{name}: {rows.size} of {n} rows contain NaN or inf (first: row {rows[0]})")
    return array


def unit_rows(feats, name: str = "feats") -> np.ndarray:
    """Rows of ``feats`` scaled to unit L2 norm, in float64 (cosines, CLIP embeddings for CMMD, class text
    embeddings). A zero row has no direction: it is an error naming the rows, never a row of NaN."""
    array = as_feature_matrix(feats, name, min_rows=1)
    norms = np.linalg.norm(array, axis=1)
    zero = np.flatnonzero(norms == 0)
    if zero.size:
        shown = ", ".join(str(i) for i in zero[:10]) + (", ..." if zero.size > 10 else "")
        raise MacsError(f"{name}: {zero.size} zero-norm rows have no direction (rows {shown})")
    return array / norms[:, None]


def check_same_dim(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    """MacsError unless the two feature matrices have the same number of columns."""
    if a.shape[1] != b.shape[1]:
        raise MacsError(f"{name_a} has {a.shape[1]} features but {name_b} has {b.shape[1]}")


def feature_stats(feats) -> tuple[np.ndarray, np.ndarray]:
    """Mean vector and covariance matrix (``np.cov``, ddof=1) in float64, as clean-fid computes them."""
    array = as_feature_matrix(feats, "feats")
    return np.mean(array, axis=0), np.atleast_2d(np.cov(array, rowvar=False))


def _check_stats(mu, sigma, name: str) -> tuple[np.ndarray, np.ndarray]:
    mu = np.asarray(mu, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    if mu.ndim != 1:
        raise MacsError(f"{name}: mean must be 1-D, got shape {mu.shape}")
    if sigma.shape != (mu.size, mu.size):
        raise MacsError(f"{name}: covariance must be {mu.size} x {mu.size}, got shape {sigma.shape}")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise MacsError(f"{name}: statistics contain NaN or inf")
    return mu, sigma


def frechet_distance_from_stats(mu_a, sigma_a, mu_b, sigma_b) -> float:
    """Frechet distance between N(mu_a, sigma_a) and N(mu_b, sigma_b), via clean-fid.

    For precomputed statistics (e.g. a cached reference set). A distance between identical
    distributions can come out a little below zero (about -1e-6 when the covariance is singular);
    it is returned as clean-fid returns it, not clamped.
    """
    from cleanfid.fid import frechet_distance as cleanfid_frechet_distance

    mu_a, sigma_a = _check_stats(mu_a, sigma_a, "stats_a")
    mu_b, sigma_b = _check_stats(mu_b, sigma_b, "stats_b")
    if mu_a.size != mu_b.size:
        raise MacsError(f"stats_a has {mu_a.size} features but stats_b has {mu_b.size}")
    if mu_a.size < 2:
        # SciPy 1.17 returns a bare array for a 1 x 1 sqrtm(disp=False), which clean-fid cannot unpack.
        raise MacsError("the Frechet distance needs at least 2 features, got 1")
    with warnings.catch_warnings():
        # clean-fid passes sqrtm's `disp`, deprecated in SciPy 1.17 and due to go in 1.18.
        warnings.filterwarnings("ignore", message="The `disp` argument is deprecated", category=DeprecationWarning)
        try:
            value = cleanfid_frechet_distance(mu_a, sigma_a, mu_b, sigma_b)
        except ValueError as exc:
            if not str(exc).startswith("Imaginary component"):
                raise
            message = f"Frechet distance failed: the covariance product has no real square root ({exc})"
            raise MacsError(message) from None
    return float(value)


def frechet_distance(feats_a, feats_b) -> float:
    """Frechet distance between the Gaussians fitted to two ``n x d`` feature sets (FID, CLIP-FID).

    Row counts may differ; each set needs at least 2 rows. With fewer rows than features the covariance is
    singular: the value is still exact for the fitted Gaussians, but it is a poor estimate of the population's.
    """
    a = as_feature_matrix(feats_a, "feats_a")
    b = as_feature_matrix(feats_b, "feats_b")
    check_same_dim(a, b, "feats_a", "feats_b")
    if a.shape[1] < 2:
        raise MacsError("the Frechet distance needs at least 2 features, got 1")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    f_a = (a - mu_a) / np.sqrt(a.shape[0] - 1)  # S_a = f_a.T @ f_a, the np.cov covariance
    f_b = (b - mu_b) / np.sqrt(b.shape[0] - 1)
    (n_a, d), n_b = a.shape, b.shape[0]
    if n_a * n_b * min(n_a, n_b) <= 2 * d**3:
        singular = np.linalg.svd(f_a @ f_b.T, compute_uv=False)  # |F_a F_b^T|_* = Tr sqrt(S_a S_b)
        trace_sqrt = float(singular.sum())
    else:
        values, vectors = np.linalg.eigh(f_a.T @ f_a)
        root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
        inner = root_a @ (f_b.T @ f_b) @ root_a
        trace_sqrt = float(np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0, None)).sum())
    diff = mu_a - mu_b
    return float(diff @ diff + np.einsum("ij,ij->", f_a, f_a) + np.einsum("ij,ij->", f_b, f_b) - 2 * trace_sqrt)
