import warnings

import numpy as np
import pytest
from scipy import linalg

from macs_bench.errors import MacsError
from macs_bench.metrics import feature_stats, frechet_distance, frechet_distance_from_stats


def scipy_sqrtm_oracle(a, b):
    """||mu1-mu2||^2 + Tr(S1 + S2 - 2 sqrtm(S1 S2)), written out with scipy.linalg.sqrtm."""
    mu1, mu2 = a.mean(axis=0), b.mean(axis=0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = np.real(linalg.sqrtm(s1 @ s2))
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean))


def eigh_oracle(a, b):
    """Same distance through symmetric eigendecompositions: Tr sqrt(S1 S2) = sum sqrt(eig(S1^1/2 S2 S1^1/2))."""
    mu1, mu2 = a.mean(axis=0), b.mean(axis=0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(s1)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh(root1 @ s2 @ root1), 0, None)).sum()
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


def two_sets(rng, n_a, n_b, d):
    a = rng.normal(size=(n_a, d))
    b = rng.normal(loc=0.2, scale=1.3, size=(n_b, d)) @ rng.normal(scale=0.3, size=(d, d)) + a.mean()
    return a, b


SHAPES = [(500, 500, 64), (300, 200, 32), (40, 50, 64)]  # the last has d > n: singular covariances


@pytest.mark.parametrize("n_a,n_b,d", SHAPES)
def test_matches_cleanfid_fid_from_feats(rng, n_a, n_b, d):
    from cleanfid.fid import fid_from_feats

    a, b = two_sets(rng, n_a, n_b, d)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        expected = fid_from_feats(a, b)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("n_a,n_b,d", SHAPES)
def test_matches_scipy_sqrtm_oracle(rng, n_a, n_b, d):
    a, b = two_sets(rng, n_a, n_b, d)
    assert frechet_distance(a, b) == pytest.approx(scipy_sqrtm_oracle(a, b), rel=1e-6)


@pytest.mark.parametrize("n_a,n_b,d", SHAPES)
def test_matches_eigh_oracle(rng, n_a, n_b, d):
    a, b = two_sets(rng, n_a, n_b, d)
    assert frechet_distance(a, b) == pytest.approx(eigh_oracle(a, b), rel=1e-6)


def test_closed_form_from_stats():
    d = 5
    shift = np.arange(d, dtype=float)
    # N(0, I) vs N(shift, 4 I): |shift|^2 + d (1 + 4 - 2 * 2)
    value = frechet_distance_from_stats(np.zeros(d), np.eye(d), shift, 4 * np.eye(d))
    assert value == pytest.approx(float(shift @ shift) + d, rel=1e-12)


def test_from_stats_agrees_with_features(rng):
    a, b = two_sets(rng, 200, 150, 16)
    # two algorithms (clean-fid's sqrtm; our factorised trace) on the same Gaussians
    assert frechet_distance_from_stats(*feature_stats(a), *feature_stats(b)) == pytest.approx(
        frechet_distance(a, b), rel=1e-12)


def test_set_with_itself_is_zero(rng):
    a = rng.normal(size=(400, 32))
    assert abs(frechet_distance(a, a)) < 1e-8


def test_symmetric(rng):
    a, b = two_sets(rng, 300, 200, 32)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-9)


def test_feature_stats_float64_like_cleanfid(rng):
    a = rng.normal(size=(100, 6)).astype(np.float32)
    mu, sigma = feature_stats(a)
    assert mu.dtype == np.float64 and sigma.dtype == np.float64
    a64 = a.astype(np.float64)
    np.testing.assert_array_equal(mu, np.mean(a64, axis=0))
    np.testing.assert_array_equal(sigma, np.cov(a64, rowvar=False))


def test_one_feature_refused(rng):
    a = rng.normal(size=(50, 1))
    assert feature_stats(a)[1].shape == (1, 1)
    with pytest.raises(MacsError, match="needs at least 2 features, got 1"):
        frechet_distance(a, a + 1)


def test_no_scipy_deprecation_warning_leaks(rng):
    a, b = two_sets(rng, 50, 50, 8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frechet_distance(a, b)
    assert [str(w.message) for w in caught] == []


@pytest.mark.parametrize(
    "feats_a,feats_b,message",
    [
        (np.zeros(10), np.zeros((10, 4)), "feats_a: expected a 2-D"),
        (np.zeros((10, 4)), np.zeros((10, 5)), "feats_a has 4 features but feats_b has 5"),
        (np.zeros((10, 4)), np.zeros((1, 4)), "feats_b: needs at least 2 samples, got 1"),
        (np.zeros((10, 4)), np.zeros((10, 0)), "feats_b: feature dimension is 0"),
        (np.array([["a", "b"], ["c", "d"]]), np.zeros((2, 2)), "feats_a: expected a numeric"),
    ],
)
def test_bad_shapes(feats_a, feats_b, message):
    with pytest.raises(MacsError, match=message):
        frechet_distance(feats_a, feats_b)


def test_non_finite_rows_named(rng):
    a = rng.normal(size=(50, 4))
    b = rng.normal(size=(50, 4))
    b[7, 1] = np.nan
    b[20, 3] = np.inf
    with pytest.raises(MacsError, match=r"feats_b: 2 of 50 rows contain NaN or inf \(first: row 7\)"):
        frechet_distance(a, b)


def test_bad_stats():
    with pytest.raises(MacsError, match="stats_a: covariance must be 3 x 3"):
        frechet_distance_from_stats(np.zeros(3), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(MacsError, match="stats_a has 3 features but stats_b has 2"):
        frechet_distance_from_stats(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(MacsError, match="stats_b: statistics contain NaN"):
        frechet_distance_from_stats(np.zeros(2), np.eye(2), np.array([0.0, np.nan]), np.eye(2))


def test_cleanfid_value_error_becomes_macs_error(rng, monkeypatch):
    import cleanfid.fid

    def refuse(*args, **kwargs):
        raise ValueError("Imaginary component 0.5")

    monkeypatch.setattr(cleanfid.fid, "frechet_distance", refuse)
    a, b = two_sets(rng, 20, 20, 4)
    with pytest.raises(MacsError, match="no real square root.*Imaginary component 0.5"):
        frechet_distance_from_stats(*feature_stats(a), *feature_stats(b))


@pytest.mark.parametrize("n_a, n_b, d", [pytest.param(300, 280, 2048, marks=pytest.mark.slow), (60, 900, 96),
                                         (2500, 2400, 64)])
def test_both_factorised_paths_agree_with_clean_fid(rng, n_a, n_b, d):
    """The nuclear-norm path (few rows) and the d x d eigen path (many rows) against clean-fid's sqrtm."""
    from cleanfid.fid import fid_from_feats

    a = rng.normal(size=(n_a, d))
    b = rng.normal(loc=0.05, scale=1.2, size=(n_b, d))
    assert frechet_distance(a, b) == pytest.approx(fid_from_feats(a, b), rel=1e-6)
