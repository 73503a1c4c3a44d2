"""CMMD and precision/recall/density/coverage against brute-force loops written from the definitions."""

import math

import numpy as np
import pytest

from macs_bench.errors import MacsError
from macs_bench.metrics import cmmd as cmmd_module
from macs_bench.metrics import prdc as prdc_module
from macs_bench.metrics.cmmd import cmmd, unit_rows
from macs_bench.metrics.prdc import prdc


def brute_mmd(x, y, sigma=10.0):
    """The reference's estimator, one pair at a time: means over all pairs (self-pairs included), x1000."""
    def k(a, b):
        return math.exp(-sum((p - q) ** 2 for p, q in zip(a, b)) / (2 * sigma**2))

    def mean(a, b):
        return sum(k(p, q) for p in a for q in b) / (len(a) * len(b))

    return 1000 * (mean(x, x) + mean(y, y) - 2 * mean(x, y))


def test_cmmd_equals_brute_force_mmd(rng, monkeypatch):
    x = unit_rows(rng.normal(size=(23, 6)))
    y = unit_rows(rng.normal(size=(17, 6)) + 0.3)
    expected = brute_mmd(x.tolist(), y.tolist())
    assert cmmd(x, y) == pytest.approx(expected, rel=1e-9)
    monkeypatch.setattr(cmmd_module, "BLOCK", 4)  # blocks that do not divide N give the same number
    assert cmmd(x, y) == pytest.approx(expected, rel=1e-9)
    assert cmmd(x, x) == pytest.approx(0.0, abs=1e-12)
    assert cmmd(x, y, sigma=1.0) == pytest.approx(brute_mmd(x.tolist(), y.tolist(), sigma=1.0), rel=1e-9)


def brute_unbiased_mmd(x, y, sigma=10.0):
    """The U-statistic: within-set means over i != j, the cross mean over all pairs, x1000."""
    def k(a, b):
        return math.exp(-sum((p - q) ** 2 for p, q in zip(a, b)) / (2 * sigma**2))

    def within(a):
        return sum(k(p, q) for i, p in enumerate(a) for j, q in enumerate(a) if i != j) / (len(a) * (len(a) - 1))

    cross = sum(k(p, q) for p in x for q in y) / (len(x) * len(y))
    return 1000 * (within(x) + within(y) - 2 * cross)


def test_unbiased_cmmd_equals_the_u_statistic_and_removes_the_small_n_bias(rng):
    x = unit_rows(rng.normal(size=(9, 5)))
    y = unit_rows(rng.normal(size=(7, 5)) + 0.2)
    assert cmmd(x, y, unbiased=True) == pytest.approx(brute_unbiased_mmd(x.tolist(), y.tolist()), rel=1e-9)
    # one distribution, N = 20: the biased mean sits far above 0, the unbiased one near 0
    draws = [(unit_rows(rng.normal(size=(20, 8))), unit_rows(rng.normal(size=(20, 8)))) for _ in range(200)]
    biased = np.mean([cmmd(a, b) for a, b in draws])
    unbiased = [cmmd(a, b, unbiased=True) for a, b in draws]
    assert biased > 5 * np.std(unbiased) / np.sqrt(200)
    assert abs(np.mean(unbiased)) < 3 * np.std(unbiased) / np.sqrt(200)


def test_cmmd_refuses_fewer_than_two_samples(rng):
    with pytest.raises(MacsError, match="feats_a: needs at least 2 samples, got 1"):
        cmmd(unit_rows(rng.normal(size=(1, 4))), unit_rows(rng.normal(size=(5, 4))))


def test_cmmd_on_unnormalised_embeddings_is_not_unit_rows(rng):
    x, y = rng.normal(size=(10, 4)) * 5, rng.normal(size=(10, 4)) * 5
    assert cmmd(x, y) != pytest.approx(cmmd(unit_rows(x), unit_rows(y)))


def brute_prdc(real, fake, k):
    def dist(a, b):
        return math.sqrt(sum((p - q) ** 2 for p, q in zip(a, b)))

    def radius(points, i):
        return sorted(dist(points[i], points[j]) for j in range(len(points)) if j != i)[k - 1]

    real_r = [radius(real, i) for i in range(len(real))]
    fake_r = [radius(fake, j) for j in range(len(fake))]
    precision = sum(any(dist(y, x) < real_r[i] for i, x in enumerate(real)) for y in fake) / len(fake)
    recall = sum(any(dist(x, y) < fake_r[j] for j, y in enumerate(fake)) for x in real) / len(real)
    density = sum(sum(dist(y, x) < real_r[i] for i, x in enumerate(real)) for y in fake) / (k * len(fake))
    coverage = sum(min(dist(x, y) for y in fake) < real_r[i] for i, x in enumerate(real)) / len(real)
    return {"precision": precision, "recall": recall, "density": density, "coverage": coverage}


@pytest.mark.parametrize("k", [1, 5])
def test_prdc_equals_brute_force_nearest_neighbours(rng, monkeypatch, k):
    real = rng.normal(size=(40, 5))
    fake = rng.normal(size=(33, 5)) * 1.3 + 0.4
    expected = brute_prdc(real.tolist(), fake.tolist(), k)
    got = prdc(real, fake, k=k)
    assert got == pytest.approx(expected, abs=1e-12)
    assert 0 < got["precision"] < 1 and 0 < got["coverage"] < 1  # not a degenerate case
    monkeypatch.setattr(prdc_module, "BLOCK", 7)
    assert prdc(real, fake, k=k) == pytest.approx(expected, abs=1e-12)


def test_prdc_ball_boundary_is_strict_as_in_the_reference():
    """Integer points give exact distances: a fake point exactly at a real point's k-NN radius is outside its
    ball (the prdc package's strict ``<``)."""
    real = np.array([[0.0], [2.0], [4.0], [6.0], [8.0]])  # k = 1: every radius is 2
    fake = np.array([[-2.0], [10.0], [4.0], [5.0]])  # -2 and 10 sit exactly on a ball's edge
    expected = brute_prdc(real.tolist(), fake.tolist(), 1)
    assert prdc(real, fake, k=1) == pytest.approx(expected, abs=1e-12)
    assert expected["precision"] == 0.5 and expected["density"] == 0.75


def test_prdc_bad_input(rng):
    with pytest.raises(MacsError, match="more than k = 5 samples"):
        prdc(rng.normal(size=(5, 3)), rng.normal(size=(9, 3)))
    with pytest.raises(MacsError, match="k must be a positive integer"):
        prdc(rng.normal(size=(9, 3)), rng.normal(size=(9, 3)), k=0)


def test_one_unit_normaliser_refuses_a_zero_row(rng):
    """CMMD, the cosines and coverage share one unit_rows: unit norms in float64, and a zero row is an error
    naming it (it used to become a row of NaN in CMMD's copy and an error in the cosines' copy)."""
    from macs_bench.metrics import coverage, fid, similarity

    assert cmmd_module.unit_rows is similarity.unit_rows is coverage.unit_rows is fid.unit_rows
    x = rng.normal(size=(5, 4)).astype(np.float32)
    unit = unit_rows(x)
    assert unit.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(unit, x / np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True), rtol=1e-12)
    x[3] = 0
    with pytest.raises(MacsError, match=r"gen_clip_l336: 1 zero-norm rows have no direction \(rows 3\)"):
        unit_rows(x, "gen_clip_l336")
