"""Stage-2 configuration: the adapter, its training and generation, with named presets."""

from __future__ import annotations

from dataclasses import dataclass

from macs_bench.errors import MacsError
from macs_model.named_config import NamedConfig

# run_info entries a resume must share with the checkpoint: another fold would leak its test samples into training.
RESUME_KEYS = ("manifest", "fold", "embeddings_key")
MIXED_PRECISION = ("no", "fp16", "bf16")
BASES = ("sd", "tiny")
CHOICES = {"lr_schedule": ("release", "cosine"), "grad_clip_mode": ("value", "norm"), "cfg_drop": ("batch", "clip"),
           "image_mode": ("buckets", "centre-crop"), "token_order": ("slot", "similarity")}


@dataclass(frozen=True)
class GeneratorConfig(NamedConfig):
    """Stage-2 settings; the defaults are the release's (``GENERATOR_PRESETS["paper"]``).

    ``base``: "sd" (Stable Diffusion v1.x from weights) or "tiny" (random small components, tests only).
    Length: ``steps`` optimiser steps if set, else ``epochs``. ``decoupled`` False is the "w/o DC" ablation (audio
    tokens appended to the text tokens).

    Derived from the release's ``train.py`` / ``train.sh`` / ``dataloader/llp.py`` / ``modules/custom.py``:

    - ``cfg_dropout`` / ``cfg_drop``: the release zeroes the audio of the whole micro-batch when
      ``random.random() <= 0.1`` ("batch"); "clip" draws per clip.
    - ``grad_clip`` / ``grad_clip_mode``: ``accelerator.clip_grad_value_(params, 1.0)`` ("value"); "norm" clips
      the global norm.
    - ``lr_schedule`` "release": ``get_scheduler("cosine", warmup = (T // 10) * A, total = T * A)`` with T the
      optimiser steps and A = ``grad_accum``, stepped by accelerate once per optimiser step (one process). So the
      run warms up linearly over its first (T // 10) * A steps (80 % of it at A = 8) and covers only the first
      1 / A of the cosine (the lr ends at 0.998 lr for A = 8). "cosine": ``warmup_steps``, then a cosine over
      the run down to ``min_lr_ratio``.
    - ``mixed_precision`` "fp16" (accelerate's default in ``train.py``).
    - ``image_mode`` "buckets": aspect-ratio buckets, stretch-resize, random flip (``image_buckets``);
      "centre-crop": a square centre crop at ``height`` x ``width``.
    - ``audio_seconds``: the window the separator and CLAP hear (``input_length`` 8 s; None: the whole clip);
      random from the run's seed in training, centred at generation (``audio_window``).
    - ``token_order`` "slot": tokens in the separator's slot order, as the release's E_pos rows and MLP were
      trained; "similarity" re-sorts them by CLAP similarity to the mixture (our earlier choice).
    - Initialisation: the tokens' MLP is Xavier-normal with zero biases, E_pos N(0, 0.05) (``MLP``).
    """

    base: str = "sd"
    height: int = 512
    width: int = 512
    num_tokens: int = 6
    clap_dim: int = 512
    decoupled: bool = True
    prompt: str = ""
    steps: int | None = None
    epochs: int | None = 15
    batch_size: int = 2
    grad_accum: int = 8
    lr: float = 1e-4
    weight_decay: float = 1e-2
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    lr_schedule: str = "release"
    grad_clip: float | None = 1.0
    grad_clip_mode: str = "value"
    cfg_dropout: float = 0.1
    cfg_drop: str = "batch"
    image_mode: str = "buckets"
    audio_seconds: float | None = 8.0
    token_order: str = "slot"
    mixed_precision: str = "fp16"
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 10
    inference_steps: int = 20
    guidance_scale: float = 7.5

    KIND = "generator"

    @property
    def audio_variant(self):
        """The conditioning class ``decoupled`` names (``DecoupledAudio`` or ``AppendedAudio``, see
        :mod:`macs_model.generation.adapter`): every variant-specific step asks it, never the flag."""
        from macs_model.generation.adapter import audio_variant

        return audio_variant(self.decoupled)

    def __post_init__(self) -> None:
        if self.base not in BASES:
            raise MacsError(f"generator config: base must be one of {', '.join(BASES)}, got {self.base!r}")
        if self.mixed_precision not in MIXED_PRECISION:
            raise MacsError(f"generator config: mixed_precision must be one of {', '.join(MIXED_PRECISION)}")
        if self.steps is None and self.epochs is None:
            raise MacsError("generator config: set steps or epochs")
        self.check_positive_ints("steps", "epochs", optional=True)
        self.check_positive_ints("height", "width", "num_tokens", "clap_dim", "batch_size", "grad_accum",
                                 "checkpoint_every", "log_every", "inference_steps")
        if self.height % 8 or self.width % 8:
            raise MacsError(f"generator config: height and width must be multiples of 8, got {self.height}x{self.width}")
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise MacsError(f"generator config: {name} must be one of {', '.join(allowed)}, "
                                f"got {getattr(self, name)!r}")
        if self.audio_seconds is not None and not self.audio_seconds > 0:
            raise MacsError(f"generator config: audio_seconds must be positive or None, got {self.audio_seconds}")
        if self.image_mode == "buckets" and self.height != self.width:
            raise MacsError("generator config: image_mode 'buckets' needs a square base size (height == width)")
        if not 0.0 <= self.cfg_dropout < 1.0:
            raise MacsError(f"generator config: cfg_dropout must be in [0, 1), got {self.cfg_dropout}")
        if not self.lr > 0 or self.guidance_scale < 0:
            raise MacsError("generator config: lr must be positive and guidance_scale non-negative")

    @classmethod
    def presets(cls) -> dict[str, "GeneratorConfig"]:
        """The built-in presets and those plug-ins register (the synthetic world's ``world``)."""
        from macs_model.registry import generator_presets

        return {**GENERATOR_PRESETS, **generator_presets()}


GENERATOR_PRESETS: dict[str, GeneratorConfig] = {
    # Release: lr 1e-4, batch 2 x accum 8, 15 epochs, fp16, its stretched warm-up + cosine, clip by value 1,
    # per-batch CFG drop, buckets + flip, 8 s audio, slot order; DPM-Solver 20 steps, guidance 7.5, 512 x 512.
    "paper": GeneratorConfig(),
    # CPU-sized: random small SD, 32 x 32 images, 20 steps, 4 sampling steps. The release's choices where they
    # cost nothing on a CPU (slot order, clip by value, per-batch CFG drop); a cosine over the short run, the
    # square crop and the whole (short) clip.
    "tiny": GeneratorConfig(base="tiny", height=32, width=32, clap_dim=512, steps=20, epochs=None, batch_size=2,
                            grad_accum=1, lr=1e-3, mixed_precision="no", checkpoint_every=10, log_every=5,
                            inference_steps=4, guidance_scale=3.0, lr_schedule="cosine", image_mode="centre-crop",
                            audio_seconds=None),
}
