"""The one training loop both stages run (``fit``), and what it needs: schedules, resume checks, the epoch order.

A stage supplies its optimiser, its prepared module and callbacks (the loss of one micro-batch, what to do at an
epoch's start and before an update, how to write a checkpoint); ``fit`` owns the rest: gradient accumulation with
``no_sync`` on all but the last micro-batch, the scheduler stepped once per optimiser step, the logged values
averaged across processes into ``metrics.jsonl``, and the checkpoint cadence. ``open_run`` resumes from the run
folder's ``latest`` checkpoint or starts the run over, refusing (``check_resume``) a checkpoint whose configs
differ from this run's with one line that names every differing field.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from macs_bench.errors import MacsError
from macs_bench.io import atomic_write_text, dumps_json
from macs_model.run_folder import CONFIG, METRICS, latest_checkpoint, read_trainer_state, restore_states, start_run

# Fields that only change how a run is observed, not its trajectory: they may differ on resume.
CADENCE_FIELDS = ("checkpoint_every", "log_every")
RESTART_HINT = "use another output folder, or start over (restart)"


def cosine_with_warmup(step: int, total: int, warmup: int, min_ratio: float) -> float:
    """LR multiplier at optimiser step ``step`` (0-based): linear warm-up to 1, then cosine down to ``min_ratio``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    progress = min(max(progress, 0.0), 1.0)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def release_lr(step: int, total: int, accum: int) -> float:
    """LR multiplier at optimiser step ``step`` of the release's schedule, as it runs on one process.

    ``train.py`` / ``train_mixit.py`` build ``diffusers.get_scheduler("cosine", num_warmup_steps=(T // 10) * A,
    num_training_steps=T * A)`` with T optimiser steps and A accumulation steps, and accelerate steps the scheduler
    once per optimiser step. Linear warm-up from 0 over (T // 10) * A steps, then the start of a cosine over
    T * A steps, of which the run covers T.
    """
    warmup, span = (total // 10) * accum, total * accum
    if step < warmup:
        return step / max(1, warmup)
    progress = (step - warmup) / max(1, span - warmup)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))


def epoch_order(num_clips: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled clip order of one epoch: a function of (seed, epoch) only."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(num_clips, generator=generator)


def progress_bar(enabled: bool):
    """A rich progress bar (steps, rate, ETA), or a no-op context yielding None."""
    if not enabled:
        return _NullBar()
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn())


class _NullBar:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def make_accelerator(mixed_precision: str, device: str = "auto"):
    """accelerate's Accelerator on ``device`` (validated by :func:`macs_bench.device.resolve_device`): the
    config's mixed precision on GPU, full precision on CPU."""
    from accelerate import Accelerator

    from macs_bench.device import resolve_device

    resolved = resolve_device(device)
    gpu = resolved.type == "cuda"
    if gpu and resolved.index is not None:  # cuda:N: the process's current device, which accelerate then takes
        torch.cuda.set_device(resolved.index)
    return Accelerator(cpu=resolved.type == "cpu", mixed_precision=mixed_precision if gpu else "no")


def make_scheduler(optimizer: torch.optim.Optimizer, schedule: str, total: int, accum: int, warmup: int,
                   min_ratio: float) -> torch.optim.lr_scheduler.LambdaLR:
    """The LR schedule: "release" (:func:`release_lr`) or "cosine" (:func:`cosine_with_warmup`)."""
    if schedule == "release":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: release_lr(s, total, accum))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: cosine_with_warmup(s, total, warmup, min_ratio))


def check_resume(checkpoint: Path, state: Mapping[str, Any], configs: Mapping[str, Mapping[str, Any]],
                 run_info: Mapping[str, Any], run_keys: Sequence[str]) -> None:
    """Refuse to resume from ``checkpoint`` when one of ``configs`` (section name -> this run's config dict) or a
    trajectory-changing ``run_info`` entry (``run_keys``) differs from what the checkpoint recorded: one line naming
    the section and every differing field. Cadence fields may differ."""
    for section, ours in configs.items():
        saved = dict(state.get(section) or {})
        diff = sorted(k for k in set(ours) | set(saved) if k not in CADENCE_FIELDS and saved.get(k) != ours.get(k))
        if diff:
            _refuse(checkpoint, section.replace("_", " "), diff)
    saved_run, ours_run = dict(state.get("run_info") or {}), json.loads(dumps_json(dict(run_info or {})))
    diff = sorted(k for k in run_keys if saved_run.get(k) != ours_run.get(k))
    if diff:
        _refuse(checkpoint, "run info", diff)


def _refuse(checkpoint: Path, section: str, fields: Sequence[str]) -> None:
    raise MacsError(f"{checkpoint}: cannot resume: the checkpoint's {section} differs from this run's "
                    f"(fields: {', '.join(fields)}); {RESTART_HINT}")


def open_run(accelerator: Any, out_dir: Path, *, resume: bool, seed: int, optimizer: Any, scheduler: Any,
             check: Callable[[Mapping[str, Any], Path], None], load: Callable[[Path], None],
             record: Mapping[str, Any]) -> int:
    """The optimiser step a run starts at: resumed from ``out_dir/latest`` (``check(state, checkpoint)`` first,
    then ``load(checkpoint)`` for the weights, then the optimiser, scheduler and RNG states), or 0 for a fresh run
    (seeded, old pointer and log dropped). ``record`` is written to ``config.json``."""
    step = 0
    checkpoint = latest_checkpoint(out_dir) if resume else None
    if checkpoint is not None:
        state = read_trainer_state(checkpoint)
        check(state, checkpoint)
        load(checkpoint)
        step = restore_states(checkpoint, state, optimizer, scheduler, accelerator, out_dir)
    else:
        start_run(out_dir, seed, accelerator.process_index, accelerator.is_main_process)
    if accelerator.is_main_process:
        atomic_write_text(out_dir / CONFIG, dumps_json(dict(record)))
    accelerator.wait_for_everyone()
    return step


def fit(accelerator: Any, module: Any, optimizer: Any, scheduler: Any, *, out_dir: Path, step: int, total: int,
        per_epoch: int, grad_accum: int, log_every: int, checkpoint_every: int,
        micro: Callable[[int, int, int], tuple[torch.Tensor, Mapping[str, torch.Tensor]]],
        save: Callable[[int], None], start_epoch: Callable[[int], None] | None = None,
        before_update: Callable[[], None] | None = None, after_update: Callable[[], None] | None = None,
        log_fields: Callable[[int], Mapping[str, Any]] | None = None, stop_at_step: int | None = None,
        progress: bool = True, description: str = "training") -> tuple[int, dict[str, Any]]:
    """Run optimiser steps ``step`` .. ``total`` (or ``stop_at_step``); returns (the step reached, the last metrics).

    Per step: ``start_epoch(epoch)`` when the epoch changes; ``grad_accum`` calls of ``micro(step, epoch, index)``
    returning (loss, values to log), each loss back-propagated divided by ``grad_accum`` (gradients synchronised
    across processes on the last only); ``before_update()`` (e.g. clipping); the optimiser and scheduler step;
    ``after_update()``. Every ``log_every`` steps the logged values, averaged over the micro-batches and the
    processes, go to ``metrics.jsonl`` with ``log_fields(epoch)``; every ``checkpoint_every`` steps and at the end
    ``save(step)`` writes a checkpoint."""
    main, nproc = accelerator.is_main_process, accelerator.num_processes
    stop = total if stop_at_step is None else min(total, stop_at_step)
    started, last, epoch_started = time.perf_counter(), {}, -1
    module.train()
    with progress_bar(enabled=progress and main) as bar:
        task = bar.add_task(description, total=total, completed=step) if bar is not None else None
        while step < stop:
            epoch = step // per_epoch
            if epoch != epoch_started:
                if start_epoch is not None:
                    start_epoch(epoch)
                epoch_started = epoch
            sums: dict[str, Any] = {}
            for index in range(grad_accum):
                sync = index == grad_accum - 1
                with contextlib.nullcontext() if sync or nproc == 1 else accelerator.no_sync(module):
                    loss, values = micro(step, epoch, index)
                    accelerator.backward(loss / grad_accum)
                for key, value in values.items():
                    sums[key] = sums.get(key, 0.0) + value / grad_accum
            if before_update is not None:
                before_update()
            lr = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            if after_update is not None:
                after_update()
            step += 1
            if bar is not None:
                bar.update(task, completed=step)
            if step % log_every == 0 or step == total:
                means = {k: accelerator.reduce(torch.as_tensor(v).reshape(1).to(accelerator.device),
                                               reduction="mean").item() for k, v in sums.items()}
                last = {"step": step, "epoch": epoch, **means, **(log_fields(epoch) if log_fields else {}), "lr": lr,
                        "seconds": round(time.perf_counter() - started, 3)}
                if main:
                    with open(out_dir / METRICS, "a", encoding="utf-8") as fh:
                        fh.write(json.dumps(last) + "\n")
            if step % checkpoint_every == 0 or step == total:
                save(step)
    accelerator.wait_for_everyone()
    return step, last
