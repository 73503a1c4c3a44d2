"""Tiny, offline Stable Diffusion pieces for the adapter tests: a 2-level UNet2DConditionModel with 32-wide
cross-attention (7 ``attn2`` layers, ~0.04 s per CPU forward) and AudioTokens sized to it. Everything seeded."""

from __future__ import annotations

import torch

CROSS_DIM = 32        # the tiny UNet's text width (SD v1.x: 768)
NUM_TOKENS = 3        # M (paper: 6)
CLAP_DIM = 16         # CLAP embedding width (paper: 512)
HIDDEN = 64           # MLP hidden width (paper: 2048)
TEXT_LEN = 5          # L text tokens (SD: 77)
BATCH = 2

# the release `_mlp.pt` sizes -> the tiny sizes, to scale the release's shapes down key by key
PAPER_TO_TINY = {6: NUM_TOKENS, 512: CLAP_DIM, 2048: HIDDEN, 768: CROSS_DIM}


def tiny_unet(seed: int = 0):
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    return UNet2DConditionModel(
        sample_size=16, block_out_channels=(32, 64), layers_per_block=1, cross_attention_dim=CROSS_DIM,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"), norm_num_groups=32)


def tiny_tokens(seed: int = 1):
    from macs_model.generation.tokens import AudioTokens

    torch.manual_seed(seed)
    return AudioTokens(num_tokens=NUM_TOKENS, clap_dim=CLAP_DIM, hidden=HIDDEN, token_dim=CROSS_DIM)


def randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def fixed_inputs(seed: int = 10, k: int = NUM_TOKENS) -> dict[str, torch.Tensor]:
    """Noisy latents, timesteps, text states, two different audio embeddings and a noise target."""
    return {"latents": randn(BATCH, 4, 16, 16, seed=seed),
            "timesteps": torch.tensor([10, 500]),
            "text": randn(BATCH, TEXT_LEN, CROSS_DIM, seed=seed + 1),
            "audio": randn(BATCH, k, CLAP_DIM, seed=seed + 2),
            "audio2": randn(BATCH, k, CLAP_DIM, seed=seed + 3),
            "noise": randn(BATCH, 4, 16, 16, seed=seed + 4)}


def cross_attention_layers(unet) -> dict[str, torch.nn.Module]:
    """name -> attn2 module, found independently of macs_model.generation.adapter."""
    return {name: module for name, module in unet.named_modules() if name.endswith(".attn2")}
