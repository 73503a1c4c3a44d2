"""ImageBind's audio tower: the official checkpoint's audio keys and shapes, the forward pass and the front end
against an independent restatement of facebookresearch/ImageBind (53680b0) on the same inputs, and loading."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from macs_bench.errors import MacsError
from macs_model.encoders.imagebind_audio import (ImageBindAudio, ImageBindAudioConfig, clip_starts,
                                                 load_imagebind_audio, preprocess)


def official_audio_keys(num_blocks: int) -> set[str]:
    """The audio entries of ImageBindModel's state dict, read off imagebind_model.py: the AudioPreprocessor
    (cls_token, rgbt_stem = PatchEmbedGeneric(proj=Conv2d, norm_layer=LayerNorm), pos_embedding_helper), the
    SimpleTransformer trunk (pre_transformer_layer Identity + rearrange: no keys; BlockWithMasking with
    nn.MultiheadAttention(add_bias_kv=True), norm_1, norm_2, Mlp fc1/fc2), the head Sequential(LayerNorm,
    SelectElement, Linear(bias=False)) and the postprocessor Sequential(Normalize, LearnableLogitScaling(buffer))."""
    keys = {"modality_preprocessors.audio.cls_token",
            "modality_preprocessors.audio.rgbt_stem.proj.weight",
            "modality_preprocessors.audio.rgbt_stem.norm_layer.weight",
            "modality_preprocessors.audio.rgbt_stem.norm_layer.bias",
            "modality_preprocessors.audio.pos_embedding_helper.pos_embed",
            "modality_heads.audio.0.weight", "modality_heads.audio.0.bias", "modality_heads.audio.2.weight",
            "modality_postprocessors.audio.1.log_logit_scale"}
    for i in range(num_blocks):
        block = f"modality_trunks.audio.blocks.{i}."
        keys |= {block + k for k in ("attn.in_proj_weight", "attn.in_proj_bias", "attn.bias_k", "attn.bias_v",
                                     "attn.out_proj.weight", "attn.out_proj.bias", "norm_1.weight", "norm_1.bias",
                                     "norm_2.weight", "norm_2.bias", "mlp.fc1.weight", "mlp.fc1.bias",
                                     "mlp.fc2.weight", "mlp.fc2.bias")}
    return keys


def test_state_dict_keys_and_shapes_are_the_official_audio_tower():
    with torch.device("meta"):
        huge = ImageBindAudio(ImageBindAudioConfig.preset("huge"))
    state = huge.official_state_dict()
    assert set(state) == official_audio_keys(12)
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    assert shapes["modality_preprocessors.audio.rgbt_stem.proj.weight"] == (768, 1, 16, 16)
    assert shapes["modality_preprocessors.audio.pos_embedding_helper.pos_embed"] == (1, 1 + 12 * 19, 768)
    assert shapes["modality_preprocessors.audio.cls_token"] == (1, 1, 768)
    assert shapes["modality_trunks.audio.blocks.0.attn.in_proj_weight"] == (3 * 768, 768)
    assert shapes["modality_trunks.audio.blocks.11.attn.bias_k"] == (1, 1, 768)
    assert shapes["modality_trunks.audio.blocks.3.mlp.fc1.weight"] == (4 * 768, 768)
    assert shapes["modality_heads.audio.2.weight"] == (1024, 768)
    assert shapes["modality_postprocessors.audio.1.log_logit_scale"] == ()
    assert set(ImageBindAudio(ImageBindAudioConfig.preset("tiny")).official_state_dict()) == official_audio_keys(2)
    rates = [block.drop_path.p for block in huge.blocks]  # SimpleTransformer's progressive drop path
    assert rates == pytest.approx(torch.linspace(0, 0.1, 12).tolist())


def _reference_forward(state: dict[str, torch.Tensor], mel: torch.Tensor, heads: int) -> torch.Tensor:
    """ImageBind's audio path restated with plain tensor ops on the official names: [B, S, 1, M, T] -> [B, D]."""
    p = "modality_preprocessors.audio."
    b, s = mel.shape[:2]
    x = torch.nn.functional.conv2d(mel.reshape(b * s, *mel.shape[2:]), state[p + "rgbt_stem.proj.weight"],
                                   stride=10)
    x = x.flatten(2).transpose(1, 2)
    x = torch.nn.functional.layer_norm(x, x.shape[-1:], state[p + "rgbt_stem.norm_layer.weight"],
                                       state[p + "rgbt_stem.norm_layer.bias"], eps=1e-5)
    x = torch.cat([state[p + "cls_token"].expand(x.shape[0], -1, -1), x], 1)
    x = x + state[p + "pos_embedding_helper.pos_embed"]
    n, length, dim = x.shape
    hd = dim // heads
    blocks = sorted({int(k.split(".")[3]) for k in state if k.startswith("modality_trunks.audio.blocks.")})
    for i in blocks:
        w = {k.split(f"blocks.{i}.")[1]: v for k, v in state.items() if f"audio.blocks.{i}." in k}
        h = torch.nn.functional.layer_norm(x, (dim,), w["norm_1.weight"], w["norm_1.bias"], eps=1e-6)
        q, k, v = (h @ w["attn.in_proj_weight"].T + w["attn.in_proj_bias"]).split(dim, dim=-1)
        k = torch.cat([k, w["attn.bias_k"].reshape(1, 1, dim).expand(n, 1, dim)], 1)  # the extra key / value
        v = torch.cat([v, w["attn.bias_v"].reshape(1, 1, dim).expand(n, 1, dim)], 1)
        q, k, v = (t.reshape(n, -1, heads, hd).transpose(1, 2) for t in (q, k, v))
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd), dim=-1) @ v
        x = x + att.transpose(1, 2).reshape(n, length, dim) @ w["attn.out_proj.weight"].T + w["attn.out_proj.bias"]
        h = torch.nn.functional.layer_norm(x, (dim,), w["norm_2.weight"], w["norm_2.bias"], eps=1e-6)
        h = torch.nn.functional.gelu(h @ w["mlp.fc1.weight"].T + w["mlp.fc1.bias"])
        x = x + h @ w["mlp.fc2.weight"].T + w["mlp.fc2.bias"]
    x = torch.nn.functional.layer_norm(x, (dim,), state["modality_heads.audio.0.weight"],
                                       state["modality_heads.audio.0.bias"], eps=1e-6)[:, 0]
    x = x @ state["modality_heads.audio.2.weight"].T
    x = torch.nn.functional.normalize(x, dim=-1) * state["modality_postprocessors.audio.1.log_logit_scale"].exp()
    return x.reshape(b, s, -1).mean(1)


def _perturbed(model: ImageBindAudio, seed: int = 1) -> ImageBindAudio:
    """Every parameter moved off its initial value (non-zero biases, LayerNorm gains, bias_k/v)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    return model


def test_forward_matches_the_restated_reference_on_the_same_inputs():
    config = ImageBindAudioConfig.preset("tiny")
    model = _perturbed(ImageBindAudio(config)).eval().double()  # float64: an eps or scale slip shows
    mel = torch.randn(2, 3, 1, config.num_mel_bins, config.target_length, generator=torch.Generator().manual_seed(2),
                      dtype=torch.float64)
    with torch.no_grad():
        ours, ref = model(mel), _reference_forward(model.official_state_dict(), mel, config.num_heads)
        per_clip = model.encode_clips(mel[:, 0])
    assert ours.shape == (2, config.out_dim)
    torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(per_clip.norm(dim=-1), torch.full((2,), 20.0, dtype=torch.float64))  # unit x 20


def _reference_input(wave: np.ndarray, rate: int) -> torch.Tensor:
    """data.py's load_and_transform_audio_data on a mono waveform already at 16 kHz: the pinned pytorchvideo
    ConstantClipsPerVideoSampler(2, 3) loop, in-place mean removal on the clip views, Kaldi fbank, pad to 204,
    Normalize(-4.268, 9.138)."""
    import torchaudio.compliance.kaldi as kaldi

    waveform = torch.from_numpy(wave.copy())[None]
    duration, clip, n = waveform.size(1) / rate, Fraction(2), 3
    index, clips = 0, []
    while True:
        latest = Fraction(max(duration - clip, 0))
        step = Fraction(latest, max(n - 1, 1))
        start = step * index
        index += 1
        last = index >= n or step * index > latest
        piece = waveform[:, int(start * rate):int((start + clip) * rate)]
        piece -= piece.mean()
        fb = kaldi.fbank(piece, htk_compat=True, sample_frequency=rate, use_energy=False, window_type="hanning",
                         num_mel_bins=128, dither=0.0, frame_length=25, frame_shift=10).transpose(0, 1)
        p = 204 - fb.size(1)
        fb = torch.nn.functional.pad(fb, (0, p)) if p > 0 else fb[:, :204]
        clips.append((fb[None] - -4.268) / 9.138)
        if last:
            break
    return torch.stack(clips)


@pytest.mark.parametrize("seconds", [10.0, 4.3, 1.5])
def test_front_end_matches_imagebind_data_on_the_same_waveform(seconds):
    config = ImageBindAudioConfig.preset("tiny")
    rng = np.random.default_rng(3)
    wave = (0.1 * rng.standard_normal(int(seconds * 16000)) + 0.05).astype(np.float32)  # a DC offset too
    before = wave.copy()
    ours = preprocess(wave, 16000, config)
    assert np.array_equal(wave, before)  # the caller's waveform is never modified
    assert ours.shape == (3, 1, 128, 204)
    torch.testing.assert_close(ours, _reference_input(wave, 16000), rtol=0, atol=1e-5)


def test_clip_starts_are_evenly_spaced():
    config = ImageBindAudioConfig.preset("huge")
    assert clip_starts(10.0, config) == [0, 4, 8]
    assert clip_starts(1.0, config) == [0, 0, 0]


def test_a_different_rate_is_resampled_first():
    config = ImageBindAudioConfig.preset("tiny")
    wave = np.sin(np.linspace(0, 4000, 3 * 32000)).astype(np.float32)
    import torchaudio.functional as AF

    at_16k = AF.resample(torch.from_numpy(wave), 32000, 16000).numpy()
    torch.testing.assert_close(preprocess(wave, 32000, config), preprocess(at_16k, 16000, config))


def test_official_checkpoint_loads_audio_keys_only(tmp_path):
    config = ImageBindAudioConfig.preset("tiny")
    source = _perturbed(ImageBindAudio(config), seed=4)
    state = source.official_state_dict()
    state["modality_trunks.vision.blocks.0.attn.in_proj_weight"] = torch.zeros(3, 3)  # other towers: ignored
    path = tmp_path / "imagebind_huge.pth"
    torch.save(state, path)
    from macs_bench.io import sha256_file

    loaded = load_imagebind_audio(path, sha256=sha256_file(path), config=config)
    for key, value in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert loaded.source["sha256"] == sha256_file(path) and "NC" in loaded.source["licence"]
    with pytest.raises(MacsError, match="sha256 .* expected 00"):
        load_imagebind_audio(path, sha256="00" * 32, config=config)
    del state["modality_heads.audio.2.weight"]
    torch.save(state, path)
    with pytest.raises(MacsError, match="1 audio keys missing .e.g. modality_heads.audio.2.weight"):
        load_imagebind_audio(path, config=config)
    torch.save(source.official_state_dict(), path)
    with pytest.raises(MacsError, match="modality_heads.audio.2.weight has shape .32, 32., this config expects"):
        load_imagebind_audio(path, config=config.replace(out_dim=16))


def test_missing_checkpoint_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("MACS_HOME", str(tmp_path / "home"))
    with pytest.raises(MacsError) as err:
        load_imagebind_audio()
    message = str(err.value)
    assert "\n" not in message and "missing weights 'imagebind-huge'" in message
    assert "macs-bench weights fetch imagebind-huge" in message
    with pytest.raises(MacsError, match="no ImageBind checkpoint .*dl.fbaipublicfiles.com"):
        load_imagebind_audio(tmp_path / "nowhere.pth")
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(MacsError, match="bad.pth: unreadable checkpoint"):
        load_imagebind_audio(tmp_path / "bad.pth")
