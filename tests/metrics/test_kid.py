import numpy as np
import pytest

from macs_bench.errors import MacsError
from macs_bench.metrics import kernel_inception_distance


@pytest.fixture
def global_rng_restored():
    """Tests that seed numpy's global RNG (clean-fid draws from it) put it back afterwards."""
    state = np.random.get_state()
    yield
    np.random.set_state(state)


def brute_force_mmd2(x, y):
    """Unbiased MMD^2 with k(u, v) = (u.v / d + 1)^3, one kernel value at a time."""
    m, d = len(x), len(x[0])

    def k(u, v):
        return (sum(ui * vi for ui, vi in zip(u, v)) / d + 1) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return (xx + yy) / (m * (m - 1)) - 2 * xy / (m * m)


def two_sets(rng, n_a, n_b, d):
    return rng.normal(size=(n_a, d)), rng.normal(loc=0.3, scale=1.2, size=(n_b, d))


@pytest.mark.parametrize(
    "n_a,n_b,d,num_subsets,max_subset_size,seed",
    [
        (100, 100, 32, 100, 1000, 0),  # the defaults: every subset is a permutation of all rows
        (120, 90, 16, 20, 50, 3),  # unequal sets, subsets smaller than both
        (60, 150, 8, 7, 1000, 12345),  # m limited by feats_a
    ],
)
def test_mean_equals_cleanfid_under_same_seed(
    rng, global_rng_restored, n_a, n_b, d, num_subsets, max_subset_size, seed
):
    from cleanfid.fid import kernel_distance

    a, b = two_sets(rng, n_a, n_b, d)
    sizes = dict(num_subsets=num_subsets, max_subset_size=max_subset_size)
    np.random.seed(seed)
    expected = kernel_distance(a, b, **sizes)
    mean, _ = kernel_inception_distance(a, b, seed=seed, **sizes)
    assert mean == pytest.approx(expected, rel=1e-9)


def test_single_full_subset_matches_brute_force(rng):
    a, b = two_sets(rng, 30, 30, 8)
    mean, std = kernel_inception_distance(a, b, num_subsets=1, max_subset_size=1000, seed=5)
    assert mean == pytest.approx(brute_force_mmd2(b.tolist(), a.tolist()), rel=1e-9)
    assert std == 0.0


def test_std_over_subsets_matches_brute_force(rng):
    a, b = two_sets(rng, 30, 25, 8)
    seed, num_subsets, m = 9, 4, 12
    draw = np.random.RandomState(seed)
    values = []
    for _ in range(num_subsets):
        x = b[draw.choice(25, m, replace=False)]
        y = a[draw.choice(30, m, replace=False)]
        values.append(brute_force_mmd2(x.tolist(), y.tolist()))
    mean, std = kernel_inception_distance(a, b, num_subsets=num_subsets, max_subset_size=m, seed=seed)
    assert mean == pytest.approx(np.mean(values), rel=1e-9)
    assert std == pytest.approx(np.std(values), rel=1e-9)
    assert std > 0


def test_unbiased_near_zero_for_same_distribution(rng):
    # a biased estimator (diagonal kept) would sit near 2 E[k(x, x)] / m, about 0.16 here
    a = rng.normal(size=(400, 16))
    same = rng.normal(size=(400, 16))
    shifted = rng.normal(loc=0.5, size=(400, 16))
    kid_same, std_same = kernel_inception_distance(a, same, num_subsets=10, max_subset_size=100)
    kid_shifted, _ = kernel_inception_distance(a, shifted, num_subsets=10, max_subset_size=100)
    assert 0 < std_same < 0.05
    assert abs(kid_same) < 2 * std_same
    assert kid_shifted > 0.5


def test_deterministic_and_seeded(rng):
    a, b = two_sets(rng, 80, 70, 8)
    kwargs = dict(num_subsets=10, max_subset_size=40)
    first = kernel_inception_distance(a, b, seed=1, **kwargs)
    assert kernel_inception_distance(a, b, seed=1, **kwargs) == first
    assert kernel_inception_distance(a, b, seed=2, **kwargs) != first


def test_leaves_global_rng_alone(rng):
    a, b = two_sets(rng, 50, 50, 4)
    before = np.random.get_state()
    kernel_inception_distance(a, b, num_subsets=5, max_subset_size=20, seed=0)
    after = np.random.get_state()
    assert before[0] == after[0] and before[2:] == after[2:]
    np.testing.assert_array_equal(before[1], after[1])


def test_float32_promoted(rng):
    a, b = two_sets(rng, 40, 40, 8)
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    kwargs = dict(num_subsets=3, max_subset_size=20, seed=4)
    promoted = kernel_inception_distance(a32.astype(np.float64), b32.astype(np.float64), **kwargs)
    assert kernel_inception_distance(a32, b32, **kwargs) == promoted


@pytest.mark.parametrize(
    "feats_a,feats_b,kwargs,message",
    [
        (np.zeros((10, 4)), np.zeros((10, 5)), {}, "feats_a has 4 features but feats_b has 5"),
        (np.zeros((1, 4)), np.zeros((10, 4)), {}, "feats_a: needs at least 2 samples, got 1"),
        (np.zeros((10, 4)), np.zeros((10, 4)), {"num_subsets": 0}, "num_subsets must be an integer >= 1"),
        (np.zeros((10, 4)), np.zeros((10, 4)), {"max_subset_size": 1}, "max_subset_size must be an integer >= 2"),
        (np.zeros((10, 4)), np.zeros((10, 4)), {"num_subsets": 2.5}, "num_subsets must be an integer"),
        (np.zeros((10, 4)), np.zeros((10, 4)), {"seed": -1}, r"seed must be an integer in \[0, 2\*\*32\)"),
        (np.zeros((10, 4)), np.zeros((10, 4)), {"seed": None}, "seed must be an integer"),
    ],
)
def test_bad_input(feats_a, feats_b, kwargs, message):
    with pytest.raises(MacsError, match=message):
        kernel_inception_distance(feats_a, feats_b, **kwargs)


def test_nan_rows_named(rng):
    a, b = two_sets(rng, 20, 20, 4)
    a[3, 0] = np.nan
    with pytest.raises(MacsError, match=r"feats_a: 1 of 20 rows contain NaN or inf \(first: row 3\)"):
        kernel_inception_distance(a, b)


def test_kid_resampler_equals_kid_on_the_resampled_rows(rng):
    from macs_bench.metrics.kid import kid_resampler

    a, b = rng.normal(size=(40, 16)) + 0.2, rng.normal(size=(40, 16))
    fast = kid_resampler(a, b, num_subsets=7, max_subset_size=25, seed=5)
    slow = kid_resampler(a, b, num_subsets=7, max_subset_size=25, seed=5, max_rows=10)  # recomputes
    for _ in range(3):
        rows = rng.integers(0, 40, size=40)  # with repeats, as a bootstrap draws
        expected = kernel_inception_distance(a[rows], b[rows], num_subsets=7, max_subset_size=25, seed=5)[0]
        assert fast(rows) == pytest.approx(expected, rel=1e-10)
        assert slow(rows) == expected


@pytest.mark.parametrize("subset", [1000, 9])  # every subset the whole set (one evaluation); real subsets
def test_kid_on_rows_gathers_what_kid_computes_on_the_rows(rng, subset):
    from macs_bench.metrics.kid import kid_on_rows

    pool, ref = rng.normal(size=(30, 8)) + 0.3, rng.normal(size=(15, 8))
    on_rows = kid_on_rows(pool, ref, num_subsets=6, max_subset_size=subset, seed=3)
    recompute = kid_on_rows(pool, ref, num_subsets=6, max_subset_size=subset, seed=3, max_rows=10)
    for _ in range(3):
        gen_rows, ref_rows = rng.choice(30, 15, replace=False), rng.integers(0, 15, size=15)
        expected = kernel_inception_distance(pool[gen_rows], ref[ref_rows], num_subsets=6,
                                             max_subset_size=subset, seed=3)[0]
        assert on_rows(gen_rows, ref_rows) == pytest.approx(expected, rel=1e-10)
        assert recompute(gen_rows, ref_rows) == expected


def test_whole_set_kid_is_the_mean_over_its_permuted_subsets(rng):
    # with subsets as large as both sets every subset is a permutation of them: one evaluation, std 0
    a, b = two_sets(rng, 12, 12, 4)
    draw = np.random.RandomState(2)
    values = [brute_force_mmd2(b[draw.choice(12, 12, replace=False)].tolist(),
                               a[draw.choice(12, 12, replace=False)].tolist()) for _ in range(5)]
    mean, std = kernel_inception_distance(a, b, num_subsets=5, max_subset_size=12, seed=2)
    assert mean == pytest.approx(np.mean(values), rel=1e-9) and std == 0.0
