"""Set-metric intervals: right coverage without duplicated rows, and resampling by video."""

import numpy as np
import pytest

from macs_bench.metric_sets import set_metric_functions
from macs_bench.metrics.resample import mean_of, on_rows, resample_intervals

N, D = 120, 6
FNS = set_metric_functions(kid_subsets=1, kid_subset_size=1000, kid_seed=0)
CHECKED = ("fid", "kid", "cmmd", "cmmd_unbiased", "precision_inception", "coverage_inception")
UNBIASED = ("kid", "cmmd_unbiased")  # population value 0 when both sets come from one distribution


def draw(seed, n=N):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, D)), rng.normal(size=(n, D))  # generated, reference: one distribution


@pytest.fixture(scope="module")
def estimand():
    """Each metric's value to cover: the population value (0) for an unbiased estimator, else its expectation at
    this N (Monte Carlo over independent draws; the biased metrics are compared only at equal N)."""
    out = {}
    for name in CHECKED:
        fn = FNS[name][1]
        out[name] = 0.0 if name in UNBIASED else float(np.mean([fn(*draw(10_000 + s)) for s in range(300)]))
    return out


@pytest.mark.slow
def test_set_intervals_contain_the_estimate_and_cover_near_nominal(estimand):
    seeds, inside, covered = 80, {m: 0 for m in CHECKED}, {m: 0 for m in CHECKED}
    for seed in range(seeds):
        gen, ref = draw(seed)
        metrics = {m: ("set", on_rows(FNS[m][1], gen, ref)) for m in CHECKED}
        ci = resample_intervals(metrics, list(range(N)), rounds=120, seed=seed + 10**6)
        for m in CHECKED:
            point = FNS[m][1](gen, ref)
            inside[m] += ci[m]["low"] <= point <= ci[m]["high"]
            covered[m] += ci[m]["low"] <= estimand[m] <= ci[m]["high"]
    assert inside == {m: seeds for m in CHECKED}
    rates = {m: covered[m] / seeds for m in CHECKED}
    assert all(0.85 <= r <= 1.0 for r in rates.values()), rates
    assert np.mean(list(rates.values())) < 0.99, rates  # not simply very wide


def correlated(seed, videos=60, clips=4):
    """Clips of one video share most of their features (and their per-sample values)."""
    rng = np.random.default_rng(seed)
    video = np.repeat(rng.normal(size=(videos, D)), clips, axis=0)
    gen = video + 0.3 * rng.normal(size=video.shape)
    ref = video + 0.3 * rng.normal(size=video.shape) + np.repeat(rng.normal(size=(videos, D)), clips, axis=0)
    ids = np.repeat(np.arange(videos), clips)
    return gen, ref, ids, rng.normal(size=videos).repeat(clips) + 0.1 * rng.normal(size=videos * clips)


def width(ci):
    return ci["high"] - ci["low"]


def test_correlated_clips_widen_the_interval_when_resampled_by_video():
    gen, ref, ids, values = correlated(0)
    metrics = {"fid": ("set", on_rows(FNS["fid"][1], gen, ref)), "iis": ("mean", mean_of(values))}
    by_video = resample_intervals(metrics, list(ids), rounds=300, seed=0)
    by_clip = resample_intervals(metrics, list(range(len(ids))), rounds=300, seed=0)
    # four nearly identical clips per video: the video-level spread is about sqrt(4) = 2 times wider
    assert width(by_video["iis"]) / width(by_clip["iis"]) > 1.6
    assert width(by_video["fid"]) / width(by_clip["fid"]) > 1.3


def test_video_level_mean_interval_covers_the_population_mean():
    hits, seeds = 0, 200
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        values = rng.normal(size=40).repeat(3) + 0.2 * rng.normal(size=120)  # population mean 0
        ci = resample_intervals({"m": ("mean", mean_of(values))}, list(np.arange(40).repeat(3)), rounds=200,
                                seed=seed + 10**6)["m"]
        hits += ci["low"] <= 0 <= ci["high"]
    assert 0.88 <= hits / seeds <= 0.98  # the percentile bootstrap of a mean of 40 units: about 0.93


def test_rows_of_one_subsample_are_distinct_videos():
    seen = []
    gen = np.arange(40.0)[:, None]
    resample_intervals({"x": ("set", lambda rows: seen.append(rows) or float(gen[rows].mean()))},
                       list(np.arange(20).repeat(2)), rounds=10, seed=0)
    for rows in seen[1:]:  # the first call is the point estimate on every row
        assert len(set(rows.tolist())) == len(rows) and len(rows) in (20, 10)  # n/2 or n/4 videos, 2 clips each
        assert all((rows[::2] // 2 == rows[1::2] // 2))  # clips of one video together


def test_intervals_are_seeded_and_undefined_rounds_are_left_out():
    gen, ref = draw(0, n=30)
    metrics = {"precision_inception": ("set", on_rows(FNS["precision_inception"][1], gen, ref))}
    a = resample_intervals(metrics, list(range(30)), rounds=20, seed=1)
    assert a == resample_intervals(metrics, list(range(30)), rounds=20, seed=1)
    assert a != resample_intervals(metrics, list(range(30)), rounds=20, seed=2)
    tiny = resample_intervals(metrics, list(range(16)), rounds=20, seed=1)  # n/4 = 4 rows <= k: undefined
    assert tiny["precision_inception"]["low"] is None or tiny["precision_inception"]["rounds"] <= 10
