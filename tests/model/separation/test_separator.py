import json
import math
import re
import time

import pytest
import torch
from release_helpers import release_shapes, release_state_dict

from macs_bench.errors import MacsError
from macs_model.separation.config import PRESETS, SeparatorConfig
from macs_model.separation.separator import StftMaskSeparator, WaveformSeparator, build_separator, load_release_unet

KINDS = {"stft-unet": "tiny", "waveform": "tiny-waveform"}
ODD_SECONDS = 1.37


def _model(kind, **overrides):
    torch.manual_seed(0)
    return build_separator(SeparatorConfig.preset(KINDS[kind], **overrides))


def _mixture(batch, seconds, sample_rate=16000):
    torch.manual_seed(1)
    return 0.3 * torch.randn(batch, round(seconds * sample_rate))


def _release_shapes():
    shapes, dtypes = release_shapes()
    assert len(shapes) > 200, "key file parsed to too few keys"
    return shapes, dtypes


def _release_state_dict():
    """Random tensors under every release key, plus CLAP keys the loader must skip."""
    state = release_state_dict()
    state["clap.model.audio_branch.weight"] = torch.zeros(3)
    state["model.clap.model.text_branch.weight"] = torch.zeros(3)
    return state


@pytest.fixture(scope="module")
def paper_model():
    torch.manual_seed(0)
    return StftMaskSeparator(SeparatorConfig.preset("paper"))


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("sources", [2, 6])
def test_outputs_sum_to_mixture_for_odd_lengths(kind, sources):
    model = _model(kind, num_sources=sources)
    mixture = _mixture(2, ODD_SECONDS)
    out, masks = model.separate_with_masks(mixture)
    assert out.shape == (2, sources, mixture.shape[-1])
    assert (out.sum(dim=1) - mixture).abs().max() < 1e-4
    assert masks.shape[:2] == (2, sources)
    assert masks.min() >= 0 and masks.max() <= 1
    assert out.std(dim=1).mean() > 0, "sources are all identical: the masks did nothing"


@pytest.mark.parametrize("samples", [201, 3333, 16001])
def test_stft_any_length(samples):
    model = _model("stft-unet")
    mixture = _mixture(1, samples / 16000)
    out = model(mixture)
    assert out.shape == (1, 6, samples)
    assert (out.sum(dim=1) - mixture).abs().max() < 1e-4


def test_stft_masks_shape_follows_stft():
    cfg = SeparatorConfig.preset("tiny")
    mixture = _mixture(1, ODD_SECONDS)
    _, masks = _model("stft-unet").separate_with_masks(mixture)
    assert masks.shape == (1, 6, cfg.n_freq, mixture.shape[-1] // cfg.hop + 1)


def test_stft_one_hot_masks_give_mixture_and_silence():
    """Mask 1 on source 0 and 0 on source 1: the STFT -> iSTFT round trip must put the whole mixture in source 0."""
    model = _model("stft-unet", num_sources=2)
    model.unet.forward = lambda spec: torch.cat([torch.ones_like(spec), torch.zeros_like(spec)], dim=1)
    mixture = _mixture(2, ODD_SECONDS)
    out = model(mixture)
    assert (out[:, 0] - mixture).abs().max() < 1e-4
    assert out[:, 1].abs().max() < 1e-4


@pytest.mark.parametrize("spectrogram", ["power", "magnitude"])
def test_unet_input_is_the_configured_spectrogram(spectrogram):
    model = _model("stft-unet", spectrogram=spectrogram)
    seen = {}
    model.unet.register_forward_pre_hook(lambda module, args: seen.setdefault("x", args[0]))
    mixture = _mixture(1, 0.5)
    model(mixture)
    cfg = model.config
    stft = torch.stft(mixture, cfg.n_fft, cfg.hop, window=torch.hann_window(cfg.n_fft), return_complex=True)
    expected = stft.abs() ** (2 if spectrogram == "power" else 1)
    torch.testing.assert_close(seen["x"], expected.unsqueeze(1), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_gradients_reach_every_parameter(kind):
    model = _model(kind).train()
    out = model(_mixture(2, ODD_SECONDS))
    weights = torch.linspace(-1, 1, out.shape[1])[None, :, None]
    (out * weights).pow(2).mean().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, f"no gradient for {name}"
        assert torch.isfinite(param.grad).all(), f"non-finite gradient for {name}"
        assert param.grad.abs().sum() > 0, f"zero gradient for {name}"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_tiny_forward_backward_is_fast(kind):
    model = _model(kind).train()
    mixture = _mixture(2, 2.0)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        model(mixture)[:, 0].pow(2).mean().backward()
        times.append(time.perf_counter() - start)
    assert min(times) < 1.0, f"tiny {kind} forward+backward took {min(times):.2f} s"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_eval_is_deterministic_and_train_uses_dropout(kind):
    model = _model(kind)
    mixture = _mixture(2, ODD_SECONDS)
    model.train()
    torch.manual_seed(3)
    first = model(mixture)
    torch.manual_seed(4)
    second = model(mixture)
    assert not torch.allclose(first, second), "train mode: dropout had no effect"
    model.eval()
    with torch.no_grad():
        a, b = model(mixture), model(mixture)
    torch.testing.assert_close(a, b)
    assert (a.sum(dim=1) - mixture).abs().max() < 1e-4


def test_paper_parameter_count(paper_model):
    count = sum(p.numel() for p in paper_model.parameters())
    assert 57_000_000 < count < 59_000_000
    assert paper_model.config.unet_widths == (64, 128, 256, 512, 512)
    assert "window" not in paper_model.state_dict()


def test_paper_parameter_count_matches_release(paper_model):
    shapes, _ = _release_shapes()
    release = sum(math.prod(s) for k, s in shapes.items()
                  if k.startswith("model.unet.") and not re.search(r"running_|num_batches_tracked", k))
    assert sum(p.numel() for p in paper_model.parameters()) == release


def test_release_weights_load_where_expected(paper_model):
    state = _release_state_dict()
    load_release_unet(paper_model, state)
    ours = paper_model.state_dict()
    release_unet = {k: v for k, v in state.items() if k.startswith("model.unet.")}
    assert len(release_unet) == len(ours)
    for key, value in release_unet.items():
        assert torch.equal(ours[key[len("model."):]], value), key
    embed = paper_model.unet.in_conv[1]
    assert torch.equal(embed.col_embed, state["model.unet.in_conv.1.col_embed"])
    assert torch.equal(paper_model.unet.out_conv[6].weight, state["model.unet.out_conv.6.weight"])
    assert torch.equal(paper_model.unet.unet.submodule.submodule.submodule.submodule.submodule.fc[2].bias,
                       state["model.unet.unet.submodule.submodule.submodule.submodule.submodule.fc.2.bias"])


@pytest.mark.parametrize("tamper, expected", [
    ("shape", r"model\.unet\.out_conv\.6\.weight has shape \[5, 64, 1, 1\], the model needs \[6, 64, 1, 1\]"),
    ("missing", r"missing model\.unet\.unet\.upconv\.weight"),
    ("unexpected", r"unexpected model\.unet\.extra\.weight"),
])
def test_release_mismatch_is_refused_whole(paper_model, tamper, expected):
    state = _release_state_dict()
    if tamper == "shape":
        state["model.unet.out_conv.6.weight"] = torch.zeros(5, 64, 1, 1)
    elif tamper == "missing":
        del state["model.unet.unet.upconv.weight"]
    else:
        state["model.unet.extra.weight"] = torch.zeros(1)
    before = paper_model.unet.in_conv[0].weight.detach().clone()
    with pytest.raises(MacsError, match=expected) as err:
        load_release_unet(paper_model, state)
    assert "\n" not in str(err.value)
    assert torch.equal(paper_model.unet.in_conv[0].weight, before), "a refused load changed weights"


def test_release_for_other_source_count_is_refused():
    state = _release_state_dict()
    model = StftMaskSeparator(SeparatorConfig.preset("paper", num_sources=2, base_width=8))
    with pytest.raises(MacsError, match=r"do not fit this model \(\d+ problems\).*; and \d+ more$"):
        load_release_unet(model, state)


def test_release_into_waveform_model_is_refused():
    with pytest.raises(MacsError, match="StftMaskSeparator"):
        load_release_unet(_model("waveform"), {})


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_config_round_trips_through_json(name):
    cfg = SeparatorConfig.preset(name)
    assert SeparatorConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_presets_have_the_paper_settings():
    paper = SeparatorConfig.preset("paper")
    assert (paper.sample_rate, paper.clip_seconds, paper.n_fft, paper.hop) == (16000, 8.0, 400, 200)
    assert (paper.num_sources, paper.levels, paper.kind, paper.spectrogram) == (6, 5, "stft-unet", "power")
    assert (paper.n_freq, paper.clip_frames) == (201, 641)
    assert SeparatorConfig.preset("paper-waveform").kind == "waveform"


def test_unknown_preset_is_a_clear_error():
    with pytest.raises(MacsError, match=r"unknown separator preset 'papr' \(known: .*paper"):
        SeparatorConfig.preset("papr")


@pytest.mark.parametrize("change, expected", [
    ({"kind": "rnn"}, "unknown kind 'rnn'"),
    ({"spectrogram": "log"}, "unknown spectrogram 'log'"),
    ({"hop": 500}, "hop 500 is longer than n_fft 400"),
    ({"levels": 0}, "levels must be a positive integer"),
    ({"dropout": 1.0}, "dropout must be in"),
    ({"wave_kernel": 15}, "wave_kernel must be even"),
    ({"depth": 3}, r"unknown field\(s\) depth"),
])
def test_bad_config_is_a_clear_error(change, expected):
    with pytest.raises(MacsError, match=expected):
        SeparatorConfig.preset("paper", **change)


def test_from_dict_rejects_unknown_and_missing_fields():
    data = SeparatorConfig().to_dict()
    del data["hop"]
    data["width"] = 3
    with pytest.raises(MacsError, match=r"unknown field\(s\) width; missing field\(s\) hop"):
        SeparatorConfig.from_dict(data)


def test_build_separator_picks_the_kind():
    assert isinstance(build_separator(SeparatorConfig.preset("tiny")), StftMaskSeparator)
    assert isinstance(build_separator(SeparatorConfig.preset("tiny-waveform")), WaveformSeparator)
    with pytest.raises(MacsError, match="kind 'waveform'"):
        WaveformSeparator(SeparatorConfig.preset("tiny"))


@pytest.mark.parametrize("bad, expected", [
    (torch.zeros(16000), r"\[batch, samples\], got \(16000,\)"),
    (torch.zeros(1, 1, 16000), r"\[batch, samples\], got \(1, 1, 16000\)"),
    (torch.zeros(1, 16000, dtype=torch.int16), r"float tensor \[batch, samples\], got \(1, 16000\) torch.int16"),
    (torch.zeros(1, 100), r"100 samples; at least 129"),
])
def test_bad_input_is_a_clear_error(bad, expected):
    with pytest.raises(MacsError, match=expected):
        _model("stft-unet")(bad)
