"""The world's Stable Diffusion base, built from diffusers' and transformers' own classes.

32 x 32 RGB images, a 3-level ``AutoencoderKL`` to 4 x 8 x 8 latents, a ``CLIPTokenizer`` (characters, each
class name one token) and a 2-layer ``CLIPTextModel`` (width 64), a 2-level ``UNet2DConditionModel`` with
cross-attention, SD's DDPM schedule. Saved with ``StableDiffusionPipeline.save_pretrained``, so the stock
pipeline (and stage 2's ``load_components``) opens the folder like any SD v1.x snapshot.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch

SIZE = 32
TEXT_WIDTH = 64
MAX_TOKENS = 32


def prompt(labels: Sequence[str]) -> str:
    """The base's prompt for a set of classes: lower-case class names joined by commas ("hum, rain")."""
    return ", ".join(label.lower() for label in labels)


def _word_merges(words) -> list[tuple[str, str]]:
    """BPE merges that build each word into one token, left to right (``h u`` -> ``hu``, ``hu m</w>``...)."""
    merges: list[tuple[str, str]] = []
    for word in words:
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        token = pieces[0]
        for piece in pieces[1:]:
            if (token, piece) not in merges:
                merges.append((token, piece))
            token += piece
    return merges


def tokenizer():
    """A CLIP BPE tokenizer over printable ASCII characters whose merges make each class name one token (so
    the small text encoder need not learn to spell), ``model_max_length`` 32."""
    from transformers import CLIPTokenizer

    from macs_bench.world.sounds import CLASSES

    symbols = ["<|startoftext|>", "<|endoftext|>"]
    for b in range(33, 127):
        symbols += [chr(b), chr(b) + "</w>"]
    merges = _word_merges([c.lower() for c in CLASSES])
    symbols += [a + b for a, b in merges]
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "vocab.json").write_text(json.dumps({s: i for i, s in enumerate(symbols)}), encoding="utf-8")
        (Path(tmp) / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges),
                                              encoding="utf-8")
        return CLIPTokenizer(str(Path(tmp) / "vocab.json"), str(Path(tmp) / "merges.txt"),
                             model_max_length=MAX_TOKENS)


def build(seed: int = 0) -> dict:
    """Fresh components (seeded): vae, text_encoder, tokenizer, unet, scheduler."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    tok = tokenizer()
    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 3,
                        up_block_types=("UpDecoderBlock2D",) * 3, block_out_channels=(16, 32, 32),
                        layers_per_block=1, latent_channels=4, norm_num_groups=8, sample_size=SIZE)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tok), hidden_size=TEXT_WIDTH, intermediate_size=128, num_attention_heads=4,
        num_hidden_layers=2, max_position_embeddings=MAX_TOKENS, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id))
    unet = UNet2DConditionModel(
        sample_size=SIZE // 4, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D",) * 2, up_block_types=("CrossAttnUpBlock2D",) * 2,
        cross_attention_dim=TEXT_WIDTH, attention_head_dim=8, norm_num_groups=16)
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                              beta_schedule="scaled_linear", steps_offset=1, clip_sample=False)
    return {"vae": vae, "text_encoder": text_encoder, "tokenizer": tok, "unet": unet, "scheduler": scheduler}


def pipeline(parts: dict):
    """The stock ``StableDiffusionPipeline`` over the parts (no safety checker), on CPU."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline(**parts, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def save(parts: dict, folder: Path) -> list[str]:
    """``save_pretrained`` (safetensors); returns every file written (weights, configs with the VAE's scaling
    factor, tokenizer), relative to ``folder``'s parent."""
    pipeline(parts).save_pretrained(str(folder), safe_serialization=True)
    return sorted(p.relative_to(folder.parent).as_posix() for p in folder.rglob("*") if p.is_file())
