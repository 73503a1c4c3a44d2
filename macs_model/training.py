"""Stage-1 training core (paper §3.1-3.2): MixIT on in-batch mixtures of mixtures, pluggable CLAP alignment.

One code path for CPU, one GPU or many (``accelerate``). The run is a pure function of (model init, dataset,
config): the data order is drawn from ``torch.Generator(seed + epoch)``, never from the process's history, and
every checkpoint holds the weights, the optimiser and scheduler states and the python / numpy / torch RNG states,
so a run stopped after k steps and resumed ends bit-for-bit where an uninterrupted run ends (on CPU).

Layout of ``out_dir``::

    config.json                 train config + separator config of the run
    metrics.jsonl               one JSON line per log step (step, epoch, loss terms, weights, lr, seconds)
    checkpoint-<step>/          model.safetensors, optimizer.pt, scheduler.pt, rng-<rank>.pt, trainer_state.json
    latest                      name of the newest complete checkpoint, written last

A checkpoint directory is assembled under a temporary name and renamed into place, then ``latest`` is replaced
atomically, so a crash leaves either the old or the new checkpoint pointed at; a directory ``latest`` does not name
is never read.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import platform
import random
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from macs_bench.errors import MacsError
from macs_bench.io import atomic_write_bytes, atomic_write_text, dumps_json
from macs_model.config import NamedConfig, SeparatorConfig
from macs_model.losses import mixit_loss, ramp_weights, total_loss

AlignLoss = Callable[[torch.Tensor, Mapping[str, Any]], tuple[torch.Tensor, torch.Tensor]]

LATEST = "latest"
METRICS = "metrics.jsonl"
CONFIG = "config.json"
MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.pt"
SCHEDULER_FILE = "scheduler.pt"
STATE_FILE = "trainer_state.json"
EXTRA_FILE = "extra_parameters.safetensors"
TIMING_FIELDS = ("seconds",)  # metrics fields that legitimately differ between identical runs
# Fields that only change how a run is observed, not its trajectory: they may differ on resume.
CADENCE_FIELDS = ("checkpoint_every", "log_every")
# run_info entries that change the trajectory (the losses and the CLAP weights behind them): equal to resume.
RESUME_KEYS = ("alignment",)


@dataclass(frozen=True)
class TrainConfig(NamedConfig):
    """Stage-1 optimisation settings; the defaults are the release's (``PRESETS["paper"]``).

    Length: ``steps`` optimiser steps if set, else ``epochs`` passes over the data. One optimiser step consumes
    ``grad_accum`` micro-batches of ``batch_size`` clips per process; an epoch is the number of whole optimiser
    steps the dataset fills (the remainder of a shuffled epoch is dropped). ``lr_schedule`` "cosine": a linear
    warm-up over ``warmup_steps`` (or ``warmup_ratio`` of all steps) then a cosine decay to ``min_lr_ratio * lr``;
    "release": :func:`release_lr`, what the release's ``train_mixit.py`` runs.
    ``mixed_precision``: accelerate's, on GPU only (CPU runs stay fp32).

    Derived from the release's ``train_mixit.py`` / ``train_mixit.sh`` (the ``paper`` preset): AdamW at torch's
    defaults (betas 0.9 / 0.999, eps 1e-8, weight decay 1e-2), lr 1e-3, batch 8 x accumulation 2, 10 epochs,
    fp16 (its ``--mixed_precision`` default), no gradient clipping, and ``get_scheduler("cosine",
    num_warmup_steps=(T // 10) * 2, num_training_steps=T * 2)`` with T = 10 * ceil(batches / 2) optimiser steps,
    which accelerate steps once per optimiser step on one process: a linear warm-up over the first 20 % of the
    run, then the first 44 % of a cosine, ending at 0.587 lr. The loss ramps from reconstruction to alignment
    over the epochs (a = epoch / (epochs - 1)). The paper's own choices where the release differs only in
    training stay: the 62 bipartitions of MixIT (the release's table has 63 rows, one of them all-in-one), a
    Spearman ranking loss per row and a clamped temperature (``losses``). ``prompts`` "release": up to 5
    lowercased labels per clip, both clips' 10 prompts soft-assigned onto the 6 sources; "interleaved": 6
    prompts from both clips' labels (``alignment``). The labels themselves are the manifest's (the FSD50K
    builder drops ontology ancestors; the release drops a fixed list of coarse categories).
    Loss: ``lambda_ L_rec + mu L_CL + gamma L_rank``; with ``ramp`` and an alignment loss the release's epoch ramp
    replaces the three weights (reconstruction ``lambda_ (1 - a)``, alignment ``mu a`` and ``gamma a``,
    a = epoch / (epochs - 1)). Without an alignment loss the objective is ``lambda_ L_rec`` throughout.
    """

    steps: int | None = None
    epochs: int | None = 10
    batch_size: int = 8
    grad_accum: int = 2
    lr: float = 1e-3
    weight_decay: float = 1e-2
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    warmup_steps: int | None = None
    warmup_ratio: float = 0.0
    min_lr_ratio: float = 0.0
    lr_schedule: str = "release"
    max_grad_norm: float | None = None
    mixed_precision: str = "fp16"
    prompts: str = "release"
    seed: int = 0
    checkpoint_every: int = 1000
    log_every: int = 10
    lambda_: float = 1.0
    mu: float = 1.0
    gamma: float = 1.0
    ramp: bool = True

    def __post_init__(self) -> None:
        if self.steps is None and self.epochs is None:
            raise MacsError("train config: set steps or epochs")
        self.check_positive_ints("steps", "epochs", optional=True)
        if self.warmup_steps != 0:  # 0 turns the warm-up off
            self.check_positive_ints("warmup_steps", optional=True)
        self.check_positive_ints("batch_size", "grad_accum", "checkpoint_every", "log_every")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise MacsError(f"train config: seed must be a non-negative integer, got {self.seed!r}")
        for name in ("lr", "weight_decay", "eps", "warmup_ratio", "min_lr_ratio", "lambda_", "mu", "gamma"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise MacsError(f"train config: {name} must be a finite non-negative number, got {value!r}")
            object.__setattr__(self, name, float(value))
        if not self.lr > 0:
            raise MacsError(f"train config: lr must be positive, got {self.lr}")
        if self.warmup_ratio >= 1 or self.min_lr_ratio > 1:
            raise MacsError("train config: warmup_ratio must be < 1 and min_lr_ratio <= 1")
        betas = tuple(float(b) for b in self.betas)
        if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
            raise MacsError(f"train config: betas must be two numbers in [0, 1), got {self.betas!r}")
        object.__setattr__(self, "betas", betas)
        if self.max_grad_norm is not None:
            if not self.max_grad_norm > 0:
                raise MacsError(f"train config: max_grad_norm must be positive or None, got {self.max_grad_norm}")
            object.__setattr__(self, "max_grad_norm", float(self.max_grad_norm))
        if self.lr_schedule not in ("release", "cosine"):
            raise MacsError(f"train config: lr_schedule must be release or cosine, got {self.lr_schedule!r}")
        if self.prompts not in ("release", "interleaved"):
            raise MacsError(f"train config: prompts must be release or interleaved, got {self.prompts!r}")
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise MacsError(f"train config: mixed_precision must be no, fp16 or bf16, got {self.mixed_precision!r}")
        if not isinstance(self.ramp, bool):
            raise MacsError(f"train config: ramp must be true or false, got {self.ramp!r}")

    KIND = "train"

    @classmethod
    def presets(cls) -> dict[str, "TrainConfig"]:
        return TRAIN_PRESETS

    def steps_per_epoch(self, num_clips: int, num_processes: int = 1) -> int:
        """Whole optimiser steps one shuffled pass over ``num_clips`` clips fills."""
        per_step = self.batch_size * self.grad_accum * num_processes
        steps = num_clips // per_step
        if steps < 1:
            raise MacsError(f"training needs at least {per_step} clips per epoch (batch {self.batch_size} x accum "
                            f"{self.grad_accum} x {num_processes} process(es)), the dataset has {num_clips}")
        return steps

    def total_steps(self, num_clips: int, num_processes: int = 1) -> int:
        return self.steps if self.steps is not None else self.epochs * self.steps_per_epoch(num_clips, num_processes)

    def total_epochs(self, num_clips: int, num_processes: int = 1) -> int:
        per_epoch = self.steps_per_epoch(num_clips, num_processes)
        return -(-self.total_steps(num_clips, num_processes) // per_epoch)


TRAIN_PRESETS: dict[str, TrainConfig] = {
    # Release: AdamW (0.9, 0.999), wd 1e-2, lr 1e-3, batch 8 x accum 2, 10 epochs, fp16, its stretched warm-up +
    # cosine, reconstruction -> alignment ramp over the epochs.
    "paper": TrainConfig(),
    # CPU-sized: no accumulation, short warm-up, a few hundred steps at most; the loss ramp is off (a short run has
    # no epochs worth ramping over).
    "tiny": TrainConfig(steps=150, epochs=None, batch_size=8, grad_accum=1, lr=3e-3, warmup_steps=10,
                        min_lr_ratio=0.1, checkpoint_every=50, log_every=10, ramp=False, lr_schedule="cosine",
                        mixed_precision="no", prompts="interleaved"),
}


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


def epoch_order(num_clips: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled clip order of one epoch: a function of (seed, epoch) only."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(num_clips, generator=generator)


def _rng_state() -> dict[str, Any]:
    """Python, numpy and torch RNG states as tensors / lists / ints, so torch.load(weights_only=True) reads them."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": version, "state": list(internal), "gauss": gauss},
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    npy = state["numpy"]
    np.random.set_state((npy["kind"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"],
                         npy["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _torch_bytes(obj: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _load_pt(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user-facing problem
        raise MacsError(f"{path}: cannot read checkpoint file ({exc})") from exc


def run_versions() -> dict[str, str]:
    import accelerate
    import safetensors

    from macs_model import __version__

    return {"macs": __version__, "torch": torch.__version__, "accelerate": accelerate.__version__,
            "safetensors": safetensors.__version__, "numpy": np.__version__, "python": platform.python_version()}


def _separator_config(model: nn.Module) -> SeparatorConfig:
    config = getattr(model, "config", None)
    if not isinstance(config, SeparatorConfig):
        raise MacsError(f"train: the model ({type(model).__name__}) has no SeparatorConfig in .config")
    return config


def latest_checkpoint(out_dir: str | os.PathLike) -> Path | None:
    """The checkpoint directory ``out_dir/latest`` names, or None when there is no pointer yet."""
    pointer = Path(out_dir) / LATEST
    if not pointer.is_file():
        return None
    name = pointer.read_text(encoding="utf-8").strip()
    if not name.startswith("checkpoint-") or "/" in name or os.sep in name:
        raise MacsError(f"{pointer}: does not name a checkpoint directory ({name!r})")
    path = Path(out_dir) / name
    if not path.is_dir():
        raise MacsError(f"{pointer}: names {name}, which does not exist")
    return path


def load_model_weights(model: nn.Module, checkpoint: str | os.PathLike) -> None:
    """Load ``checkpoint/model.safetensors`` into ``model`` (strict)."""
    from safetensors.torch import load_file

    path = Path(checkpoint) / MODEL_FILE
    try:
        weights = load_file(str(path))
    except Exception as exc:  # noqa: BLE001
        raise MacsError(f"{path}: cannot read model weights ({exc})") from exc
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        raise MacsError(f"{path}: weights do not fit the model ({exc})") from exc


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


def trim_metrics(path: Path, upto_step: int) -> None:
    """Drop metrics lines after ``upto_step`` (logged after the checkpoint a resumed run restarts from)."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by the interruption
            continue
        if isinstance(record, dict) and record.get("step", 0) <= upto_step:
            kept.append(line + "\n")
    atomic_write_text(path, "".join(kept))


def read_trainer_state(checkpoint: Path) -> dict[str, Any]:
    """A checkpoint's ``trainer_state.json`` (with an integer ``step``); a damaged one is one error."""
    try:
        state = json.loads((checkpoint / STATE_FILE).read_text(encoding="utf-8"))
        state["step"] = int(state["step"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MacsError(f"{checkpoint / STATE_FILE}: cannot read trainer state ({exc})") from exc
    return state


def start_run(out_dir: Path, seed: int, rank: int, main: bool) -> None:
    """A fresh run: seed python, numpy and torch per process; drop an earlier run's pointer and log."""
    random.seed(seed + rank)
    np.random.seed(seed + rank)
    torch.manual_seed(seed + rank)
    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / LATEST).unlink(missing_ok=True)
        (out_dir / METRICS).unlink(missing_ok=True)


def restore_states(checkpoint: Path, state: Mapping[str, Any], optimizer: Any, scheduler: Any, accelerator: Any,
                   out_dir: Path, *, rng_required: bool) -> int:
    """Resume at ``state["step"]`` (returned): optimiser, scheduler and this process's RNG states from the
    checkpoint, and the metrics log cut back to that step (``rng_required=False``: a process the checkpoint has
    no RNG file for keeps its own, as when resuming with more processes)."""
    optimizer.load_state_dict(_load_pt(checkpoint / OPTIMIZER_FILE))
    scheduler.load_state_dict(_load_pt(checkpoint / SCHEDULER_FILE))
    rng_file = checkpoint / f"rng-{accelerator.process_index}.pt"
    if rng_required or rng_file.exists():
        _set_rng_state(_load_pt(rng_file))
    if accelerator.is_main_process:
        trim_metrics(out_dir / METRICS, state["step"])
    return state["step"]


def write_checkpoint(accelerator: Any, out_dir: Path, at: int, optimizer: Any, scheduler: Any,
                     state: Mapping[str, Any], write_weights: Callable[[Path], None]) -> None:
    """``checkpoint-<at>``: every process's RNG state, and on the main process ``write_weights(folder)``, the
    optimiser and scheduler states and ``state``; assembled under a temporary name, renamed into place, then
    ``latest`` points at it (see the module docstring)."""
    main, rank = accelerator.is_main_process, accelerator.process_index
    name = f"checkpoint-{at}"
    tmp = out_dir / f".{name}.tmp"
    if main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    atomic_write_bytes(tmp / f"rng-{rank}.pt", _torch_bytes(_rng_state()))
    if main:
        write_weights(tmp)
        atomic_write_bytes(tmp / OPTIMIZER_FILE, _torch_bytes(optimizer.state_dict()))
        atomic_write_bytes(tmp / SCHEDULER_FILE, _torch_bytes(scheduler.state_dict()))
        atomic_write_text(tmp / STATE_FILE, dumps_json({"step": at, **state}))
    accelerator.wait_for_everyone()
    if main:
        final = out_dir / name
        if final.exists():  # a leftover the pointer never named (or names no longer): replace it
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(out_dir)
        atomic_write_text(out_dir / LATEST, name + "\n")
    accelerator.wait_for_everyone()


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


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def progress_bar(enabled: bool):
    """A rich progress bar (steps, rate, ETA), or a no-op context yielding None."""
    if not enabled:
        return _NullBar()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
        TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn())


class _NullBar:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
