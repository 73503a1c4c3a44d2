"""A state dict with the release checkpoints' key names and shapes (tests/model/data/release-checkpoint-keys.txt,
copied from the project notes, which list the authors' files key by key)."""

from __future__ import annotations

import re
from pathlib import Path

import torch

KEY_FILE = Path(__file__).resolve().parent / "data" / "release-checkpoint-keys.txt"


def release_shapes(section: str = "separator_FSD50K_full.pt") -> tuple[dict, dict]:
    """({key: shape}, {key: dtype}) of one section of the key list."""
    shapes, dtypes, inside = {}, {}, False
    for line in KEY_FILE.read_text(encoding="utf-8").splitlines():
        if line.startswith("# release"):
            inside = section in line
            continue
        match = re.fullmatch(r"(\S+) \[([\d, ]*)\] (\w+).*", line.strip())
        if inside and match:
            shapes[match[1]] = tuple(int(d) for d in match[2].split(",") if d.strip())
            dtypes[match[1]] = getattr(torch, match[3])
    assert shapes, f"no keys for {section} in {KEY_FILE}"
    return shapes, dtypes


def release_state_dict(seed: int = 2) -> dict[str, torch.Tensor]:
    """Random tensors under every non-CLAP key of separator_FSD50K_full.pt."""
    shapes, dtypes = release_shapes()
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        if dtypes[key] == torch.int64:
            state[key] = torch.randint(0, 1000, shape, generator=gen)
        else:
            state[key] = torch.rand(shape, generator=gen) + 0.5
    return state


def write_tiny_release(folder: Path, name: str = "LLP", seed: int = 3) -> Path:
    """Release-shaped miniatures in ``folder``: ``separator_FSD50K_full.pt`` (the release's key layout at the tiny
    separator preset, its STFT windows and resampling kernel, a stand-in CLAP under both prefixes),
    ``<name>_mlp.pt`` (the release MLP's keys, TinyClap width 32 in, the tiny SD's width 32 out) and
    ``<name>_unet.pt`` (the whole tiny random SD UNet, as the tiny preset builds it, plus the audio k/v of each
    attn2 layer)."""
    import math

    import torchaudio

    from macs_model.generation.components import tiny_components
    from macs_model.generation.config import GeneratorConfig
    from macs_model.generation.tokens import AudioTokens
    from macs_model.separation.config import SeparatorConfig
    from macs_model.separation.separator import StftMaskSeparator

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    config = SeparatorConfig.preset("tiny")
    separator = {"model.unet." + k: v for k, v in StftMaskSeparator(config).unet.state_dict().items()}
    separator.update({"unperm": torch.zeros(63, 2, 6), "model.tau2": torch.tensor(math.log(1 / 0.07)),
                      "model.stft.window": torch.hann_window(config.n_fft),
                      "model.istft.window": torch.hann_window(config.n_fft),
                      "model.resample.kernel": torchaudio.transforms.Resample(16000, 48000).kernel.clone()})
    for prefix in ("clap.model.", "model.clap.model."):
        separator[prefix + "audio_projection.0.weight"] = torch.ones(2, 2)
    torch.save(separator, folder / "separator_FSD50K_full.pt")
    mlp = AudioTokens(6, 32, token_dim=32)
    with torch.no_grad():
        mlp.pe.normal_(0, 0.5)
    torch.save(mlp.state_dict(), folder / f"{name}_mlp.pt")
    unet = tiny_components(GeneratorConfig.preset("tiny").seed).unet.state_dict()
    gen = torch.Generator().manual_seed(seed)
    for key in [k for k in unet if k.endswith("attn2.to_k.weight")]:
        layer = key[: -len(".to_k.weight")]
        for kind in ("to_k_ip", "to_v_ip"):
            unet[f"{layer}.processor.{kind}.weight"] = 0.2 * torch.randn(unet[key].shape, generator=gen)
    torch.save(unet, folder / f"{name}_unet.pt")
    return folder
