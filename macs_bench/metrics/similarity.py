"""Paired cosine similarity and its z-score (AIS, AIS-z, IIS, IIS-z) from one N x N similarity matrix.

For sample i with query q_i (wav2clip audio embedding for AIS, CLIP ground-truth image embedding for IIS)
and CLIP embeddings g_j of the generated images, r_ij = cosine(q_i, g_j). The score of sample i is r_ii;
its z-score calibrates r_ii against the other generated images: z_i = (r_ii - mean_{j!=i} r_ij) /
std_{j!=i} r_ij (population std). The release re-encodes all N-1 images per sample; one matrix gives the
same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from macs_bench.errors import MacsError
from macs_bench.metrics.fid import as_feature_matrix, check_same_dim, unit_rows

MIN_SAMPLES = 3  # z needs at least two other generated images for a spread
STD_FLOOR = 1e-12  # an off-diagonal std at or below this (cosines lie in [-1, 1]) leaves z undefined


@dataclass(frozen=True)
class SimilarityScores:
    """Per-sample paired cosines ``per_sample`` (r_ii) and z-scores ``z``, and their means (AIS/IIS, -z)."""

    per_sample: np.ndarray
    z: np.ndarray
    mean: float
    z_mean: float


def cosine_matrix(queries, generated) -> np.ndarray:
    """float64 matrix R with R[i, j] = cosine(queries[i], generated[j]); rows are L2-normalised first."""
    q = as_feature_matrix(queries, "queries", min_rows=1)
    g = as_feature_matrix(generated, "generated", min_rows=1)
    check_same_dim(q, g, "queries", "generated")
    return unit_rows(q, "queries") @ unit_rows(g, "generated").T


def paired_scores(queries, generated, *, undefined_z: str = "raise") -> SimilarityScores:
    """Scores of N paired (query, generated) rows: r_ii and z_i against the N-1 other generated rows.

    ``undefined_z="nan"`` gives NaN z (and z_mean) for samples whose other cosines are all equal, e.g. a model
    that outputs one image for everything, instead of raising. Memory is one N x N float64 matrix (3.2 GB at
    N = 20,000). The off-diagonal mean and variance are
    two-pass (centred) so that nearly constant rows keep their precision.
    """
    if undefined_z not in ("raise", "nan"):
        raise MacsError(f"undefined_z must be 'raise' or 'nan', got {undefined_z!r}")
    q = as_feature_matrix(queries, "queries", min_rows=1)
    g = as_feature_matrix(generated, "generated", min_rows=1)
    if q.shape[0] != g.shape[0]:
        raise MacsError(f"queries have {q.shape[0]} rows but generated have {g.shape[0]}: they must be paired")
    n = q.shape[0]
    if n < MIN_SAMPLES:
        raise MacsError(f"paired_scores needs at least {MIN_SAMPLES} samples (z needs two others), got {n}")
    r = cosine_matrix(q, g)
    diag = r.diagonal().copy()
    np.fill_diagonal(r, 0.0)
    off_mean = r.sum(axis=1) / (n - 1)
    r -= off_mean[:, None]
    np.fill_diagonal(r, 0.0)
    np.square(r, out=r)
    off_std = np.sqrt(r.sum(axis=1) / (n - 1))
    flat = np.flatnonzero(off_std <= STD_FLOOR)
    if flat.size and undefined_z == "raise":
        raise MacsError(
            f"sample {flat[0]}: its query has the same cosine with every other generated image, so z is undefined"
            f" ({flat.size} such samples)"
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(off_std > STD_FLOOR, (diag - off_mean) / np.where(off_std > STD_FLOOR, off_std, 1.0), np.nan)
    return SimilarityScores(per_sample=diag, z=z, mean=float(diag.mean()), z_mean=float(z.mean()))
