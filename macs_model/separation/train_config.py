"""Stage-1 training configuration (paper §3.1-3.2, the release's recipe) with named presets."""

from __future__ import annotations

import math
from dataclasses import dataclass

from macs_bench.errors import MacsError
from macs_model.named_config import NamedConfig


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
