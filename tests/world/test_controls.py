"""The demo's control rows, per-source coverage and fixed-range radar axes."""

import itertools

import numpy as np
import pytest

from macs_bench.world.controls import coverage, derangement, write_noise, write_oracle, write_shuffled


def _brute_coverage(images, texts, label_sets):
    out = {}
    for image, labels in zip(images, label_sets):
        k = len(labels)
        cos = [float(np.dot(image, t) / np.linalg.norm(image) / np.linalg.norm(t)) for t in texts]
        best = max(itertools.combinations(range(len(texts)), k), key=lambda c: sum(cos[i] for i in c))
        out.setdefault(k, []).append(len(set(best) & set(labels)) / k)
    return out


def test_coverage_against_brute_force_subset_search():
    rng = np.random.default_rng(0)
    images, texts = rng.normal(size=(30, 8)), rng.normal(size=(4, 8))
    label_sets = [sorted(rng.choice(4, size=int(rng.integers(1, 4)), replace=False).tolist()) for _ in range(30)]
    got = coverage(images, texts, label_sets)
    expected = _brute_coverage(images, texts, label_sets)
    assert got["coverage"] == pytest.approx(np.mean([v for vs in expected.values() for v in vs]))
    for k, values in expected.items():
        assert got[f"coverage_{k}"] == pytest.approx(np.mean(values))
    perfect = coverage(texts[[0, 1, 2]] * 3.0, texts, [[0], [1], [2]])
    assert perfect["coverage"] == 1.0


def test_derangement_moves_every_id():
    ids = [f"s{i}" for i in range(17)]
    mapping = derangement(ids)
    assert sorted(mapping) == sorted(ids) == sorted(mapping.values())
    assert all(target != origin for target, origin in mapping.items())
    assert derangement(ids) == mapping


def test_controls_write_one_image_per_clip_and_the_oracle_shows_the_true_motifs(tmp_path):
    import torch

    from macs_bench.datasets.synthetic import CLASSES
    from macs_bench.world.scoring import image_input
    from macs_bench.world.towers import load_towers

    labels = {f"c{i}": tuple(CLASSES[j] for j in combo)
              for i, combo in enumerate(c for k in (1, 2, 3) for c in itertools.combinations(range(4), k))}
    write_oracle(labels, tmp_path / "oracle")
    write_noise(sorted(labels), tmp_path / "noise")
    write_shuffled(tmp_path / "oracle", sorted(labels), tmp_path / "shuffled")
    towers = load_towers()
    sets = [[CLASSES.index(c) for c in labels[sid]] for sid in sorted(labels)]
    with torch.no_grad():
        text = towers.text(list(CLASSES)).numpy()
        scores = {row: coverage(towers.image(torch.stack([image_input(tmp_path / row / f"{sid}.png")
                                                           for sid in sorted(labels)])).numpy(), text, sets)
                  for row in ("oracle", "noise", "shuffled")}
    assert scores["oracle"]["coverage"] > 0.95
    assert scores["noise"]["coverage"] < 0.8 and scores["shuffled"]["coverage"] < 0.8


def test_radar_values_on_fixed_ranges_are_not_min_max():
    from macs_bench.boards.rows import Row
    from macs_bench.plots.radar import radar_values

    rows = [Row("a", {"fid": 10.0, "ais": 0.50}), Row("b", {"fid": 10.1, "ais": 0.5002})]
    fixed = radar_values(rows, {"fid": (20.0, 0.0), "ais": (0.0, 1.0)})
    assert fixed[0][0] == pytest.approx(0.5) and fixed[1][0] == pytest.approx(0.495)
    assert fixed[0][3] == pytest.approx(0.5) and fixed[1][3] == pytest.approx(0.5002)
    assert radar_values(rows)[1][0] == 0.0  # the old min-max: a 1 % gap drawn as best against worst
    clipped = radar_values([Row("c", {"fid": 30.0})], {"fid": (20.0, 0.0)})
    assert clipped[0][0] == 0.0
