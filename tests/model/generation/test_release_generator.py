"""Import of the authors' stage-2 files (<dataset>_mlp.pt + <dataset>_unet.pt) as a generator run folder."""

import json

import pytest
import torch
from release_helpers import release_shapes

from macs_bench.errors import MacsError
from macs_model.generation.adapter import DECOUPLED, install_adapter, is_adapter_key, read_adapter
from macs_model.generation.api import _run_info
from macs_model.generation.release_import import import_release_generator
from macs_model.generation.tokens import AudioTokens


@pytest.fixture(scope="module")
def sd_unet():
    """SD v1.4's UNet on the meta device (no memory), with the paper's adapter installed."""
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        unet = UNet2DConditionModel(cross_attention_dim=768)
        install_adapter(unet, AudioTokens(), DECOUPLED)
    return unet


def _adapter_shapes(unet):
    return {k: tuple(v.shape) for k, v in unet.state_dict().items() if is_adapter_key(k)}


def _sd_stand_in(unet):
    """SD v1.4's UNet weights as constant expanded views (no memory, tiny when saved): name -> tensor."""
    return {k: torch.full((), 0.01 * (i % 7)).expand(v.shape) for i, (k, v) in enumerate(unet.state_dict().items())
            if not is_adapter_key(k)}


@pytest.fixture
def sd_base(sd_unet, monkeypatch):
    """The pinned SD v1.4 the import compares against, replaced by the stand-in (the real one is 3.4 GB)."""
    import macs_model.generation.release_unet as release_unet

    base = _sd_stand_in(sd_unet)
    monkeypatch.setattr(release_unet, "base_unet_state", lambda where, tiny_seed=None: (base, "SD v1.4 stand-in"))
    return base


def _release_files(tmp_path, unet, base, unet_changes=None):
    shapes, _ = release_shapes("_mlp.pt")
    gen = torch.Generator().manual_seed(0)
    mlp = {k: torch.randn(shape, generator=gen) for k, shape in shapes.items()}
    release_unet = dict(base)  # the frozen SD weights ride along, the whole UNet as the release saves it
    for name, shape in _adapter_shapes(unet).items():
        if ".to_k_ip." in name or ".to_v_ip." in name:
            release_unet[name.replace(".0.weight", ".weight")] = torch.randn(shape, generator=gen)
    release_unet.update(unet_changes or {})
    release_unet = {k: v for k, v in release_unet.items() if v is not None}
    torch.save(mlp, tmp_path / "LLP_mlp.pt")
    torch.save(release_unet, tmp_path / "LLP_unet.pt")
    (tmp_path / "separator_FSD50K_full.pt").write_bytes(b"stand-in: only hashed here")
    return mlp, release_unet


def _import(tmp_path, mlp="LLP_mlp.pt", unet="LLP_unet.pt"):
    return import_release_generator(tmp_path / mlp, tmp_path / unet, tmp_path / "separator_FSD50K_full.pt",
                                    tmp_path / "run")


def test_release_generator_becomes_a_run_folder_that_fits_sd(tmp_path, sd_unet, sd_base):
    mlp, release_unet = _release_files(tmp_path, sd_unet, sd_base)
    assert (tmp_path / "LLP_unet.pt").stat().st_size < 200_000_000
    out = _import(tmp_path)
    state, config = read_adapter(out / "adapter")
    assert {k: tuple(v.shape) for k, v in state.items()} == _adapter_shapes(sd_unet)  # SD v1.4's adapter slots
    prefix = "encoder_hid_proj.image_projection_layers.0."
    assert torch.equal(state[prefix + "pe"], mlp["pe"])
    key = "down_blocks.0.attentions.0.transformer_blocks.0.attn2.processor.to_k_ip"
    assert torch.equal(state[key + ".0.weight"], release_unet[key + ".weight"])
    assert config["parameters"] == 21_799_168 and config["generator_config"]["num_tokens"] == 6
    check = config["imported"]["base_check"]
    assert check["base"] == "SD v1.4 stand-in" and check["audio_kv_keys"] == 32
    assert check["frozen_keys"] == len(sd_base) and check["sampled_tensors_equal"] >= 32
    info, _ = _run_info(out)
    assert info["conditioning"]["separator"]["source"].endswith("separator_FSD50K_full.pt")
    assert json.loads((out / "config.json").read_text())["generator_config"]["base"] == "sd"


@pytest.mark.parametrize("change, message", [
    ({"conv_in.weight": torch.ones(()).expand(320, 4, 3, 3)},
     r"LLP_unet.pt: its frozen UNet weights are not SD v1.4 stand-in's \(1 of \d+ sampled tensors differ, "
     r"e.g. conv_in.weight\); the adapter was trained on another base"),
    ({"extra_head.weight": torch.zeros(2)},
     r"LLP_unet.pt: 1 key\(s\) map to nothing in SD v1.4 stand-in's UNet or the audio adapter "
     r"\(e.g. extra_head.weight\); refusing rather than dropping them"),
    ({"down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_k_ip.weight": torch.zeros(320, 768)},
     r"map to nothing .*attn1.processor.to_k_ip.weight"),
    ({"conv_out.bias": None}, r"lacks 1 of SD v1.4 stand-in's UNet weights \(e.g. conv_out.bias\)"),
    ({"up_blocks.1.attentions.0.transformer_blocks.0.attn2.processor.to_v_ip.weight": None},
     r"1 of the base's 16 cross-attention layers have no audio k/v"),
    ({"conv_in.weight": torch.zeros(320, 4, 5, 5)}, r"another shape than SD v1.4 stand-in's: conv_in.weight"),
])
def test_release_unet_that_is_not_sd_v14_plus_audio_kv_is_refused(tmp_path, sd_unet, sd_base, change, message):
    _release_files(tmp_path, sd_unet, sd_base, change)
    with pytest.raises(MacsError, match=message) as err:
        _import(tmp_path)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "run").exists()


def test_release_generator_mismatches_are_refused(tmp_path, sd_unet, sd_base):
    mlp, release_unet = _release_files(tmp_path, sd_unet, sd_base)
    mlp.pop("adapter.4.bias")
    torch.save(mlp, tmp_path / "bad_mlp.pt")
    with pytest.raises(MacsError, match="not a release MLP state dict"):
        _import(tmp_path, mlp="bad_mlp.pt")
    torch.save({k: v for k, v in release_unet.items() if "_ip." not in k}, tmp_path / "plain_unet.pt")
    with pytest.raises(MacsError, match="no audio k/v"):
        _import(tmp_path, unet="plain_unet.pt")
    with pytest.raises(MacsError, match="absent.pt: release checkpoint not found"):
        _import(tmp_path, mlp="absent.pt")
    assert not (tmp_path / "run").exists()
