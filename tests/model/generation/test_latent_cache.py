"""The stage-2 latent cache (generation.latent_cache) on the tiny random SD: training losses equal to the uncached
run's (centre crop and the release's buckets with flips), moments equal to the VAE's per view (bucket size and
flip, or the centre crop), keys that follow the VAE and the frame file."""

from __future__ import annotations

import json

import pytest
import torch
from stage2_helpers import embeddings, write_frame

from macs_model.generation import latent_cache
from macs_model.generation.components import tiny_components
from macs_model.generation.config import GeneratorConfig
from macs_model.generation.image_buckets import load_image, load_variant
from macs_model.generation.latent_cache import LatentCache, vae_identity
from macs_model.generation.training import TrainItem, train_adapter

pytest.importorskip("diffusers")

CONFIG = GeneratorConfig.preset("tiny", clap_dim=32, steps=4, log_every=1, checkpoint_every=100)
BUCKETS = GeneratorConfig.preset("tiny", clap_dim=32, steps=4, log_every=1, checkpoint_every=100,
                                 image_mode="buckets")


@pytest.fixture
def items(tmp_path):
    return [TrainItem(f"s{i}", write_frame(tmp_path / "frames" / f"s{i}.jpg", seed=i), embeddings(i))
            for i in range(4)]


def _losses(run):
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("config", [CONFIG, BUCKETS], ids=["centre-crop", "buckets"])
def test_training_losses_equal_the_uncached_run(items, tmp_path, monkeypatch, config):
    """Each step's loss is the one without the cache: on the first pass (filling it) and reading it back."""
    plain = _losses(_train(items, tmp_path / "plain", None, config))
    filling = _losses(_train(items, tmp_path / "filling", tmp_path / "latents", config))
    entries = list((tmp_path / "latents").glob("*/*.safetensors"))
    assert len(entries) >= len(items)
    if config is BUCKETS:  # the views seen in 4 steps of 2 epochs: flipped and unflipped ones among them
        assert any("-flip" in e.name for e in entries) and any("-flip" not in e.name for e in entries)

    def no_encoding(*args, **kwargs):
        raise AssertionError("a warm cache must not encode")

    monkeypatch.setattr(latent_cache, "encode_moments", no_encoding)
    reading = _losses(_train(items, tmp_path / "reading", tmp_path / "latents", config))
    assert len(plain) == CONFIG.steps and plain[0] > 0
    for losses in (filling, reading):
        assert losses == pytest.approx(plain, rel=1e-5, abs=1e-7)


def _train(items, run, latent_dir, config=CONFIG):
    train_adapter(tiny_components(0), items, config, run, progress=False, latent_dir=latent_dir)
    return run


@torch.no_grad()
def _pixels(path, view, height, width):
    """The view's pixels as the stage-2 preprocessing defines them: a stretched, maybe mirrored bucket view or the
    centre crop."""
    if view is None:
        return load_image(path, height, width)
    pixels = load_variant(path, view[0], view[1], False)
    return pixels.flip(-1) if view[2] else pixels


@torch.no_grad()
def test_moments_are_the_vaes_for_each_view(items, tmp_path):
    """A batch shares one size (a bucket, or the square whose crop or stretch it holds); flips vary per clip."""
    vae = tiny_components(0).vae
    cache = LatentCache(tmp_path, vae)
    rounds = ([None, (32, 32, True), (32, 32, False), None],
              [(24, 40, False), (24, 40, True), (24, 40, True), (24, 40, False)])
    for views in rounds:
        got = cache.moments(items, views, 32, 32)
        for item, view, moments in zip(items, views, got):
            expected = vae.encode(_pixels(item.image, view, 32, 32)[None]).latent_dist
            mean, logvar = moments.chunk(2)
            assert torch.allclose(mean, expected.mean[0], atol=1e-5)
            assert torch.allclose(logvar, expected.logvar[0], atol=1e-5)
            assert cache.path(item.sample_id, view, 32, 32).is_file()
    assert cache.misses == 8 and cache.hits == 0
    again = cache.moments(items, rounds[1], 32, 32)
    assert cache.hits == 4 and torch.equal(again, got)
    flipped = cache.moments(items[:1], [(24, 40, True)], 32, 32)  # another view of a cached clip: its own entry
    assert cache.misses == 9 and not torch.allclose(flipped[0], got[0])
    stretched = cache.moments(items[:1], [(32, 32, False)], 32, 32)  # the square stretch is not the centre crop
    cropped = cache.moments(items[:1], [None], 32, 32)
    assert cache.misses == 10 and not torch.allclose(cropped, stretched)


def test_key_follows_the_vae_and_entries_follow_the_frame(items, tmp_path):
    vae = tiny_components(0).vae
    key = vae_identity(vae)
    assert key == vae_identity(tiny_components(0).vae)  # the same weights: the same key
    assert key != vae_identity(tiny_components(1).vae)
    assert key != vae_identity(vae.to(torch.float16))  # another precision: other moments
    vae.to(torch.float32)
    crops = [None] * len(items)
    first = LatentCache(tmp_path, vae).moments(items, crops, 32, 32)
    with torch.no_grad():
        next(vae.parameters()).add_(0.5)
    changed = LatentCache(tmp_path, vae)
    assert changed.key != key
    assert not torch.allclose(changed.moments(items, crops, 32, 32), first) and changed.misses == len(items)
    write_frame(items[0].image, seed=99)  # a new frame under the same id: its entry is computed again
    fresh = LatentCache(tmp_path, vae)
    fresh.moments(items, crops, 32, 32)
    assert fresh.misses == 1 and fresh.hits == len(items) - 1
