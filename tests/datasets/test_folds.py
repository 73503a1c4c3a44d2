import random
from collections import Counter, defaultdict

import pytest

from macs_bench.datasets.folds import assign_folds, holdout_split, label_count_bucket
from macs_bench.errors import MacsError


def _synthetic(n_groups=400, seed=1):
    rng = random.Random(seed)
    groups, strata = [], []
    for g in range(n_groups):
        stratum = rng.choices(["2", "3", "4", "5+"], weights=[80, 12, 6, 2])[0]
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            groups.append(f"vid{g:04d}")
            strata.append(stratum)
    return groups, strata


def test_label_count_bucket():
    assert [label_count_bucket(n) for n in (1, 2, 4, 5, 11)] == ["1", "2", "4", "5+", "5+"]


def test_groups_never_split_and_strata_balanced():
    groups, strata = _synthetic()
    folds = assign_folds(groups, strata, n_folds=5, seed=0)
    fold_of_group = defaultdict(set)
    for g, f in zip(groups, folds):
        fold_of_group[g].add(f)
    assert all(len(fs) == 1 for fs in fold_of_group.values())
    assert set(folds) == set(range(5))
    # Per stratum, fold sizes differ by at most the largest group size (3).
    for stratum in set(strata):
        sizes = Counter(f for f, s in zip(folds, strata) if s == stratum)
        sizes = [sizes.get(f, 0) for f in range(5)]
        assert max(sizes) - min(sizes) <= 3, (stratum, sizes)


def test_unique_groups_are_dealt_evenly():
    groups = [f"v{i}" for i in range(103)]
    strata = ["2"] * 90 + ["3"] * 13
    folds = assign_folds(groups, strata, n_folds=5, seed=3)
    for stratum in ("2", "3"):
        sizes = Counter(f for f, s in zip(folds, strata) if s == stratum)
        assert max(sizes.values()) - min(sizes.values()) <= 1
    totals = Counter(folds)
    assert max(totals.values()) - min(totals.values()) <= 1


def test_deterministic_and_seed_dependent():
    groups, strata = _synthetic()
    a = assign_folds(groups, strata, seed=0)
    assert a == assign_folds(list(groups), list(strata), seed=0)
    assert a != assign_folds(groups, strata, seed=1)


def test_assign_folds_rejects_impossible_fold_counts():
    with pytest.raises(MacsError, match="cannot make 1 folds"):
        assign_folds(["a", "b"], ["1", "1"], n_folds=1)
    with pytest.raises(MacsError, match="cannot make 3 folds of 2 videos"):
        assign_folds(["a", "b", "b"], ["1", "1", "1"], n_folds=3)


def test_holdout_is_grouped_stratified_and_seeded():
    rng = random.Random(0)
    groups, classes = [], []
    for g in range(300):
        cls = rng.choice("abcde")
        for _ in range(rng.choice([1, 1, 2])):
            groups.append(f"g{g}")
            classes.append(cls)
    split = holdout_split(groups, classes, 0.1, seed=0)
    test_groups = {g for g, s in zip(groups, split) if s == "test"}
    train_groups = {g for g, s in zip(groups, split) if s == "train"}
    assert not test_groups & train_groups
    n_test = split.count("test")
    assert abs(n_test - round(0.1 * len(groups))) <= 2
    per_class = Counter(c for c, s in zip(classes, split) if s == "test")
    totals = Counter(classes)
    for cls in totals:
        assert per_class[cls] <= totals[cls] * 0.1 + 1
        assert per_class[cls] >= totals[cls] * 0.1 - 2
    assert split == holdout_split(groups, classes, 0.1, seed=0)
    assert split != holdout_split(groups, classes, 0.1, seed=1)


def test_manifest_fold_checker_on_grouped_data(check_folds):
    """The real manifests have one clip per video; this exercises grouping and the 2-point bound together."""
    from dataclasses import replace

    from macs_bench.datasets.manifest import Manifest, Sample

    groups, strata = _synthetic(n_groups=3000, seed=5)
    labels_of = {"2": 2, "3": 3, "4": 4, "5+": 5}
    samples = [Sample(f"{g}_{i}_{i + 1}", tuple(f"l{k}" for k in range(labels_of[st])), "eval", ytid=g)
               for i, (g, st) in enumerate(zip(groups, strata))]
    folds = assign_folds(groups, strata, n_folds=5, seed=0)
    check_folds(Manifest("synthetic", [replace(s, fold=f) for s, f in zip(samples, folds)]),
                max_bucket_spread=3)
