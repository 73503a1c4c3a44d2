"""Paired differences: the permutation p-value against exact enumeration, Holm by its definition, swaps."""

import itertools

import numpy as np
import pytest

from macs_bench.errors import MacsError
from macs_bench.metrics import frechet_distance
from macs_bench.metrics.paired import holm, paired_difference, paired_set_difference, set_difference


def exact_sign_flip_p(d_by_video):
    """Two-sided p of the mean of per-video summed differences over all 2^n sign flips (brute force)."""
    d = np.asarray(d_by_video)
    point = abs(d.sum())
    flips = [abs((d * np.array(s)).sum()) >= point - 1e-12 for s in itertools.product((1, -1), repeat=len(d))]
    return float(np.mean(flips))


def test_permutation_p_matches_the_exact_sign_flip_test():
    rng = np.random.default_rng(0)
    videos = np.repeat(np.arange(10), 2)  # 10 videos of 2 clips: 1024 sign patterns
    a = rng.normal(size=20) + 0.35
    b = rng.normal(size=20)
    diff = paired_difference(a, b, list(videos), rounds=6000, seed=1)
    exact = exact_sign_flip_p([(a - b)[videos == v].sum() for v in range(10)])
    assert diff.value == pytest.approx((a - b).mean())
    assert diff.p == pytest.approx(exact, abs=0.02)
    assert diff.low <= diff.value <= diff.high and diff.units == 10 and diff.n == 20


def test_no_difference_gives_uniform_p_values():
    ps = []
    for seed in range(150):
        rng = np.random.default_rng(seed)
        a, b = rng.normal(size=(2, 30))
        ps.append(paired_difference(a, b, list(range(30)), rounds=99, seed=seed).p)
    assert 0.02 <= np.mean(np.array(ps) < 0.05) <= 0.10  # the test's size is near 5%


def test_set_difference_swaps_whole_rows_between_the_models():
    rng = np.random.default_rng(1)
    ga, gb, ref = rng.normal(size=(3, 12, 3))
    stat = set_difference(frechet_distance, ga, gb, ref)
    swap = np.zeros(12, bool)
    swap[[0, 5]] = True
    a2, b2 = ga.copy(), gb.copy()
    a2[[0, 5]], b2[[0, 5]] = gb[[0, 5]], ga[[0, 5]]
    rows = np.arange(12)
    assert stat(rows, swap) == pytest.approx(frechet_distance(a2, ref) - frechet_distance(b2, ref))
    assert stat(rows, None) == pytest.approx(frechet_distance(ga, ref) - frechet_distance(gb, ref))


def test_a_clearly_better_model_is_significant_on_a_set_metric():
    rng = np.random.default_rng(2)
    ref = rng.normal(size=(60, 4))
    good, bad = ref + 0.3 * rng.normal(size=ref.shape), ref + 0.3 * rng.normal(size=ref.shape) + 0.8
    d = paired_set_difference(frechet_distance, good, bad, ref, list(range(60)), rounds=200, name="fid")
    assert d.value < 0 and d.high < 0 and d.p < 0.01 and d.kind == "set"


def test_holm_restated():
    p = [0.01, 0.04, 0.03, None, 0.5]
    # sorted 0.01, 0.03, 0.04, 0.5 with m = 4: 0.04, 0.09, max(0.09, 0.08), 0.5
    assert holm(p) == pytest.approx([0.04, 0.09, 0.09, None, 0.5])


def test_arrays_of_other_lengths_are_refused():
    with pytest.raises(MacsError, match="one value per sample"):
        paired_difference([1.0, 2.0], [1.0], ["v", "w"])


def test_set_difference_on_rows_gives_the_same_statistic_as_copying_features():
    from macs_bench.metrics.kid import kernel_inception_distance
    from macs_bench.metrics.sets import rows_metric_functions

    rng = np.random.default_rng(3)
    ga, gb, ref = rng.normal(size=(3, 20, 5)) + np.array([[[0.4]], [[0.0]], [[0.1]]])
    for subset in (1000, 8):
        def kid(gen, r, subset=subset):
            return kernel_inception_distance(gen, r, 4, subset, 0)[0]

        copied = set_difference(kid, ga, gb, ref)
        gathered = set_difference(kid, ga, gb, ref, rows_metric_functions(4, subset, 0)["kid"])
        for _ in range(4):
            rows, swap = np.sort(rng.choice(20, 12, replace=False)), rng.random(20) < 0.5
            assert gathered(rows, swap) == pytest.approx(copied(rows, swap), rel=1e-9, abs=1e-12)
        assert gathered(np.arange(20), None) == pytest.approx(copied(np.arange(20), None), rel=1e-9)
