"""The text-to-image half every prompt- and token-based baseline shares: a frozen Stable Diffusion drawing from
prompts or from text-encoder states, each image's noise seeded by its item's own seed."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch

from macs_bench.device import resolve_device


class PromptDrawer:
    """SD v1.x (``preset`` "paper": the registry's SD v1.4 or ``base``; "world": the world's base, given as
    ``base``; "tiny": random, tests only) with the preset's size, sampler steps and guidance."""

    def __init__(self, preset: str = "paper", base: str | os.PathLike | None = None, device: str = "auto",
                 steps: int | None = None, guidance_scale: float | None = None):
        from macs_model.generation.components import load_components
        from macs_model.generation.config import GeneratorConfig

        changes = {k: v for k, v in (("inference_steps", steps), ("guidance_scale", guidance_scale)) if v is not None}
        self.config = GeneratorConfig.preset(preset, **changes)
        self.device = resolve_device(device)
        self.components = load_components(self.config, base)
        for part in (self.components.vae, self.components.text_encoder, self.components.unet):
            part.requires_grad_(False).eval()

    @property
    def source(self) -> dict[str, Any]:
        return {**self.components.source, "sampler": "DPMSolverMultistep", "steps": self.config.inference_steps,
                "guidance_scale": self.config.guidance_scale, "size": [self.config.height, self.config.width]}

    @torch.no_grad()
    def text_states(self, prompts: Sequence[str], inject=None) -> torch.Tensor:
        """[N, L, D] text-encoder states; ``inject(ids, embeddings)`` may rewrite the input token embeddings
        (pseudo-tokens) before the transformer."""
        tok, encoder = self.components.tokenizer, self.components.text_encoder
        ids = tok(list(prompts), padding="max_length", max_length=tok.model_max_length, truncation=True,
                  return_tensors="pt").input_ids.to(self.device)
        if inject is None:
            return encoder(ids)[0]
        layer = encoder.get_input_embeddings()
        handle = layer.register_forward_hook(lambda module, args, output: inject(args[0], output))
        try:
            return encoder(ids)[0]
        finally:
            handle.remove()

    @torch.no_grad()
    def draw(self, states: torch.Tensor, seeds: Sequence[int]) -> list[Any]:
        """PIL images from text states [N, L, D], item i's noise from ``seeds[i]``."""
        from macs_model.generation.pipeline import pipeline

        pipe = pipeline(self.components).to(self.device)
        pipe.set_progress_bar_config(disable=True)
        config = self.config
        latents = torch.stack([torch.randn(pipe.unet.config.in_channels, config.height // pipe.vae_scale_factor,
                                           config.width // pipe.vae_scale_factor,
                                           generator=torch.Generator().manual_seed(int(s))) for s in seeds])
        negative = self.text_states([""]).expand(len(seeds), -1, -1)
        return pipe(prompt_embeds=states.to(self.device), negative_prompt_embeds=negative,
                    num_inference_steps=config.inference_steps, guidance_scale=config.guidance_scale,
                    height=config.height, width=config.width, latents=latents.to(self.device),
                    output_type="pil").images
