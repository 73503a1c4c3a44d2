"""Import of the authors' stage-2 files (<dataset>_mlp.pt + <dataset>_unet.pt) as a generator run folder."""

import json

import pytest
import torch

from macs_bench.errors import MacsError
from macs_model.adapter import install_adapter, is_adapter_key, read_adapter
from macs_model.stage2 import _run_info, import_release_generator
from macs_model.tokens import AudioTokens
from release_helpers import release_shapes


@pytest.fixture(scope="module")
def sd_unet():
    """SD v1.4's UNet on the meta device (no memory), with the paper's adapter installed."""
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        unet = UNet2DConditionModel(cross_attention_dim=768)
        install_adapter(unet, AudioTokens(), decoupled=True)
    return unet


def _adapter_shapes(unet):
    return {k: tuple(v.shape) for k, v in unet.state_dict().items() if is_adapter_key(k)}


def _release_files(tmp_path, unet):
    shapes, _ = release_shapes("_mlp.pt")
    gen = torch.Generator().manual_seed(0)
    mlp = {k: torch.randn(shape, generator=gen) for k, shape in shapes.items()}
    release_unet = {"conv_in.weight": torch.zeros(320, 4, 3, 3)}  # frozen SD weights ride along
    for name, shape in _adapter_shapes(unet).items():
        if ".to_k_ip." in name or ".to_v_ip." in name:
            release_unet[name.replace(".0.weight", ".weight")] = torch.randn(shape, generator=gen)
    torch.save(mlp, tmp_path / "LLP_mlp.pt")
    torch.save(release_unet, tmp_path / "LLP_unet.pt")
    (tmp_path / "separator_FSD50K_full.pt").write_bytes(b"stand-in: only hashed here")
    return mlp, release_unet


def test_release_generator_becomes_a_run_folder_that_fits_sd(tmp_path, sd_unet):
    mlp, release_unet = _release_files(tmp_path, sd_unet)
    out = import_release_generator(tmp_path / "LLP_mlp.pt", tmp_path / "LLP_unet.pt",
                                   tmp_path / "separator_FSD50K_full.pt", tmp_path / "run")
    state, config = read_adapter(out / "adapter")
    assert {k: tuple(v.shape) for k, v in state.items()} == _adapter_shapes(sd_unet)  # SD v1.4's adapter slots
    prefix = "encoder_hid_proj.image_projection_layers.0."
    assert torch.equal(state[prefix + "pe"], mlp["pe"])
    key = "down_blocks.0.attentions.0.transformer_blocks.0.attn2.processor.to_k_ip"
    assert torch.equal(state[key + ".0.weight"], release_unet[key + ".weight"])
    assert config["parameters"] == 21_799_168 and config["generator_config"]["num_tokens"] == 6
    info = _run_info(out)
    assert info["conditioning"]["separator"]["source"].endswith("separator_FSD50K_full.pt")
    assert json.loads((out / "config.json").read_text())["generator_config"]["base"] == "sd"


def test_release_generator_mismatches_are_refused(tmp_path, sd_unet):
    mlp, release_unet = _release_files(tmp_path, sd_unet)
    mlp.pop("adapter.4.bias")
    torch.save(mlp, tmp_path / "bad_mlp.pt")
    with pytest.raises(MacsError, match="not a release MLP state dict"):
        import_release_generator(tmp_path / "bad_mlp.pt", tmp_path / "LLP_unet.pt",
                                 tmp_path / "separator_FSD50K_full.pt", tmp_path / "run")
    torch.save({"conv_in.weight": torch.zeros(1)}, tmp_path / "plain_unet.pt")
    with pytest.raises(MacsError, match="no audio k/v"):
        import_release_generator(tmp_path / "LLP_mlp.pt", tmp_path / "plain_unet.pt",
                                 tmp_path / "separator_FSD50K_full.pt", tmp_path / "run")
    with pytest.raises(MacsError, match="absent.pt: release checkpoint not found"):
        import_release_generator(tmp_path / "absent.pt", tmp_path / "LLP_unet.pt",
                                 tmp_path / "separator_FSD50K_full.pt", tmp_path / "run")
    assert not (tmp_path / "run").exists()
