"""Stage-1 training core (paper §3.1-3.2): MixIT on in-batch mixtures of mixtures, pluggable CLAP alignment.

One code path for CPU, one GPU or many (``accelerate``). The run is a pure function of (model init, dataset,
config): the data order is drawn from ``torch.Generator(seed + epoch)``, never from the process's history, and
every checkpoint holds the weights, the optimiser and scheduler states and the python / numpy / torch RNG states,
so a run stopped after k steps and resumed ends bit-for-bit where an uninterrupted run ends (on CPU).

The run folder's layout is :mod:`macs_model.run_folder`'s.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from macs_bench.errors import MacsError
from macs_bench.io import atomic_write_bytes
from macs_model.run_folder import MODEL_FILE, latest_checkpoint, load_model_weights, run_versions, write_checkpoint
from macs_model.run_loop import check_resume, epoch_order, fit, make_accelerator, make_scheduler, open_run
from macs_model.separation.config import SeparatorConfig
from macs_model.separation.losses import mixit_loss, ramp_weights, total_loss
from macs_model.separation.train_config import TrainConfig

AlignLoss = Callable[[torch.Tensor, Mapping[str, Any]], tuple[torch.Tensor, torch.Tensor]]
EXTRA_FILE = "extra_parameters.safetensors"
# run_info entries that change the trajectory (the losses and the CLAP weights behind them): equal to resume.
RESUME_KEYS = ("alignment",)


def make_mixture_of_mixtures(clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mixture, mix1, mix2) from clips [B, T]: mix1 = clips, mix2 = clips cyclically shifted by one example."""
    if clips.dim() != 2 or clips.shape[0] < 2:
        raise MacsError(f"a mixture of mixtures needs a batch [B >= 2, samples], got {tuple(clips.shape)}")
    mix1 = clips
    mix2 = torch.roll(clips, 1, dims=0)
    return mix1 + mix2, mix1, mix2


def collate(items: Sequence[Any]) -> dict[str, Any]:
    """Dataset items -> batch dict. An item is a tensor [T] (the clip) or a mapping with an ``"audio"`` tensor [T]
    and any other fields; tensors of one shape are stacked, everything else is kept as a list per field."""
    rows = [{"audio": item} if isinstance(item, torch.Tensor) else item for item in items]
    if not all(isinstance(row, Mapping) and "audio" in row for row in rows):
        raise MacsError("dataset items must be audio tensors [samples] or mappings with an 'audio' tensor")
    batch: dict[str, Any] = {}
    for key in rows[0]:
        values = [row[key] for row in rows]
        if all(isinstance(v, torch.Tensor) for v in values) and len({tuple(v.shape) for v in values}) == 1:
            batch[key] = torch.stack(values)
        else:
            batch[key] = values
    audio = batch["audio"]
    if not isinstance(audio, torch.Tensor) or audio.dim() != 2 or not audio.is_floating_point():
        raise MacsError("dataset audio must be float tensors [samples] of one length")
    return batch


def _separator_config(model: nn.Module) -> SeparatorConfig:
    config = getattr(model, "config", None)
    if not isinstance(config, SeparatorConfig):
        raise MacsError(f"train: the model ({type(model).__name__}) has no SeparatorConfig in .config")
    return config


def train(
    model: nn.Module,
    dataset: Sequence[Any],
    config: TrainConfig,
    out_dir: str | os.PathLike,
    align_loss: AlignLoss | None = None,
    accelerator: Any = None,
    *,
    resume: bool = True,
    stop_at_step: int | None = None,
    device: str = "auto",
    progress: bool = True,
    extra_parameters: Sequence[nn.Parameter] = (),
    after_step: Callable[[], None] | None = None,
    run_info: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Train ``model`` (a separator built from a SeparatorConfig) on ``dataset``; returns a summary dict.

    ``dataset`` is indexable (``len`` and ``[i]``) with items as ``collate`` takes them. Each micro-batch of clips
    [B, T] becomes mix1 = clips, mix2 = clips rolled by one, mixture = mix1 + mix2; the separator's sources
    [B, M, T] give L_rec = mixit_loss. ``align_loss(sources, batch)`` (batch: the collated dict plus "mixture",
    "mix1", "mix2") returns (L_CL, L_rank); None trains on reconstruction only. Its trainable tensors (e.g. a
    logit scale) go in ``extra_parameters``: they are optimised and checkpointed (``extra_parameters.safetensors``);
    ``after_step()`` runs after every optimiser step (e.g. ``clamp_logit_scale_``).

    ``resume``: continue from ``out_dir/latest`` when it exists (the config must match); ``resume=False`` starts
    over, dropping the ``latest`` pointer and the metrics log (old checkpoint directories are replaced as the new
    run reaches them). ``stop_at_step``: return after that many optimiser steps (the schedule still follows the
    full length; for interrupting a run). ``accelerator``: an ``accelerate.Accelerator``; None makes one for
    ``device`` (:func:`macs_bench.device.resolve_device`'s names). An ``align_loss`` that is an ``nn.Module`` is
    moved to the accelerator's device. ``run_info`` (JSON-able: data, losses, weights used) is recorded in
    ``config.json`` and every checkpoint; its ``RESUME_KEYS`` entries must match to resume. The loop is
    :func:`macs_model.run_loop.fit`.
    """
    from safetensors.torch import save as safetensors_save

    if not isinstance(config, TrainConfig):
        raise MacsError(f"train: config must be a TrainConfig, got {type(config).__name__}")
    sep_config = _separator_config(model)
    accelerator = accelerator if accelerator is not None else make_accelerator(config.mixed_precision, device)
    out_dir = Path(out_dir)
    nproc, rank = accelerator.num_processes, accelerator.process_index
    num_clips = len(dataset)
    per_epoch = config.steps_per_epoch(num_clips, nproc)
    total = config.total_steps(num_clips, nproc)
    epochs = config.total_epochs(num_clips, nproc)
    warmup = config.warmup_steps if config.warmup_steps is not None else int(config.warmup_ratio * total)

    parameters = [p for p in model.parameters() if p.requires_grad] + list(extra_parameters)
    optimizer = torch.optim.AdamW(parameters, lr=config.lr, betas=config.betas, eps=config.eps,
                                  weight_decay=config.weight_decay)
    scheduler = make_scheduler(optimizer, config.lr_schedule, total, config.grad_accum, warmup, config.min_lr_ratio)

    def check(state: Mapping[str, Any], checkpoint: Path) -> None:
        check_resume(checkpoint, state, {"separator_config": sep_config.to_dict(),
                                         "train_config": config.to_dict()}, run_info or {}, RESUME_KEYS)

    def load(checkpoint: Path) -> None:
        load_model_weights(model, checkpoint)
        if extra_parameters:
            _load_extra(checkpoint, extra_parameters)

    step = open_run(accelerator, out_dir, resume=resume, seed=config.seed, optimizer=optimizer, scheduler=scheduler,
                    check=check, load=load, record={"train_config": config.to_dict(),
                                                    "separator_config": sep_config.to_dict(),
                                                    "run_info": dict(run_info or {}), "versions": run_versions()})

    # Scheduler is stepped by hand once per optimiser step (accelerate's wrapper would step it once per process).
    model, optimizer = accelerator.prepare(model, optimizer)
    device = accelerator.device
    if isinstance(align_loss, nn.Module):
        align_loss.to(device)

    def save_checkpoint(at: int) -> None:
        def write_weights(folder: Path) -> None:
            weights = {k: v.detach().cpu().contiguous()
                       for k, v in accelerator.unwrap_model(model).state_dict().items()}
            atomic_write_bytes(folder / MODEL_FILE, safetensors_save(weights, metadata={"step": str(at)}))
            if extra_parameters:
                atomic_write_bytes(folder / EXTRA_FILE, safetensors_save(
                    {f"extra.{i}": p.detach().cpu().contiguous() for i, p in enumerate(extra_parameters)}))

        write_checkpoint(accelerator, out_dir, at, optimizer, scheduler, {
            "epoch": at // per_epoch, "total_steps": total, "train_config": config.to_dict(),
            "separator_config": sep_config.to_dict(), "num_processes": nproc, "run_info": dict(run_info or {}),
            "versions": run_versions()}, write_weights)

    def loss_weights(epoch: int) -> tuple[float, float, float]:
        if align_loss is not None and config.ramp:
            w_rec, w_align = ramp_weights(epoch, epochs)
            return config.lambda_ * w_rec, config.mu * w_align, config.gamma * w_align
        return config.lambda_, config.mu, config.gamma

    plan: dict[str, torch.Tensor] = {}

    def start_epoch(epoch: int) -> None:
        plan["order"] = epoch_order(num_clips, config.seed, epoch)

    def micro(step: int, epoch: int, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        global_batch = config.batch_size * nproc
        position = (step % per_epoch) * config.grad_accum + index
        chosen = plan["order"][position * global_batch:(position + 1) * global_batch]
        chosen = chosen[rank * config.batch_size:(rank + 1) * config.batch_size]
        batch = collate([dataset[int(i)] for i in chosen])
        batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
        mixture, mix1, mix2 = make_mixture_of_mixtures(batch["audio"])
        batch.update(mixture=mixture, mix1=mix1, mix2=mix2)
        sources = model(mixture)
        rec, _ = mixit_loss(sources, mix1, mix2)
        if align_loss is not None:
            l_cl, l_rank = align_loss(sources, batch)
        else:
            l_cl = l_rank = torch.zeros((), device=device)
        loss = total_loss(rec, l_cl, l_rank, *loss_weights(epoch))
        return loss, {key: value.detach().float()
                      for key, value in (("loss", loss), ("rec", rec), ("cl", l_cl), ("rank", l_rank))}

    def before_update() -> None:
        if nproc > 1:  # DDP averages the model's gradients; the extra parameters are outside it
            for param in extra_parameters:
                if param.grad is not None:
                    param.grad = accelerator.reduce(param.grad, reduction="mean")
        if config.max_grad_norm is not None:
            accelerator.clip_grad_norm_(parameters, config.max_grad_norm)

    def log_fields(epoch: int) -> dict[str, float]:
        lam, mu, gam = loss_weights(epoch)
        return {"w_rec": lam, "w_cl": mu if align_loss else 0.0, "w_rank": gam if align_loss else 0.0}

    step, last = fit(accelerator, model, optimizer, scheduler, out_dir=out_dir, step=step, total=total,
                     per_epoch=per_epoch, grad_accum=config.grad_accum, log_every=config.log_every,
                     checkpoint_every=config.checkpoint_every, micro=micro, save=save_checkpoint,
                     start_epoch=start_epoch, before_update=before_update, after_update=after_step,
                     log_fields=log_fields, stop_at_step=stop_at_step, progress=progress,
                     description="stage-1 training")
    return {"step": step, "total_steps": total, "epochs": epochs, "steps_per_epoch": per_epoch,
            "last_metrics": last, "checkpoint": str(latest_checkpoint(out_dir)) if accelerator.is_main_process
            else None}


def _load_extra(checkpoint: Path, extra_parameters: Sequence[nn.Parameter]) -> None:
    from safetensors.torch import load_file

    extra = load_file(str(checkpoint / EXTRA_FILE))
    if set(extra) != {f"extra.{i}" for i in range(len(extra_parameters))}:
        raise MacsError(f"{checkpoint / EXTRA_FILE}: holds {len(extra)} extra parameters, "
                        f"this run has {len(extra_parameters)}")
    with torch.no_grad():
        for i, param in enumerate(extra_parameters):
            param.copy_(extra[f"extra.{i}"])
