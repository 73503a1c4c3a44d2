import math

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from macs_bench.errors import MacsError
from macs_bench.metrics import SimilarityScores, cosine_matrix, paired_scores


def brute_force(queries, generated):
    """Per sample i: cosine with its own image, then with every other image one pair at a time."""

    def cos(u, v):
        return float(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v)))

    n = len(queries)
    own, z = [], []
    for i in range(n):
        r_ii = cos(queries[i], generated[i])
        others = [cos(queries[i], generated[j]) for j in range(n) if j != i]
        own.append(r_ii)
        z.append((r_ii - np.mean(others)) / np.std(others))
    return np.array(own), np.array(z)


def test_cosine_matrix_matches_scipy(rng):
    q = rng.normal(size=(7, 16))
    g = rng.normal(size=(5, 16))
    np.testing.assert_allclose(cosine_matrix(q, g), 1 - cdist(q, g, metric="cosine"), rtol=0, atol=1e-12)


@pytest.mark.parametrize("correlated", [False, True])
def test_matches_brute_force(rng, correlated):
    n, d = 40, 16
    g = rng.normal(size=(n, d))
    q = 0.7 * g + rng.normal(size=(n, d)) if correlated else rng.normal(size=(n, d))
    scores = paired_scores(q, g)
    own, z = brute_force(q, g)
    np.testing.assert_allclose(scores.per_sample, own, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(scores.z, z, rtol=1e-6, atol=1e-12)
    assert scores.mean == pytest.approx(own.mean(), rel=1e-6)
    assert scores.z_mean == pytest.approx(z.mean(), rel=1e-6)
    if correlated:
        assert scores.z_mean > 1


def test_nearly_identical_images_keep_precision(rng):
    # cosines all within ~1e-6 of each other: a one-pass E[r^2] - E[r]^2 variance loses most digits here
    n, d = 30, 32
    base = rng.normal(size=d)
    g = base + 1e-3 * rng.normal(size=(n, d))
    q = base + 1e-3 * rng.normal(size=(n, d))
    scores = paired_scores(q, g)
    own, z = brute_force(q, g)
    np.testing.assert_allclose(scores.z, z, rtol=1e-6)


def test_hand_computed_three_samples():
    q = np.array([[1, 0], [0, 1], [1, 2]])
    g = np.array([[1, 0], [0, 1], [1, -1]])
    # row 0: own 1, others (0, 1/sqrt2)           -> z = 2 sqrt2 - 1
    # row 1: own 1, others (0, -1/sqrt2)          -> z = 2 sqrt2 + 1
    # row 2: own -1/sqrt10, others (1, 2)/sqrt5  -> z = -sqrt2 - 3
    scores = paired_scores(q, g)
    s2 = math.sqrt(2)
    np.testing.assert_allclose(scores.per_sample, [1, 1, -1 / math.sqrt(10)], rtol=0, atol=1e-12)
    np.testing.assert_allclose(scores.z, [2 * s2 - 1, 2 * s2 + 1, -s2 - 3], rtol=0, atol=1e-12)
    assert scores.mean == pytest.approx((2 - 1 / math.sqrt(10)) / 3, abs=1e-12)
    assert scores.z_mean == pytest.approx(s2 - 1, abs=1e-12)


def test_invariant_to_positive_row_scaling(rng):
    q = rng.normal(size=(12, 8))
    g = rng.normal(size=(12, 8))
    base = paired_scores(q, g)
    scaled = paired_scores(q * rng.uniform(0.01, 100, size=(12, 1)), g * rng.uniform(0.01, 100, size=(12, 1)))
    np.testing.assert_allclose(scaled.per_sample, base.per_sample, rtol=0, atol=1e-12)
    np.testing.assert_allclose(scaled.z, base.z, rtol=1e-9)


def test_result_type(rng):
    scores = paired_scores(rng.normal(size=(5, 4)), rng.normal(size=(5, 4)).astype(np.float32))
    assert isinstance(scores, SimilarityScores)
    assert scores.per_sample.dtype == np.float64 and scores.z.shape == (5,)
    assert isinstance(scores.mean, float) and isinstance(scores.z_mean, float)


def test_too_few_samples(rng):
    with pytest.raises(MacsError, match="needs at least 3 samples.*got 2"):
        paired_scores(rng.normal(size=(2, 4)), rng.normal(size=(2, 4)))


def test_dimensions_differ(rng):
    with pytest.raises(MacsError, match="queries has 512 features but generated has 768"):
        paired_scores(rng.normal(size=(5, 512)), rng.normal(size=(5, 768)))
    with pytest.raises(MacsError, match="queries has 512 features but generated has 768"):
        cosine_matrix(rng.normal(size=(5, 512)), rng.normal(size=(5, 768)))


def test_row_counts_differ(rng):
    with pytest.raises(MacsError, match="queries have 5 rows but generated have 4"):
        paired_scores(rng.normal(size=(5, 4)), rng.normal(size=(4, 4)))


def test_zero_norm_rows_named(rng):
    g = rng.normal(size=(6, 4))
    g[[1, 4]] = 0
    with pytest.raises(MacsError, match=r"generated: 2 zero-norm rows have no direction \(rows 1, 4\)"):
        paired_scores(rng.normal(size=(6, 4)), g)


def test_nan_named(rng):
    q = rng.normal(size=(6, 4))
    q[2, 2] = np.inf
    with pytest.raises(MacsError, match=r"queries: 1 of 6 rows contain NaN or inf \(first: row 2\)"):
        paired_scores(q, rng.normal(size=(6, 4)))


def test_constant_off_diagonal_names_sample():
    # query 2 = (1, 1) sits at 45 degrees to both other images: no spread, z undefined
    q = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    g = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]])
    with pytest.raises(MacsError, match="sample 2: .*z is undefined"):
        paired_scores(q, g)
