"""Train the world's small Stable Diffusion base: the VAE, then the text encoder and UNet on cached latents.

Called by :func:`macs_bench.world.train.train_world`; deterministic on one thread like the rest of the world.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from macs_bench.world.data import batches, chance_top_k_hits, hot_of, top_k_hits
from macs_bench.world.towers import Towers, image_tensor, normalise


def train_vae(parts: dict, images: torch.Tensor, steps: int, log: Callable[[str], None] = print) -> float:
    """Reconstruction + a small KL, images in [-1, 1]; sets SD's ``scaling_factor`` to 1 / latent std.

    The reconstruction is an MSE weighted ten times on motif pixels (those away from the grey ground): the
    motifs cover a small part of each frame, and a plain MSE is content to blur them into the ground."""
    from macs_bench.world.motifs import GROUND

    vae = parts["vae"]
    x_all = images * 2 - 1
    ground = torch.tensor(GROUND, dtype=torch.float32).view(1, 3, 1, 1) / 127.5 - 1
    weight_all = 1 + 9 * ((x_all - ground).abs().amax(1, keepdim=True) > 0.1).float()
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
    """Text encoder + UNet on cached VAE latents: SD's noise-prediction loss, 10 % empty prompts (for CFG and
    for stage 2, which trains its adapter under the empty prompt)."""
    from macs_bench.world.sd import prompt

    vae, unet, text_encoder, tok, schedule = (parts[k] for k in ("vae", "unet", "text_encoder", "tokenizer",
                                                                  "scheduler"))
    with torch.no_grad():
        posterior = vae.encode(train["images"] * 2 - 1).latent_dist
        mean, std = posterior.mean, posterior.std
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
        loss = F.mse_loss(pred, noise)
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
    """Draw one image for each of the first ``n`` held-out label sets (stock pipeline, DPM-Solver, 20 steps,
    CFG 3) and check with the world judge that the prompted motifs are the top-scored classes."""
    from diffusers import DPMSolverMultistepScheduler

    from macs_bench.world.sd import pipeline, prompt
    from macs_bench.world.synthetic import CLASSES

    pipe = pipeline({**parts, "scheduler": DPMSolverMultistepScheduler.from_config(parts["scheduler"].config)})
    sets = list(sets)[:n]
    generator = torch.Generator().manual_seed(50)
    images = pipe([prompt(s) for s in sets], num_inference_steps=20, guidance_scale=3.0, height=32, width=32,
                  generator=generator, output_type="pil").images
    hot = hot_of(sets)
    scores = normalise(towers.image(image_tensor(images))) @ normalise(towers.text(list(CLASSES))).T
    return {"samples": len(images), "prompted_classes_top_k_hits": top_k_hits(scores, hot),
            "chance_top_k_hits": chance_top_k_hits(hot), "inference_steps": 20, "guidance_scale": 3.0}
