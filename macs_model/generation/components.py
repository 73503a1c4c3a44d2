"""The frozen Stable Diffusion stage 2 builds on: the SD v1.4 weights or a tiny random stand-in.

``tiny_components`` builds a small random SD (UNet, VAE, CLIP text encoder, tokenizer) from configs for tests and
the ``tiny`` preset; the ``paper`` preset loads SD v1.4 from ``macs-bench weights`` or a given path / hub id.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from macs_bench.errors import MacsError
from macs_model.generation.adapter import install_adapter
from macs_model.generation.config import GeneratorConfig
from macs_model.generation.tokens import AudioTokens

SD_WEIGHTS = "stable-diffusion-v1-4"


@dataclass
class Components:
    """A frozen Stable Diffusion and where it came from."""

    vae: Any
    text_encoder: Any
    tokenizer: Any
    unet: Any
    scheduler: Any
    source: dict[str, Any]


def _write_clip_tokenizer(folder: Path) -> None:
    """A character-level CLIP BPE vocabulary (every lower-case ASCII word tokenizes), for the tiny text encoder."""
    symbols = ["<|startoftext|>", "<|endoftext|>"]
    for b in range(33, 127):
        symbols += [chr(b), chr(b) + "</w>"]
    (folder / "vocab.json").write_text(json.dumps({s: i for i, s in enumerate(symbols)}), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")


def tiny_components(seed: int = 0, cross_attention_dim: int = 32) -> Components:
    """A small random SD from configs (offline, CPU-fast): latents 4 x H/2 x W/2, text width 32."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=16, block_out_channels=(32, 64), layers_per_block=1, cross_attention_dim=cross_attention_dim,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"), norm_num_groups=32)
    vae = AutoencoderKL(block_out_channels=(32, 64), down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=32)
    with tempfile.TemporaryDirectory() as tmp:
        _write_clip_tokenizer(Path(tmp))
        tokenizer = CLIPTokenizer(str(Path(tmp) / "vocab.json"), str(Path(tmp) / "merges.txt"), model_max_length=77)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=cross_attention_dim, intermediate_size=64, num_attention_heads=4,
        num_hidden_layers=2, max_position_embeddings=77, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                              beta_schedule="scaled_linear", steps_offset=1)
    return Components(vae, text_encoder, tokenizer, unet, scheduler,
                      {"base": "tiny", "note": "random small SD built from configs (not Stable Diffusion)",
                       "seed": seed})


def load_components(config: GeneratorConfig, base: str | os.PathLike | None = None) -> Components:
    """The frozen base the config names: SD v1.x from ``base`` (local folder or hub id) or the verified registry
    snapshot of SD v1.4; or the tiny random one."""
    if config.base == "tiny":
        return tiny_components(config.seed)
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    from macs_bench import weights

    if base is None:
        where, source = weights.path(SD_WEIGHTS), {"weights": SD_WEIGHTS, "repo": weights.WEIGHTS[SD_WEIGHTS].repo_id,
                                                   "revision": weights.WEIGHTS[SD_WEIGHTS].revision}
    else:
        where, source = str(base), {"base": str(base)}
    try:
        parts = Components(
            AutoencoderKL.from_pretrained(where, subfolder="vae"),
            CLIPTextModel.from_pretrained(where, subfolder="text_encoder"),
            CLIPTokenizer.from_pretrained(where, subfolder="tokenizer"),
            UNet2DConditionModel.from_pretrained(where, subfolder="unet"),
            DDPMScheduler.from_pretrained(where, subfolder="scheduler"),
            {**source, "path": str(where)})
    except (OSError, ValueError) as exc:
        raise MacsError(f"{where}: cannot load Stable Diffusion ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc
    return parts


def build_adapter(components: Components, config: GeneratorConfig) -> tuple[torch.nn.Module, AudioTokens]:
    """Install fresh audio tokens (+ decoupled k/v) on the components' UNet; returns (trainable module, tokens)."""
    tokens = AudioTokens(config.num_tokens, config.clap_dim, token_dim=components.unet.config.cross_attention_dim)
    components.vae.requires_grad_(False)
    components.text_encoder.requires_grad_(False)
    trainable = install_adapter(components.unet, tokens, config.audio_variant)
    return trainable, tokens


@torch.no_grad()
def encode_prompt(components: Components, prompt: str, device: torch.device) -> torch.Tensor:
    """[1, L, D] text-encoder states of ``prompt`` (the empty prompt by default), as SD computes them."""
    tok = components.tokenizer
    ids = tok([prompt], padding="max_length", max_length=tok.model_max_length, truncation=True,
              return_tensors="pt").input_ids.to(device)
    return components.text_encoder(ids)[0]


