"""Seeded, video-grouped, stratified partitions: k folds for cross-validation and a train/test holdout.

Both are computed once over the full pinned metadata and never over a filtered subset, so a clip keeps its
fold or split whatever other clips turn out to be unavailable. Ordering comes from ``sha256(seed:group)``,
which is the same on every platform and Python version.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Sequence

from macs_bench.errors import MacsError


def _rank_key(seed: int, group: str) -> str:
    return hashlib.sha256(f"{seed}:{group}".encode()).hexdigest()


def label_count_bucket(n_labels: int, top: int = 5) -> str:
    """The stratification bucket: ``"1"`` ... ``"4"``, then ``"5+"``."""
    return f"{top}+" if n_labels >= top else str(n_labels)


def _group_strata(groups: Sequence[str], strata: Sequence[str]) -> tuple[dict[str, str], Counter]:
    """Each group's stratum (the most frequent among its rows, ties to the larger name) and row count."""
    per_group: dict[str, Counter] = defaultdict(Counter)
    for group, stratum in zip(groups, strata, strict=True):
        per_group[group][stratum] += 1
    assignment = {g: max(c.items(), key=lambda kv: (kv[1], kv[0]))[0] for g, c in per_group.items()}
    sizes = Counter(groups)
    return assignment, sizes


def assign_folds(groups: Sequence[str], strata: Sequence[str], n_folds: int = 5, seed: int = 0) -> list[int]:
    """Fold index per row: rows of one group share a fold, and every stratum is spread evenly over folds.

    Strata are dealt smallest first. Within a stratum, groups in hash order each go to the fold holding the
    fewest rows of that stratum, ties to the fold with the fewest rows overall, then the lowest index.
    """
    group_stratum, group_size = _group_strata(groups, strata)
    if not 2 <= n_folds <= len(group_size):
        raise MacsError(f"cannot make {n_folds} folds of {len(group_size)} videos: choose 2 to {len(group_size)}")
    by_stratum: dict[str, list[str]] = defaultdict(list)
    for group, stratum in group_stratum.items():
        by_stratum[stratum].append(group)
    stratum_rows = {s: sum(group_size[g] for g in gs) for s, gs in by_stratum.items()}

    totals = [0] * n_folds
    fold_of: dict[str, int] = {}
    for stratum in sorted(by_stratum, key=lambda s: (stratum_rows[s], s)):
        in_stratum = [0] * n_folds
        for group in sorted(by_stratum[stratum], key=lambda g: _rank_key(seed, g)):
            fold = min(range(n_folds), key=lambda f: (in_stratum[f], totals[f], f))
            fold_of[group] = fold
            in_stratum[fold] += group_size[group]
            totals[fold] += group_size[group]
    return [fold_of[g] for g in groups]


def holdout_split(
    groups: Sequence[str], classes: Sequence[str], test_fraction: float = 0.1, seed: int = 0
) -> list[str]:
    """``"train"``/``"test"`` per row, stratified by class and grouped: no group is in both.

    The test set gets ``round(test_fraction * n)`` rows, apportioned over classes by largest remainder. Groups
    are visited in hash order and a group joins the test set when all its rows fit in their classes' quotas.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    class_sizes = Counter(classes)
    n_test = round(test_fraction * len(classes))
    exact = {c: test_fraction * n for c, n in class_sizes.items()}
    quota = {c: int(v) for c, v in exact.items()}
    leftover = n_test - sum(quota.values())
    for c in sorted(exact, key=lambda c: (-(exact[c] - quota[c]), c))[:leftover]:
        quota[c] += 1

    rows_of: dict[str, Counter] = defaultdict(Counter)
    for group, cls in zip(groups, classes, strict=True):
        rows_of[group][cls] += 1
    taken: Counter = Counter()
    test_groups: set[str] = set()
    for group in sorted(rows_of, key=lambda g: _rank_key(seed, g)):
        need = rows_of[group]
        if all(taken[c] + k <= quota[c] for c, k in need.items()):
            taken.update(need)
            test_groups.add(group)
    return ["test" if g in test_groups else "train" for g in groups]
