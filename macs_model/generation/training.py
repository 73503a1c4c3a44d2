"""Stage 2 (paper §3.3): train the audio adapter on a frozen Stable Diffusion.

Training is noise-prediction MSE on VAE latents (the base's DDPM schedule) with the empty prompt (or one given),
10 % of the clips' audio embeddings zeroed for classifier-free guidance, AdamW + cosine, gradient accumulation
and mixed precision through accelerate. Checkpoints hold only the adapter (safetensors), the optimiser and
scheduler states and the RNG states; rerunning resumes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from macs_bench.errors import MacsError
from macs_bench.io import dumps_json
from macs_model.generation.adapter import load_adapter_state, read_adapter, save_adapter
from macs_model.generation.components import Components, build_adapter, encode_prompt
from macs_model.generation.config import RESUME_KEYS, GeneratorConfig
from macs_model.generation.image_buckets import bucket_sizes, epoch_views, image_size, nearest_bucket
from macs_model.generation.latent_cache import LatentCache, frame_latents
from macs_model.run_folder import run_versions, write_checkpoint
from macs_model.run_loop import check_resume, epoch_order, fit, make_accelerator, make_scheduler, open_run


@dataclass(frozen=True)
class TrainItem:
    """One training pair: the ground-truth frame and the clip's CLAP embeddings [K, clap_dim], or [W, K, clap_dim]
    with one audio window per epoch (epoch e uses window e mod W)."""

    sample_id: str
    image: Path
    embeddings: torch.Tensor


def train_adapter(components: Components, items: Sequence[TrainItem], config: GeneratorConfig,
                  out_dir: str | os.PathLike, *, resume: bool = True, progress: bool = True,
                  stop_at_step: int | None = None, run_info: Mapping[str, Any] | None = None,
                  accelerator: Any = None, latent_dir: str | os.PathLike | None = None,
                  device: str = "auto") -> dict[str, Any]:
    """Train the adapter on ``items``; the run folder gets checkpoints, ``metrics.jsonl`` and ``adapter/``.

    With ``latent_dir`` the frames' VAE latents are cached there (``macs_model.generation.latent_cache``), not
    re-encoded. ``accelerator``: None makes one for ``device``. The loop is :func:`macs_model.run_loop.fit`."""
    if not items:
        raise MacsError("train generator: no training items")
    out_dir = Path(out_dir)
    accelerator = accelerator or make_accelerator(config.mixed_precision, device)
    device, nproc, rank, main = (accelerator.device, accelerator.num_processes, accelerator.process_index,
                                 accelerator.is_main_process)
    per_step = config.batch_size * config.grad_accum * nproc
    per_epoch = len(items) // per_step
    if per_epoch < 1:
        raise MacsError(f"train generator: needs at least {per_step} items per epoch, has {len(items)}")
    total = config.steps if config.steps is not None else config.epochs * per_epoch
    torch.manual_seed(config.seed)  # the adapter's initial weights follow the config's seed
    trainable, tokens = build_adapter(components, config)
    weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(accelerator.mixed_precision, torch.float32)
    for frozen_part in (components.vae, components.text_encoder):
        frozen_part.to(device) if weight_dtype == torch.float32 else frozen_part.to(device, dtype=weight_dtype)
    latent_cache = LatentCache(latent_dir, components.vae) if latent_dir is not None else None
    unet = components.unet.to(device)
    tokens.to(device)
    frozen = [p for p in unet.parameters() if not p.requires_grad]
    for p in frozen:
        p.data = p.data.to(weight_dtype)
    params = [p for p in trainable.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = make_scheduler(optimizer, config.lr_schedule, total, config.grad_accum, config.warmup_steps,
                               config.min_lr_ratio)
    buckets = ([nearest_bucket(*image_size(item.image), bucket_sizes(config.height)) for item in items]
               if config.image_mode == "buckets" else None)
    run_info = json.loads(dumps_json(dict(run_info or {})))
    adapter_config = {"generator_config": config.to_dict(), "base": components.source,
                      "cross_attention_dim": unet.config.cross_attention_dim, "run_info": run_info,
                      "versions": run_versions()}

    def check(state: Mapping[str, Any], checkpoint: Path) -> None:
        check_resume(checkpoint, state, {"generator_config": config.to_dict()}, run_info, RESUME_KEYS)

    def load(checkpoint: Path) -> None:
        adapter_state, _ = read_adapter(checkpoint)
        load_adapter_state(unet, adapter_state, str(checkpoint), tokens=tokens, variant=config.audio_variant)

    step = open_run(accelerator, out_dir, resume=resume, seed=config.seed, optimizer=optimizer, scheduler=scheduler,
                    check=check, load=load, record={"generator_config": config.to_dict(), "base": components.source,
                                                    "run_info": run_info, "versions": run_versions()})
    # the trainable module goes through accelerate, so that several processes average its gradients
    trained, optimizer = accelerator.prepare(trainable, optimizer)
    unet_in_use, tokens_in_use = config.audio_variant.modules_in_use(unet, tokens, trained)
    text = encode_prompt(components, config.prompt, device)
    plan: dict[str, Any] = {}

    def save(at: int) -> None:
        write_checkpoint(accelerator, out_dir, at, optimizer, scheduler,
                         {"total_steps": total, "generator_config": config.to_dict(), "run_info": run_info},
                         lambda folder: save_adapter(folder, unet, adapter_config, tokens=tokens,
                                                     variant=config.audio_variant))

    def start_epoch(epoch: int) -> None:
        plan["order"], plan["views"] = _epoch_plan(len(items), buckets, config, epoch)

    def micro(step: int, epoch: int, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        first = ((step % per_epoch) * config.grad_accum + index) * config.batch_size * nproc + rank * config.batch_size
        positions = range(first, first + config.batch_size)
        batch = [items[int(plan["order"][i])] for i in positions]
        loss = _diffusion_loss(components, unet_in_use, tokens_in_use, batch, [plan["views"][i] for i in positions],
                               epoch, text, components.scheduler, config, device, weight_dtype, latent_cache)
        return loss, {"loss": loss.detach().double()}

    def before_update() -> None:
        if config.grad_clip is not None and config.grad_clip_mode == "value":
            accelerator.clip_grad_value_(params, config.grad_clip)
        elif config.grad_clip is not None:
            accelerator.clip_grad_norm_(params, config.grad_clip)

    step, last = fit(accelerator, trained, optimizer, scheduler, out_dir=out_dir, step=step, total=total,
                     per_epoch=per_epoch, grad_accum=config.grad_accum, log_every=config.log_every,
                     checkpoint_every=config.checkpoint_every, micro=micro, save=save, start_epoch=start_epoch,
                     before_update=before_update, stop_at_step=stop_at_step, progress=progress,
                     description="stage-2 training")
    if main and step == total:
        save_adapter(out_dir / "adapter", unet, adapter_config, tokens=tokens, variant=config.audio_variant)
    accelerator.wait_for_everyone()
    return {"step": step, "total_steps": total, "last_metrics": last,
            "adapter": str(out_dir / "adapter") if step == total else None}


def _epoch_plan(count: int, buckets, config: GeneratorConfig, epoch: int) -> tuple[list[int], list]:
    """(item order, view per position) of one epoch: bucketed views, or a shuffle with the square crop (view
    ``None``)."""
    if buckets is not None:
        return epoch_views(buckets, config.batch_size, config.seed, epoch, config.height)
    return epoch_order(count, config.seed, epoch).tolist(), [None] * count


def epoch_embeddings(embeddings: torch.Tensor, epoch: int) -> torch.Tensor:
    """A clip's embeddings [K, D] for ``epoch``: one window per epoch when stage 2 cached several ([W, K, D])."""
    return embeddings[epoch % embeddings.shape[0]] if embeddings.dim() == 3 else embeddings


def _diffusion_loss(components, unet, tokens, batch, views, epoch, text, noise_scheduler, config, device,
                    weight_dtype, latent_cache=None):
    audio = torch.stack([epoch_embeddings(item.embeddings, epoch) for item in batch]).to(device, torch.float32)
    draws = torch.rand(1 if config.cfg_drop == "batch" else len(batch), device=device)
    keep = (draws >= config.cfg_dropout).float().expand(len(batch))
    audio = audio * keep[:, None, None]  # CFG: zeroed audio, as the unconditional branch sees at inference
    latents = frame_latents(components.vae, batch, views, config.height, config.width, latent_cache)
    noise = torch.randn_like(latents)
    timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (len(batch),), device=device)
    noisy = noise_scheduler.add_noise(latents, noise, timesteps)
    target = noise if noise_scheduler.config.prediction_type == "epsilon" else \
        noise_scheduler.get_velocity(latents, noise, timesteps)
    kwargs = config.audio_variant.unet_inputs(text.expand(len(batch), -1, -1).to(weight_dtype), audio, tokens)
    with torch.autocast(device.type, dtype=weight_dtype, enabled=weight_dtype != torch.float32):
        prediction = unet(noisy.to(weight_dtype), timesteps, **kwargs).sample
    return torch.nn.functional.mse_loss(prediction.float(), target.float())
