"""Stage-1 training core (paper §3.1-3.2): MixIT on in-batch mixtures of mixtures, pluggable CLAP alignment.

One code path for CPU, one GPU or many (``accelerate``). The run is a pure function of (model init, dataset,
config): the data order is drawn from ``torch.Generator(seed + epoch)``, never from the process's history, and
every checkpoint holds the weights, the optimiser and scheduler states and the python / numpy / torch RNG states,
so a run stopped after k steps and resumed ends bit-for-bit where an uninterrupted run ends (on CPU).

The run folder's layout is :mod:`macs_model.run_folder`'s.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from macs_bench.errors import MacsError
from macs_bench.io import atomic_write_bytes, atomic_write_text, dumps_json
from macs_model.run_folder import (
    CONFIG,
    METRICS,
    MODEL_FILE,
    latest_checkpoint,
    load_model_weights,
    read_trainer_state,
    restore_states,
    run_versions,
    start_run,
    write_checkpoint,
)
from macs_model.run_loop import cosine_with_warmup, epoch_order, progress_bar, release_lr
from macs_model.separation.config import SeparatorConfig
from macs_model.separation.losses import mixit_loss, ramp_weights, total_loss
from macs_model.separation.train_config import TrainConfig

AlignLoss = Callable[[torch.Tensor, Mapping[str, Any]], tuple[torch.Tensor, torch.Tensor]]
EXTRA_FILE = "extra_parameters.safetensors"
# Fields that only change how a run is observed, not its trajectory: they may differ on resume.
CADENCE_FIELDS = ("checkpoint_every", "log_every")
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


def _check_resume(state: Mapping[str, Any], path: Path, config: TrainConfig, sep: SeparatorConfig,
                  run_info: Mapping[str, Any] | None = None) -> None:
    saved_sep = state.get("separator_config")
    if saved_sep != sep.to_dict():
        diff = sorted(k for k in set(sep.to_dict()) | set(saved_sep or {})
                      if (saved_sep or {}).get(k) != sep.to_dict().get(k))
        raise MacsError(f"{path}: cannot resume: the checkpoint's separator config differs from this run's "
                        f"(fields: {', '.join(diff)}); use a new out_dir or resume=False")
    saved_train = dict(state.get("train_config") or {})
    ours = config.to_dict()
    diff = sorted(k for k in set(ours) | set(saved_train)
                  if k not in CADENCE_FIELDS and saved_train.get(k) != ours.get(k))
    if diff:
        raise MacsError(f"{path}: cannot resume: the checkpoint's train config differs from this run's "
                        f"(fields: {', '.join(diff)}); use a new out_dir or resume=False")
    saved_run, ours_run = dict(state.get("run_info") or {}), json.loads(dumps_json(dict(run_info or {})))
    diff = sorted(k for k in RESUME_KEYS if saved_run.get(k) != ours_run.get(k))
    if diff:
        raise MacsError(f"{path}: cannot resume: the checkpoint was trained with other {', '.join(diff)} "
                        f"settings; use a new out_dir or resume=False")


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
    cpu: bool = False,
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
    run reaches them). ``stop_at_step``: return
    after that many optimiser steps (the schedule still follows the full length; for interrupting a run).
    ``accelerator``: an ``accelerate.Accelerator``; None makes ``Accelerator(cpu=cpu)``. An ``align_loss`` that is
    an ``nn.Module`` is moved to the accelerator's device. ``run_info`` (JSON-able: data, losses, weights used) is
    recorded in ``config.json`` and every checkpoint; its ``RESUME_KEYS`` entries must match to resume.
    """
    from accelerate import Accelerator
    from safetensors.torch import save as safetensors_save

    if not isinstance(config, TrainConfig):
        raise MacsError(f"train: config must be a TrainConfig, got {type(config).__name__}")
    sep_config = _separator_config(model)
    gpu = torch.cuda.is_available() and not cpu
    accelerator = accelerator if accelerator is not None else Accelerator(
        cpu=cpu, mixed_precision=config.mixed_precision if gpu else "no")
    out_dir = Path(out_dir)
    nproc, rank = accelerator.num_processes, accelerator.process_index
    num_clips = len(dataset)
    per_epoch = config.steps_per_epoch(num_clips, nproc)
    total = config.total_steps(num_clips, nproc)
    epochs = config.total_epochs(num_clips, nproc)
    warmup = config.warmup_steps if config.warmup_steps is not None else int(config.warmup_ratio * total)
    main = accelerator.is_main_process

    parameters = [p for p in model.parameters() if p.requires_grad] + list(extra_parameters)
    optimizer = torch.optim.AdamW(parameters, lr=config.lr, betas=config.betas, eps=config.eps,
                                  weight_decay=config.weight_decay)
    if config.lr_schedule == "release":
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: release_lr(s, total, config.grad_accum))
    else:
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: cosine_with_warmup(s, total, warmup, config.min_lr_ratio))

    step = 0
    checkpoint = latest_checkpoint(out_dir) if resume else None
    if checkpoint is not None:
        state = read_trainer_state(checkpoint)
        _check_resume(state, checkpoint, config, sep_config, run_info)
        load_model_weights(model, checkpoint)
        if extra_parameters:
            from safetensors.torch import load_file

            extra = load_file(str(checkpoint / EXTRA_FILE))
            if set(extra) != {f"extra.{i}" for i in range(len(extra_parameters))}:
                raise MacsError(f"{checkpoint / EXTRA_FILE}: holds {len(extra)} extra parameters, "
                                f"this run has {len(extra_parameters)}")
            with torch.no_grad():
                for i, param in enumerate(extra_parameters):
                    param.copy_(extra[f"extra.{i}"])
        step = restore_states(checkpoint, state, optimizer, scheduler, accelerator, out_dir, rng_required=False)
    else:
        start_run(out_dir, config.seed, rank, main)
    if main:
        atomic_write_text(out_dir / CONFIG, dumps_json(
            {"train_config": config.to_dict(), "separator_config": sep_config.to_dict(),
             "run_info": dict(run_info or {}), "versions": run_versions()}))
    accelerator.wait_for_everyone()

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

    stop = total if stop_at_step is None else min(total, stop_at_step)
    micro_per_epoch = per_epoch * config.grad_accum
    order_epoch, order = -1, None
    model.train()
    started = time.perf_counter()
    last: dict[str, Any] = {}
    with progress_bar(enabled=progress and main) as bar:
        task = bar.add_task("stage-1 training", total=total, completed=step) if bar is not None else None
        while step < stop:
            epoch = step // per_epoch
            if epoch != order_epoch:
                order, order_epoch = epoch_order(num_clips, config.seed, epoch), epoch
            if align_loss is not None and config.ramp:
                w_rec, w_align = ramp_weights(epoch, epochs)
                lam, mu, gam = config.lambda_ * w_rec, config.mu * w_align, config.gamma * w_align
            else:
                w_rec, w_align = 1.0, (1.0 if align_loss is not None else 0.0)
                lam, mu, gam = config.lambda_, config.mu, config.gamma
            sums = {"loss": 0.0, "rec": 0.0, "cl": 0.0, "rank": 0.0}
            for micro in range(config.grad_accum):
                index = (step % per_epoch) * config.grad_accum + micro
                assert index < micro_per_epoch
                global_batch = config.batch_size * nproc
                chosen = order[index * global_batch:(index + 1) * global_batch]
                chosen = chosen[rank * config.batch_size:(rank + 1) * config.batch_size]
                batch = collate([dataset[int(i)] for i in chosen])
                batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
                mixture, mix1, mix2 = make_mixture_of_mixtures(batch["audio"])
                batch.update(mixture=mixture, mix1=mix1, mix2=mix2)
                sync = micro == config.grad_accum - 1
                with contextlib.nullcontext() if sync else accelerator.no_sync(model):
                    sources = model(mixture)
                    rec, _ = mixit_loss(sources, mix1, mix2)
                    if align_loss is not None:
                        l_cl, l_rank = align_loss(sources, batch)
                    else:
                        l_cl = l_rank = torch.zeros((), device=device)
                    loss = total_loss(rec, l_cl, l_rank, lam, mu, gam)
                    accelerator.backward(loss / config.grad_accum)
                for key, value in (("loss", loss), ("rec", rec), ("cl", l_cl), ("rank", l_rank)):
                    sums[key] += value.detach().float() / config.grad_accum
            if nproc > 1:  # DDP averages the model's gradients; the extra parameters are outside it
                for param in extra_parameters:
                    if param.grad is not None:
                        param.grad = accelerator.reduce(param.grad, reduction="mean")
            if config.max_grad_norm is not None:
                accelerator.clip_grad_norm_(parameters, config.max_grad_norm)
            lr = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            if after_step is not None:
                after_step()
            step += 1
            if bar is not None:
                bar.update(task, completed=step)
            if step % config.log_every == 0 or step == total:
                values = {k: accelerator.reduce(v.reshape(1), reduction="mean").item() for k, v in sums.items()}
                last = {"step": step, "epoch": epoch, **values, "w_rec": lam, "w_cl": mu if align_loss else 0.0,
                        "w_rank": gam if align_loss else 0.0, "lr": lr,
                        "seconds": round(time.perf_counter() - started, 3)}
                if main:
                    with open(out_dir / METRICS, "a", encoding="utf-8") as fh:
                        fh.write(json.dumps(last) + "\n")
            if step % config.checkpoint_every == 0 or step == total:
                save_checkpoint(step)
    accelerator.wait_for_everyone()
    return {"step": step, "total_steps": total, "epochs": epochs, "steps_per_epoch": per_epoch,
            "last_metrics": last, "checkpoint": str(latest_checkpoint(out_dir)) if main else None}
