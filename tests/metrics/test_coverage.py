"""Per-source coverage and AIC against a brute-force loop and a hand-made case."""

import numpy as np
import pytest

from macs_bench.errors import MacsError
from macs_bench.metrics.coverage import (PROMPTS, class_text_embeddings, coverage_report, label_indices,
                                         source_coverage)


def brute_force(images, classes, label_sets):
    """One sample at a time, in plain Python: cosines, sort by (-score, class index), count hits."""
    coverage, aic = [], []
    for image, labels in zip(images, label_sets):
        scores = []
        for c, text in enumerate(classes):
            cos = sum(a * b for a, b in zip(image, text)) / (
                sum(a * a for a in image) ** 0.5 * sum(b * b for b in text) ** 0.5)
            scores.append((-cos, c))
        ranked = [c for _, c in sorted(scores)]
        coverage.append(len(set(ranked[: len(labels)]) & set(labels)) / len(labels))
        aic.append(1.0 if ranked[0] in labels else 0.0)
    return coverage, aic


def test_matches_a_brute_force_loop_on_random_embeddings(rng):
    n, n_classes, d = 60, 12, 16
    images, classes = rng.normal(size=(n, d)), rng.normal(size=(n_classes, d))
    label_sets = [list(rng.choice(n_classes, size=rng.integers(1, 5), replace=False)) for _ in range(n)]
    got = source_coverage(images, classes, label_sets)
    coverage, aic = brute_force(images.tolist(), classes.tolist(), label_sets)
    np.testing.assert_allclose(got.per_sample, coverage, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(got.aic, aic)
    assert got.mean == pytest.approx(np.mean(coverage), abs=1e-12)
    assert 0 < got.mean < 1  # the random case is not degenerate
    for k, row in got.by_sources().items():
        picked = [c for c, labels in zip(coverage, label_sets) if len(labels) == k]
        assert row["n"] == len(picked) and row["coverage"] == pytest.approx(np.mean(picked))


def test_hand_made_case():
    # three classes along the axes: dog (x), car (y), rain (z)
    classes = np.eye(3)
    images = np.array([
        [1.0, 0.9, 0.0],   # dog and car shown, rain not: top-2 = {dog, car}
        [1.0, 0.0, 0.2],   # only dog: top-2 = {dog, rain}; labels {dog, car} -> 1/2
        [0.0, 0.1, 1.0],   # rain; labels {car} -> top-1 rain, miss
        [0.3, 0.2, 1.0],   # all three labelled, everything covered
    ])
    labels = [[0, 1], [0, 1], [1], [2, 0, 1]]
    got = source_coverage(images, classes, labels)
    np.testing.assert_array_equal(got.per_sample, [1.0, 0.5, 0.0, 1.0])
    np.testing.assert_array_equal(got.aic, [1.0, 1.0, 0.0, 1.0])
    assert got.by_sources() == {1: {"n": 1, "coverage": 0.0, "aic": 0.0},
                                2: {"n": 2, "coverage": 0.75, "aic": 1.0},
                                3: {"n": 1, "coverage": 1.0, "aic": 1.0}}


def test_ties_go_to_the_class_listed_first():
    image = np.array([[1.0, 1.0, 0.0]])  # dog and car tie
    assert source_coverage(image, np.eye(3), [[0]]).per_sample[0] == 1.0
    assert source_coverage(image, np.eye(3), [[1]]).per_sample[0] == 0.0
    # a long row with many ties (scores 0, 1, 2), where an unstable sort would reorder tied classes
    scores = np.random.default_rng(0).integers(0, 3, size=40).astype(float) + 1.0
    first_listed = sorted(range(40), key=lambda c: (-scores[c], c))  # brute force: ties to the lower index
    for k in range(1, 8):
        assert source_coverage(scores[None], np.eye(40), [first_listed[:k]]).per_sample[0] == 1.0


def test_report_gives_the_ground_truth_ceiling_and_relative_coverage():
    classes = np.eye(3)
    gt = np.array([[1.0, 0.9, 0.0], [0.0, 0.1, 1.0]])
    gen = np.array([[1.0, 0.0, 0.5], [0.0, 0.1, 1.0]])
    metrics, breakdown, per_sample = coverage_report(gen, gt, classes, [[0, 1], [2]])
    assert metrics == {"source_coverage": 0.75, "source_coverage_gt": 1.0, "source_coverage_rel": 0.75,
                       "aic": 1.0, "aic_gt": 1.0}
    assert breakdown["2"] == {"n": 1, "coverage": 0.5, "coverage_gt": 1.0, "aic": 1.0, "aic_gt": 1.0,
                              "chance": 2 / 3}
    np.testing.assert_array_equal(per_sample["source_coverage"], [0.5, 1.0])
    np.testing.assert_array_equal(per_sample["aic_gt"], [1.0, 1.0])


def test_class_text_embeddings_average_the_prompts():
    seen = []

    def tower(sentences):
        seen.extend(sentences)
        return np.array([[len(s), s.count("a"), 1.0] for s in sentences])

    emb = class_text_embeddings(tower, ["dog", "rain"])
    assert seen[: len(PROMPTS)] == [p.format("dog") for p in PROMPTS]
    rows = np.array([[len(s), s.count("a"), 1.0] for s in seen])
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    expected = rows[: len(PROMPTS)].mean(axis=0)
    np.testing.assert_allclose(emb[0], expected / np.linalg.norm(expected))
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0)


def test_bad_label_sets():
    with pytest.raises(MacsError, match="sample 1: empty label set"):
        source_coverage(np.eye(2), np.eye(2), [[0], []])
    with pytest.raises(MacsError, match=r"sample 0: labels must be class indices in \[0, 2\)"):
        source_coverage(np.eye(2), np.eye(2), [[2], [0]])
    with pytest.raises(MacsError, match="1 label sets for 2 images"):
        source_coverage(np.eye(2), np.eye(2), [[0]])
    with pytest.raises(MacsError, match="'owl' is not among the 2 classes"):
        label_indices(["cat", "dog"], [["cat", "owl"]])
    assert label_indices(["cat", "dog"], [["dog", "cat", "dog"]]) == [[1, 0]]


def test_chance_level_is_what_a_blind_detector_scores():
    """Labels drawn at random, independently of the images: mean coverage and AIC approach |Y| / |V|."""
    from macs_bench.metrics.coverage import chance_level

    rng = np.random.default_rng(0)
    n, n_classes = 6000, 7
    label_sets = [rng.choice(n_classes, size=rng.integers(1, 4), replace=False).tolist() for _ in range(n)]
    scores = source_coverage(rng.normal(size=(n, 5)), rng.normal(size=(n_classes, 5)), label_sets)
    chance = chance_level(label_sets, n_classes)
    np.testing.assert_array_equal(chance, [len(y) / n_classes for y in label_sets])
    assert abs(scores.mean - chance.mean()) < 0.02 and abs(scores.aic_mean - chance.mean()) < 0.02
    assert chance.mean() == pytest.approx(2 / 7, abs=0.01)  # |Y| uniform on 1..3
