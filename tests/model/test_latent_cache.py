"""The stage-2 latent cache (macs_model.latent_cache) on the tiny random SD: training losses equal to the uncached
run's, moments equal to the VAE's per variant (size, flip), keys that follow the VAE and the frame file."""

from __future__ import annotations

import json

import pytest
import torch

from macs_model import latent_cache
from macs_model.generator import GeneratorConfig, TrainItem, load_image, tiny_components, train_adapter
from macs_model.latent_cache import LatentCache, vae_identity
from stage2_helpers import embeddings, write_frame

pytest.importorskip("diffusers")

CONFIG = GeneratorConfig.preset("tiny", clap_dim=32, steps=4, log_every=1, checkpoint_every=100)


@pytest.fixture
def items(tmp_path):
    return [TrainItem(f"s{i}", write_frame(tmp_path / "frames" / f"s{i}.jpg", seed=i), embeddings(i))
            for i in range(4)]


def _losses(run):
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_training_losses_equal_the_uncached_run(items, tmp_path, monkeypatch):
    """Each step's loss is the one without the cache: on the first pass (filling it) and reading it back."""
    plain = _losses(_train(items, tmp_path / "plain", None))
    filling = _losses(_train(items, tmp_path / "filling", tmp_path / "latents"))
    assert len(list((tmp_path / "latents").glob("*/*.safetensors"))) == len(items)

    def no_encoding(*args, **kwargs):
        raise AssertionError("a warm cache must not encode")

    monkeypatch.setattr(latent_cache, "encode_moments", no_encoding)
    reading = _losses(_train(items, tmp_path / "reading", tmp_path / "latents"))
    assert len(plain) == CONFIG.steps and plain[0] > 0
    for losses in (filling, reading):
        assert losses == pytest.approx(plain, rel=1e-5, abs=1e-7)


def _train(items, run, latent_dir):
    train_adapter(tiny_components(0), items, CONFIG, run, progress=False, latent_dir=latent_dir)
    return run


@torch.no_grad()
def test_moments_are_the_vaes_for_each_size_and_flip(items, tmp_path):
    vae = tiny_components(0).vae
    cache = LatentCache(tmp_path, vae)
    for height, width in ((32, 32), (24, 40)):
        flips = [False, True, True, False]
        got = cache.moments(items, height, width, flips)
        for item, flip, moments in zip(items, flips, got):
            image = load_image(item.image, height, width)
            image = torch.flip(image, dims=[2]) if flip else image
            expected = vae.encode(image[None]).latent_dist
            mean, logvar = moments.chunk(2)
            assert torch.allclose(mean, expected.mean[0], atol=1e-5)
            assert torch.allclose(logvar, expected.logvar[0], atol=1e-5)
            assert cache.path(item.sample_id, height, width, flip).is_file()
    assert cache.misses == 8 and cache.hits == 0
    again = cache.moments(items, 24, 40, [False, True, True, False])
    assert cache.hits == 4 and torch.equal(again, got)
    flipped = cache.moments(items[:1], 24, 40, [True])  # another variant of a cached clip: its own entry
    assert cache.misses == 9 and not torch.allclose(flipped[0], got[0])


def test_key_follows_the_vae_and_entries_follow_the_frame(items, tmp_path):
    vae = tiny_components(0).vae
    key = vae_identity(vae)
    assert key == vae_identity(tiny_components(0).vae)  # the same weights: the same key
    assert key != vae_identity(tiny_components(1).vae)
    assert key != vae_identity(vae.to(torch.float16))  # another precision: other moments
    vae.to(torch.float32)
    first = LatentCache(tmp_path, vae).moments(items, 32, 32)
    with torch.no_grad():
        next(vae.parameters()).add_(0.5)
    changed = LatentCache(tmp_path, vae)
    assert changed.key != key
    assert not torch.allclose(changed.moments(items, 32, 32), first) and changed.misses == len(items)
    write_frame(items[0].image, seed=99)  # a new frame under the same id: its entry is computed again
    fresh = LatentCache(tmp_path, vae)
    fresh.moments(items, 32, 32)
    assert fresh.misses == 1 and fresh.hits == len(items) - 1
