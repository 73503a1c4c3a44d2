"""Train the world's small Stable Diffusion base: the VAE, then the text encoder and UNet on cached latents.

Both losses weigh the motifs ten times: they cover about a tenth of a frame, and an even loss is content to
blur them into the grey ground (the VAE) or to draw bare ground whatever the prompt (the UNet: trained with an
even loss, the base drew a single prompted motif 4 times of 36, chance 3). Called by
:func:`macs_bench.world.train.train_world`; deterministic on one thread like the rest of the world.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from macs_bench.world.data import batches, chance_top_k_hits, hot_of, top_k_hits
from macs_bench.world.towers import Towers, image_tensor, normalise


MOTIF_WEIGHT = 10.0


def motif_weight(images: torch.Tensor, pool: int = 1) -> torch.Tensor:
    """[N, 1, H / pool, W / pool] loss weights: :data:`MOTIF_WEIGHT` where a frame ([0, 1]) is away from the grey
    ground (any pixel of the ``pool`` x ``pool`` cell, so a latent cell that holds part of a motif counts), 1 on
    the ground."""
    from macs_bench.world.motifs import GROUND

    ground = torch.tensor(GROUND, dtype=torch.float32).view(1, 3, 1, 1) / 255
    motif = ((images - ground).abs().amax(1, keepdim=True) > 0.05).float()
    return 1 + (MOTIF_WEIGHT - 1) * F.max_pool2d(motif, pool)


def train_vae(parts: dict, images: torch.Tensor, steps: int, log: Callable[[str], None] = print) -> float:
    """Reconstruction (MSE weighted by :func:`motif_weight`) + a small KL, images in [-1, 1]; sets SD's
    ``scaling_factor`` to 1 / latent std."""
    vae = parts["vae"]
    x_all = images * 2 - 1
    weight_all = motif_weight(images)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=2e-3, weight_decay=0.0)
    generator = torch.Generator().manual_seed(31)
    for step, idx in enumerate(batches(len(x_all), 32, steps, seed=30)):
        posterior = vae.encode(x_all[idx]).latent_dist
        z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=generator)
        error = (vae.decode(z).sample - x_all[idx]) ** 2 * weight_all[idx]
        loss = error.mean() + 1e-6 * posterior.kl().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 200 == 0:
            log(f"[sd] vae step {step} loss {loss.item():.4f}")
    vae.eval().requires_grad_(False)
    with torch.no_grad():
        mean = vae.encode(x_all[:512]).latent_dist.mean
    vae.register_to_config(scaling_factor=float(1.0 / mean.std()))
    return float(loss.detach())


def train_sd(parts: dict, train: dict, steps: int, log: Callable[[str], None] = print) -> float:
    """Text encoder + UNet on cached VAE latents: SD's noise-prediction loss weighted on the latent cells that
    hold a motif (:func:`motif_weight` pooled to the latent grid), 10 % empty prompts (for CFG and for stage 2,
    which trains its adapter under the empty prompt)."""
    from macs_bench.world.sd import prompt

    vae, unet, text_encoder, tok, schedule = (parts[k] for k in ("vae", "unet", "text_encoder", "tokenizer",
                                                                  "scheduler"))
    with torch.no_grad():
        posterior = vae.encode(train["images"] * 2 - 1).latent_dist
        mean, std = posterior.mean, posterior.std
    weight = motif_weight(train["images"], pool=train["images"].shape[-1] // mean.shape[-1])
    ids_all = tok([prompt(s) for s in train["sets"]] + [""], padding="max_length", max_length=tok.model_max_length,
                  truncation=True, return_tensors="pt").input_ids
    empty = ids_all[-1]
    params = [*unet.parameters(), *text_encoder.parameters()]
    optimizer = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-4)
    lr = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / 100) * 0.5 *
                                           (1 + np.cos(np.pi * min(1.0, s / steps))))
    generator = torch.Generator().manual_seed(41)
    unet.train()
    text_encoder.train()
    for step, idx in enumerate(batches(len(mean), 32, steps, seed=40)):
        latents = (mean[idx] + std[idx] * torch.randn(mean[idx].shape, generator=generator)) * \
            vae.config.scaling_factor
        drop = torch.rand(len(idx), generator=generator) < 0.1
        ids = torch.where(drop[:, None], empty[None], ids_all[idx])
        noise = torch.randn(latents.shape, generator=generator)
        t = torch.randint(0, schedule.config.num_train_timesteps, (len(idx),), generator=generator)
        pred = unet(schedule.add_noise(latents, noise, t), t, encoder_hidden_states=text_encoder(ids)[0]).sample
        loss = ((pred - noise) ** 2 * weight[idx]).mean()
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        lr.step()
        if step % 250 == 0:
            log(f"[sd] unet step {step} loss {loss.item():.4f}")
    unet.eval().requires_grad_(False)
    text_encoder.eval().requires_grad_(False)
    return float(loss.detach())


@torch.no_grad()
def evaluate_sd(parts: dict, towers: Towers, sets: Sequence[Sequence[str]], n: int = 150) -> dict[str, float]:
    """Draw with the stock pipeline (DPM-Solver, 20 steps, CFG 3) and ask the world judge whether the prompted
    motifs were drawn: each class alone three times (the judge's top-1 class is the prompted one; what
    ``tests/world/test_sd.py`` checks), and one image for each of the first ``n`` held-out label sets (the
    prompted classes are the top-K scored)."""
    from diffusers import DPMSolverMultistepScheduler

    from macs_bench.world.sd import pipeline, prompt
    from macs_bench.world.synthetic import CLASSES

    pipe = pipeline({**parts, "scheduler": DPMSolverMultistepScheduler.from_config(parts["scheduler"].config)})
    text = normalise(towers.text(list(CLASSES)))

    def draw(prompts: list[str], seed: int) -> torch.Tensor:
        images = pipe(prompts, num_inference_steps=20, guidance_scale=3.0, height=32, width=32,
                      generator=torch.Generator().manual_seed(seed), output_type="pil").images
        return normalise(towers.image(image_tensor(images))) @ text.T

    single = [[c] for c in CLASSES for _ in range(3)]
    right = int((draw([prompt(s) for s in single], 0).argmax(1) == hot_of(single).argmax(1)).sum())
    sets = list(sets)[:n]
    hot = hot_of(sets)
    return {"single_class_prompts": len(single), "single_class_top1_right": right,
            "chance_single_class_top1_right": len(single) / len(CLASSES),
            "samples": len(sets), "prompted_classes_top_k_hits": top_k_hits(draw([prompt(s) for s in sets], 50), hot),
            "chance_top_k_hits": chance_top_k_hits(hot), "inference_steps": 20, "guidance_scale": 3.0}
