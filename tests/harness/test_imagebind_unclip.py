"""ImageBind + Stable unCLIP through the harness: the tiny config end to end, the embedding reaching the UNet, and
the default path without weights failing with one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from macs_bench.errors import MacsError
from macs_bench.models import load_model, run
from macs_bench.models.protocol import Item
from macs_bench.metrics.scoring import ScoreConfig

REPO = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(scope="module")
def tiny():
    return load_model("imagebind-unclip", preset="tiny", device="cpu")


def _items(n: int, seed: int = 0) -> list[Item]:
    rng = np.random.default_rng(seed)
    t = np.arange(16000 * 4) / 16000
    return [Item(f"s{i}", (0.3 * np.sin(2 * np.pi * (200 + 300 * i) * t) + 0.05 * rng.standard_normal(t.size))
                 .astype(np.float32), 16000, 7) for i in range(n)]  # one seed for all: only the audio differs


def test_tiny_run_generates_and_scores_a_synthetic_fold(world_fold, tmp_path, tiny):
    done = run(tiny, world_fold.manifest, world_fold.media, tmp_path / "r", fold=0, batch_size=3,
               config=ScoreConfig(preset="world", cache_dir=str(tmp_path / "features")), progress=False)
    data = json.loads(done.result_file.read_text())
    assert data["model"] == "ImageBind + unCLIP" and data["n"] == 4 and done.generated_now == 4
    assert data["row"] == {"kind": "model", "source": "computed", "may_have_seen_test": False,
                           "note": "tiny random weights (tests)"}
    assert data["model_provenance"]["unclip"]["base"] == "tiny"
    assert data["model_provenance"]["config"]["inference_steps"] == 3
    assert all(np.isfinite(data["metrics"][k]) for k in ("fid", "kid", "ais", "iis"))
    pngs = sorted(done.images.glob("*.png"))
    assert len(pngs) == 4 and len({p.read_bytes() for p in pngs}) == 4


def test_the_audio_embedding_reaches_the_unet(tiny):
    items = _items(2)
    seen = []
    hook = tiny.pipe.unet.register_forward_pre_hook(lambda m, args, kwargs: seen.append(kwargs["class_labels"]),
                                                    with_kwargs=True)
    try:
        images = [np.asarray(x, dtype=np.int16) for x in tiny.generate(items, 0)]
    finally:
        hook.remove()
    embeds = tiny.embeddings(items)
    assert embeds.shape == (2, 32) and not torch.allclose(embeds[0], embeds[1], atol=1e-3)
    labels = seen[0]  # [uncond; cond] x [embedding, noise-level embedding]
    assert labels.shape == (4, 64)
    assert torch.count_nonzero(labels[:2, :32]) == 0  # guidance's negative: the zero embedding
    torch.testing.assert_close(labels[2:, :32], embeds, atol=0.05, rtol=0.02)  # noise level 0: almost unchanged
    assert np.abs(images[0] - images[1]).mean() > 1.0  # same seed, other audio: another image

    zero = tiny.draw_embeddings(torch.zeros_like(embeds[:1]), [7])[0]
    assert np.abs(np.asarray(zero, dtype=np.int16) - images[0]).mean() > 1.0
    again = tiny.draw_embeddings(embeds[:1], [7])[0]
    assert np.array_equal(np.asarray(again, dtype=np.int16), images[0])  # and the same embedding, the same image


def test_embed_norm_rescales_what_unclip_receives():
    model = load_model("imagebind-unclip", preset="tiny", device="cpu", embed_norm=5.0)
    embeds = model.embeddings(_items(2))
    torch.testing.assert_close(embeds.norm(dim=-1), torch.full((2,), 5.0))
    raw = load_model("imagebind-unclip", preset="tiny", device="cpu").embeddings(_items(2))
    assert float(raw.norm(dim=-1).max()) <= 20.0 + 1e-4  # a mean of three vectors of norm 20
    torch.testing.assert_close(torch.nn.functional.normalize(raw, dim=-1), embeds / 5.0)


def test_default_path_without_weights_is_one_error_naming_both(tmp_path, monkeypatch):
    monkeypatch.setenv("MACS_HOME", str(tmp_path / "home"))
    with pytest.raises(MacsError) as err:
        load_model("imagebind-unclip")
    message = str(err.value)
    assert "\n" not in message
    assert "missing weights imagebind-huge, sd-2-1-unclip" in message
    assert "macs-bench weights fetch imagebind-huge sd-2-1-unclip" in message
    with pytest.raises(MacsError, match="unknown imagebind-unclip preset 'huge'"):
        load_model("imagebind-unclip", preset="huge")


@pytest.mark.slow
def test_cli_runs_the_tiny_config_and_fails_in_one_line_without_weights(world_fold, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "MACS_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "macs_bench", "run", "imagebind-unclip", "--manifest", str(world_fold.manifest),
            "--media", str(world_fold.media), "--fold", "1"]
    tiny = subprocess.run([*args, "--out", str(tmp_path / "tiny"), "--option", "preset=tiny", "--option",
                           "device=cpu", "--preset", "world", "--cache-dir", str(tmp_path / "features")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert tiny.returncode == 0, tiny.stderr[-2000:]
    data = json.loads((tmp_path / "tiny" / "result.json").read_text())
    assert data["model"] == "ImageBind + unCLIP" and data["n"] == 4
    assert len(list((tmp_path / "tiny" / "images").glob("*.png"))) == 4
    done = subprocess.run([*args, "--out", str(tmp_path / "r")], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "missing weights imagebind-huge, sd-2-1-unclip" in done.stderr
    assert not (tmp_path / "r" / "images").exists()


def test_local_checkpoint_and_pipeline_load_through_the_real_path(world_fold, tmp_path):
    """The user-facing loaders on local files: an official-layout ImageBind state dict (tiny sizes) and a
    diffusers folder saved from the tiny pipeline; the row is stamped (ImageBind's pre-training data)."""
    from macs_model.baselines.imagebind_unclip import tiny_unclip
    from macs_model.encoders.imagebind_audio import ImageBindAudio, ImageBindAudioConfig

    encoder = ImageBindAudio(ImageBindAudioConfig.preset("tiny").replace(seed=3))
    torch.save(encoder.official_state_dict(), tmp_path / "imagebind_huge.pth")
    tiny_unclip(32, seed=1)[0].save_pretrained(tmp_path / "unclip")
    model = load_model("imagebind-unclip", imagebind=tmp_path / "imagebind_huge.pth", unclip=tmp_path / "unclip",
                       encoder="tiny", height=32, width=32, steps=2, device="cpu")
    assert model.encoder.source["sha256"] and model.unclip_source["base"] == str(tmp_path / "unclip")
    torch.testing.assert_close(model.embeddings(_items(1)), encoder.embed([_items(1)[0].waveform], 16000))
    assert len(model.generate(_items(2), 0)) == 2
    assert model.trained_ids() is None and model.row_info().may_have_seen_test is True
    from macs_bench.models.runner import fold_samples

    fold2 = fold_samples(world_fold.manifest / "manifest.csv", 2, None).ids
    model.held_out = set(fold2)  # as --option held_out=[...] sets it: ids known to be outside ImageBind's data
    model.prepare(world_fold.manifest / "manifest.csv", world_fold.media, 2)
    assert model.row_info().may_have_seen_test is False
    model.prepare(world_fold.manifest / "manifest.csv", world_fold.media, 3)
    assert model.row_info().may_have_seen_test is True
    (tmp_path / "unclip" / "model_index.json").write_text("{")
    with pytest.raises(MacsError, match="unclip: cannot load Stable unCLIP"):
        load_model("imagebind-unclip", imagebind=tmp_path / "imagebind_huge.pth", unclip=tmp_path / "unclip",
                   encoder="tiny", device="cpu")
