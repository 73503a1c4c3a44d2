"""Every baseline's tiny config through the harness (generate + score a toy fold), each checked against an
independent computation: the stock diffusers pipeline, a brute-force zero-shot ranking, fold-wise ``generate``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from macs_bench.errors import MacsError
from macs_bench.models import load_model, run
from macs_bench.models.protocol import Item, sample_seed
from macs_bench.models.runner import fold_samples
from macs_bench.scoring import ScoreConfig


def _config(tmp_path):
    return ScoreConfig(preset="tiny", cache_dir=str(tmp_path / "features"))


def _pixels(path):
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"), dtype=np.int16)


@pytest.mark.slow
def test_ground_truth_prompt_equals_the_stock_pipeline(toy, tmp_path):
    from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline

    model = load_model("gt-prompt-sd", preset="tiny")
    done = run(model, toy.manifest, toy.media, tmp_path / "gt", fold=0, config=_config(tmp_path), progress=False, allow_missing=True)
    assert done.score.n == done.samples > 0
    assert done.score.provenance["row"]["kind"] == "control"
    parts = model.drawer.components
    stock = StableDiffusionPipeline(vae=parts.vae, text_encoder=parts.text_encoder, tokenizer=parts.tokenizer,
                                    unet=parts.unet, safety_checker=None, feature_extractor=None,
                                    scheduler=DPMSolverMultistepScheduler.from_config(parts.scheduler.config),
                                    requires_safety_checker=False)
    stock.set_progress_bar_config(disable=True)
    config = model.drawer.config
    sid = sorted(done.images.glob("*.png"))[0].stem
    latents = torch.randn(4, config.height // stock.vae_scale_factor, config.width // stock.vae_scale_factor,
                          generator=torch.Generator().manual_seed(sample_seed(sid, 0)))[None]
    image = stock(prompt="a photo of tone", negative_prompt="", latents=latents, height=config.height,
                  width=config.width, num_inference_steps=config.inference_steps,
                  guidance_scale=config.guidance_scale).images[0]
    assert np.abs(_pixels(done.images / f"{sid}.png") - np.asarray(image, dtype=np.int16)).max() <= 1


@pytest.mark.slow
def test_zero_shot_prompt_ranks_labels_like_brute_force(toy, tmp_path):
    model = load_model("clap-zero-shot-sd", preset="tiny", clap="tiny", top_k=2,
                       classes=["Tone", "Dog", "Rain", "Speech"])
    from macs_bench.features.inputs import load_audio

    items = [Item(sid, load_audio(toy.media / "audio" / f"{sid}.wav"), 16000, 0) for sid in toy.ids[:4]]
    got = model.labels_of(items)
    encoder = model.encoder
    with torch.no_grad():
        text = encoder.embed_text([f"The sound of {c.lower()}" for c in model.classes])
        for item, labels in zip(items, got):
            audio = encoder.embed_audio(torch.as_tensor(item.waveform)[None])[0]
            scores = [float(audio @ t) for t in text]
            order = sorted(range(len(scores)), key=lambda i: -scores[i])[:2]
            assert labels == [model.classes[i] for i in order]
    done = run(model, toy.manifest, toy.media, tmp_path / "zs", fold=0, config=_config(tmp_path), progress=False, allow_missing=True)
    assert done.score.n == done.samples and done.score.provenance["row"]["kind"] == "model"
    assert set(model.prompts) <= set(fold_samples(toy.manifest / "manifest.csv", 0, None).ids)


@pytest.mark.slow
@pytest.mark.parametrize("mss", [False, True], ids=["audiotoken", "audiotoken-mss"])
def test_audiotoken_fits_its_embedder_only_and_refuses_its_training_folds(toy, separator, tmp_path, mss):
    from macs_model.baselines.token import AudioToken

    model = AudioToken(separator=separator if mss else None, clap="tiny", preset="tiny", steps=2, batch_size=2,
                       work=tmp_path / "token")
    frozen = {k: v.clone() for k, v in model.drawer.components.unet.state_dict().items()}
    before = {k: v.clone() for k, v in model.embedder.state_dict().items()}
    done = run(model, toy.manifest, toy.media, tmp_path / "tok", fold=0, config=_config(tmp_path), fit=True,
               progress=False, allow_missing=True)
    assert done.score.n == done.samples > 0
    assert all(torch.equal(v, model.drawer.components.unet.state_dict()[k]) for k, v in frozen.items())
    assert any(not torch.equal(v, model.embedder.state_dict()[k]) for k, v in before.items())
    every, held = (set(fold_samples(toy.manifest / "manifest.csv", f, None).ids) for f in (None, 0))
    assert model.trained_ids() == every - held
    tokens = 1 if not mss else model.conditioner.num_tokens
    assert model.prompt().count("*") == tokens and tokens == model.embedder.slot.shape[0]
    # the placeholders' input embeddings are the embedder's tokens, the rest the tokenizer's own
    embeddings = torch.randn(1, tokens, model.conditioner.embed_dim)
    seen = {}
    encoder = model.drawer.components.text_encoder
    text_embeddings = getattr(encoder, "text_model", encoder).embeddings  # token + position embeddings
    layer = text_embeddings.token_embedding
    hook = text_embeddings.register_forward_hook(lambda m, a, out: seen.setdefault("out", out.detach().clone()))
    try:
        model.states(embeddings)
    finally:
        hook.remove()
    ids = model.drawer.components.tokenizer([model.prompt()], padding="max_length", return_tensors="pt",
                                            max_length=model.drawer.components.tokenizer.model_max_length).input_ids
    mask = ids == model.placeholder
    seen["out"] = seen["out"] - text_embeddings.position_embedding.weight[:ids.shape[1]]
    with torch.no_grad():
        assert torch.allclose(seen["out"][mask], model.embedder(embeddings)[0])
        assert torch.allclose(seen["out"][~mask], layer(ids)[~mask])
    with pytest.raises(MacsError, match="trained on"):
        run(model, toy.manifest, toy.media, tmp_path / "tok1", fold=1, config=_config(tmp_path), progress=False, allow_missing=True)


@pytest.mark.slow
def test_macs_run_draws_what_fold_wise_generate_drew(toy, stage2, tmp_path):
    model = load_model("macs", run=str(stage2.run))
    done = run(model, toy.manifest, toy.media, tmp_path / "macs", fold=0, config=_config(tmp_path),
               progress=False, allow_missing=True)
    assert done.score.n == done.samples and model.name == "MACS"
    assert done.score.provenance["row"]["may_have_seen_test"] is False
    for png in sorted(done.images.glob("*.png")):
        assert np.abs(_pixels(png) - _pixels(stage2.pred / png.name)).max() <= 1
    with pytest.raises(MacsError, match="trained on"):
        run(model, toy.manifest, toy.media, tmp_path / "macs1", fold=1, config=_config(tmp_path), progress=False, allow_missing=True)


def test_stage_entry_points_return_typed_results(stage2, separator, toy, tmp_path):
    """train_generator gives a TrainSummary (also readable as the old mapping); separate gives Separations."""
    from macs_model import Separation, TrainSummary, separate

    summary = stage2.summary
    assert isinstance(summary, TrainSummary) and summary.finished and summary.adapter == summary["adapter"]
    assert summary.samples == summary["train_samples"] > 0 and summary.run == stage2.run
    (result,) = separate([toy.media / "audio" / "clip00.wav"], separator, tmp_path / "sep", progress=False)
    assert isinstance(result, Separation) and result.input_sha256 == result["input_sha256"]
    assert [p.name for p in result.stem_files] == [f"source-{k}.wav" for k in range(1, len(result.stems) + 1)]
    assert all(p.is_file() for p in result.stem_files)
