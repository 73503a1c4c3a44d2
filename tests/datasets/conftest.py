from collections import Counter

import pytest

from macs_bench.datasets.folds import label_count_bucket


@pytest.fixture
def check_folds():
    return _fold_properties


def _fold_properties(m, n_folds=5, max_bucket_spread=1):
    samples = m.samples
    folds = [s.fold for s in samples]
    # covering and disjoint: every sample in exactly one fold, every fold used
    assert all(f in range(n_folds) for f in folds)
    assert set(folds) == set(range(n_folds))
    assert len({s.sample_id for s in samples}) == len(samples)
    # grouped by video
    fold_of_video = {}
    for s in samples:
        assert fold_of_video.setdefault(s.ytid, s.fold) == s.fold
    # stratified: each fold's share of every bucket within 2 points of the overall share,
    # and every bucket dealt to within one clip across folds
    buckets = [label_count_bucket(s.n_labels) for s in samples]
    overall = Counter(buckets)
    for f in range(n_folds):
        in_fold = Counter(b for b, g in zip(buckets, folds) if g == f)
        size = sum(in_fold.values())
        for b, n in overall.items():
            assert abs(in_fold[b] / size - n / len(samples)) <= 0.02, (f, b)
    for b in overall:
        per_fold = Counter(g for bb, g in zip(buckets, folds) if bb == b)
        assert max(per_fold.values()) - min(per_fold.get(f, 0) for f in range(n_folds)) <= max_bucket_spread, b
