"""The world's data: twelve classes sharing bands and colours, 1-5 sources with gain spread and partial overlap,
balanced source counts and enough test clips per count over the 5 folds."""

from collections import Counter
from math import comb

import numpy as np
import pytest

from macs_bench.world.motifs import COLOURS, SHAPES, motif_of
from macs_bench.world.sounds import CLASSES, MAX_SOURCES, SAMPLE_RATE, quantise, render_sources, sound
from macs_bench.world.synthetic import make_clip, source_counts, write_synthetic


def test_default_benchmark_has_five_folds_and_100_test_clips_per_source_count(tmp_path):
    from macs_bench.datasets.manifest import LIST_SEP, manifest_rows

    made = write_synthetic(tmp_path / "w", seconds=0.1, image_size=16)
    rows = manifest_rows(made.manifest)
    counts = Counter(len(r["labels"].split(LIST_SEP)) for r in rows)
    assert sorted(counts) == list(range(1, MAX_SOURCES + 1)) and min(counts.values()) >= 100
    per_fold = Counter((int(r["fold"]), len(r["labels"].split(LIST_SEP))) for r in rows)
    assert sorted({f for f, _ in per_fold}) == [0, 1, 2, 3, 4]
    assert max(per_fold.values()) - min(per_fold.values()) <= 1  # stratified by number of sources
    sets = {r["labels"] for r in rows}
    label_sets = sum(comb(len(CLASSES), k) for k in range(1, MAX_SOURCES + 1))
    assert label_sets == 1585 > 2 * len(rows) and len(sets) > 0.6 * len(rows)  # few sets repeat


def test_source_counts_are_even():
    counts = Counter(source_counts(103, np.random.default_rng(0)))
    assert sorted(counts) == [1, 2, 3, 4, 5] and max(counts.values()) - min(counts.values()) <= 1


def test_the_mixture_is_the_sum_of_its_sources():
    rng = np.random.default_rng(4)
    for k in (1, 3, 5):
        clip = make_clip(k, 16000, rng, image_size=16)
        assert clip.sources.shape == (k, 16000) and len(set(clip.names)) == k
        np.testing.assert_allclose(clip.mix, quantise(clip.sources.sum(0)), atol=0)
        assert np.abs(clip.sources.sum(0)).max() == pytest.approx(0.8)


def test_sources_have_gain_spread_and_overlap_only_partly_in_time():
    rng = np.random.default_rng(5)
    dense = ("Hum", "Drone", "Whistle", "Rain", "Wind")  # sounds without gaps of their own
    spreads, shares = [], []
    for _ in range(30):
        sources = render_sources(dense, 32000, rng)
        spans = [np.flatnonzero(np.abs(s) > 1e-9)[[0, -1]] for s in sources]
        shares += [(last - first + 1) / 32000 for first, last in spans]
        level = [np.sqrt(np.mean(s[first:last + 1] ** 2)) for s, (first, last) in zip(sources, spans)]
        spreads.append(20 * np.log10(max(level) / min(level)))
    assert min(shares) >= 0.4 - 1e-3 and np.mean(np.array(shares) < 0.95) > 0.8  # 40-100 % of the clip
    assert max(spreads) < 20.5 and max(spreads) > 15 and np.median(spreads) > 8  # up to 20 dB apart
    alone = render_sources(("Hum",), 32000, rng)[0]
    assert np.abs(alone[:100]).max() > 0 and np.abs(alone[-100:]).max() > 0  # a single source fills its clip


def _band(name: str) -> tuple[float, float]:
    """The 10-90 % energy range of a class's spectrum (Hz)."""
    wave = sound(name, SAMPLE_RATE, np.random.default_rng(0))
    power = np.abs(np.fft.rfft(wave)) ** 2
    cum = np.cumsum(power) / power.sum()
    freqs = np.fft.rfftfreq(len(wave), 1 / SAMPLE_RATE)
    return float(freqs[np.searchsorted(cum, 0.1)]), float(freqs[np.searchsorted(cum, 0.9)])


def test_every_class_shares_its_frequency_band_with_others():
    bands = {name: _band(name) for name in CLASSES}
    for name, (low, high) in bands.items():
        overlapping = [o for o, (lo, hi) in bands.items() if o != name and lo < high and low < hi]
        assert len(overlapping) >= 2, (name, bands[name], overlapping)


def test_colours_are_shared_so_only_colour_and_shape_together_name_a_class():
    motifs = [motif_of(c) for c in CLASSES]
    assert len(set(motifs)) == len(CLASSES) == len(COLOURS) * len(SHAPES)
    assert set(Counter(c for c, _ in motifs).values()) == {len(SHAPES)}
    assert set(Counter(s for _, s in motifs).values()) == {len(COLOURS)}


def test_rewriting_gives_the_same_bytes(tmp_path):
    a = write_synthetic(tmp_path / "a", n_clips=10, seconds=0.2, image_size=16)
    b = write_synthetic(tmp_path / "b", n_clips=10, seconds=0.2, image_size=16)
    for sub in ("manifest/manifest.csv", "media/audio/syn0003.wav", "media/frames/syn0007.jpg"):
        assert (a.manifest.parent / sub).read_bytes() == (b.manifest.parent / sub).read_bytes()
