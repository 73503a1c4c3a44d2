from collections import Counter


def test_counts_and_classes(manifests):
    m = manifests("landscape")
    assert len(m) == 1000
    assert Counter(s.labels[0] for s in m.samples) == {
        "explosion": 12, "fire_crackling": 150, "raining": 150, "splashing_water": 145, "squishing_water": 149,
        "thunder": 79, "underwater_bubbling": 120, "waterfall_burbling": 54, "wind_noise": 141,
    }
    assert all(s.fold is None and s.mids == () for s in m.samples)


def test_split_is_grouped_stratified_90_10(manifests):
    m = manifests("landscape")
    split_of_video = {}
    for s in m.samples:
        assert split_of_video.setdefault(s.ytid, s.split) == s.split, s.ytid
    test = [s for s in m.samples if s.split == "test"]
    assert 95 <= len(test) <= 100
    per_class = Counter(s.labels[0] for s in test)
    totals = Counter(s.labels[0] for s in m.samples)
    for cls, n in totals.items():
        assert abs(per_class[cls] - 0.1 * n) <= 1.5, cls
    assert m.stats["videos"] == {"distinct": 789, "with_several_clips": 204, "with_several_classes": 5}
