"""Stage 2 (paper §3.3): train the audio adapter on a frozen Stable Diffusion, and generate with the stock pipeline.

Training is noise-prediction MSE on VAE latents (the base's DDPM schedule) with the empty prompt (or one given),
10 % of the clips' audio embeddings zeroed for classifier-free guidance, AdamW + cosine, gradient accumulation
and mixed precision through accelerate. Checkpoints hold only the adapter (safetensors), the optimiser and
scheduler states and the RNG states; rerunning resumes. Generation uses diffusers' ``StableDiffusionPipeline``
with ``ip_adapter_image_embeds`` (the unconditional branch: zero audio through the adapter, never through the text
k/v), DPM-Solver, and a seed derived from each sample id; images already written are skipped.

``tiny_components`` builds a small random SD (UNet, VAE, CLIP text encoder, tokenizer) from configs for tests and
the ``tiny`` preset; the ``paper`` preset loads SD v1.4 from ``macs-bench weights`` or a given path / hub id.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from macs_bench.errors import MacsError
from macs_bench.io import atomic_write_bytes, atomic_write_text, dumps_json
from macs_model.adapter import (
    ADAPTER_CONFIG,
    ADAPTER_FILE,
    adapter_state_dict,
    install_adapter,
    load_adapter_state,
    read_adapter,
    save_adapter,
    unet_inputs,
)
from macs_model.config import NamedConfig
from macs_model.image_buckets import bucket_sizes, epoch_views, image_size, load_image, nearest_bucket
from macs_model.latent_cache import LatentCache, frame_latents
from macs_model.tokens import AudioTokens
from macs_model.training import (
    METRICS,
    cosine_with_warmup,
    epoch_order,
    latest_checkpoint,
    progress_bar,
    read_trainer_state,
    release_lr,
    restore_states,
    run_versions,
    start_run,
    write_checkpoint,
)

SD_WEIGHTS = "stable-diffusion-v1-4"
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
        return GENERATOR_PRESETS


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
    # The synthetic world's trained SD base (macs_bench.world: pass its sd/ folder as the base), 32 x 32 images;
    # its 2 s clips are heard whole, its square frames centre-cropped, as the tiny preset does.
    "world": GeneratorConfig(base="sd", height=32, width=32, clap_dim=64, steps=300, epochs=None, batch_size=16,
                             grad_accum=1, lr=1e-3, mixed_precision="no", checkpoint_every=100, log_every=20,
                             inference_steps=20, guidance_scale=3.0, lr_schedule="cosine", image_mode="centre-crop",
                             audio_seconds=None),
}


@dataclass
class Components:
    """A frozen Stable Diffusion and where it came from."""

    vae: Any
    text_encoder: Any
    tokenizer: Any
    unet: Any
    scheduler: Any
    source: dict[str, Any]


def _write_clip_tokenizer(folder: Path) -> None:
    """A character-level CLIP BPE vocabulary (every lower-case ASCII word tokenizes), for the tiny text encoder."""
    symbols = ["<|startoftext|>", "<|endoftext|>"]
    for b in range(33, 127):
        symbols += [chr(b), chr(b) + "</w>"]
    (folder / "vocab.json").write_text(json.dumps({s: i for i, s in enumerate(symbols)}), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")


def tiny_components(seed: int = 0, cross_attention_dim: int = 32) -> Components:
    """A small random SD from configs (offline, CPU-fast): latents 4 x H/2 x W/2, text width 32."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=16, block_out_channels=(32, 64), layers_per_block=1, cross_attention_dim=cross_attention_dim,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"), norm_num_groups=32)
    vae = AutoencoderKL(block_out_channels=(32, 64), down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=32)
    with tempfile.TemporaryDirectory() as tmp:
        _write_clip_tokenizer(Path(tmp))
        tokenizer = CLIPTokenizer(str(Path(tmp) / "vocab.json"), str(Path(tmp) / "merges.txt"), model_max_length=77)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=cross_attention_dim, intermediate_size=64, num_attention_heads=4,
        num_hidden_layers=2, max_position_embeddings=77, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                              beta_schedule="scaled_linear", steps_offset=1)
    return Components(vae, text_encoder, tokenizer, unet, scheduler,
                      {"base": "tiny", "note": "random small SD built from configs (not Stable Diffusion)",
                       "seed": seed})


def load_components(config: GeneratorConfig, base: str | os.PathLike | None = None) -> Components:
    """The frozen base the config names: SD v1.x from ``base`` (local folder or hub id) or the verified registry
    snapshot of SD v1.4; or the tiny random one."""
    if config.base == "tiny":
        return tiny_components(config.seed)
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    from macs_bench import weights

    if base is None:
        where, source = weights.path(SD_WEIGHTS), {"weights": SD_WEIGHTS, "repo": weights.WEIGHTS[SD_WEIGHTS].repo_id,
                                                   "revision": weights.WEIGHTS[SD_WEIGHTS].revision}
    else:
        where, source = str(base), {"base": str(base)}
    try:
        parts = Components(
            AutoencoderKL.from_pretrained(where, subfolder="vae"),
            CLIPTextModel.from_pretrained(where, subfolder="text_encoder"),
            CLIPTokenizer.from_pretrained(where, subfolder="tokenizer"),
            UNet2DConditionModel.from_pretrained(where, subfolder="unet"),
            DDPMScheduler.from_pretrained(where, subfolder="scheduler"),
            {**source, "path": str(where)})
    except (OSError, ValueError) as exc:
        raise MacsError(f"{where}: cannot load Stable Diffusion ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc
    return parts


def build_adapter(components: Components, config: GeneratorConfig) -> tuple[torch.nn.Module, AudioTokens]:
    """Install fresh audio tokens (+ decoupled k/v) on the components' UNet; returns (trainable module, tokens)."""
    tokens = AudioTokens(config.num_tokens, config.clap_dim, token_dim=components.unet.config.cross_attention_dim)
    components.vae.requires_grad_(False)
    components.text_encoder.requires_grad_(False)
    trainable = install_adapter(components.unet, tokens, decoupled=config.decoupled)
    return trainable, tokens


@torch.no_grad()
def encode_prompt(components: Components, prompt: str, device: torch.device) -> torch.Tensor:
    """[1, L, D] text-encoder states of ``prompt`` (the empty prompt by default), as SD computes them."""
    tok = components.tokenizer
    ids = tok([prompt], padding="max_length", max_length=tok.model_max_length, truncation=True,
              return_tensors="pt").input_ids.to(device)
    return components.text_encoder(ids)[0]




@dataclass(frozen=True)
class TrainItem:
    """One training pair: the ground-truth frame and the clip's CLAP embeddings [K, clap_dim], or [W, K, clap_dim]
    with one audio window per epoch (epoch e uses window e mod W)."""

    sample_id: str
    image: Path
    embeddings: torch.Tensor


def make_accelerator(config: GeneratorConfig):
    """accelerate's Accelerator for stage 2: the config's mixed precision on GPU, full precision on CPU."""
    from accelerate import Accelerator

    gpu = torch.cuda.is_available()
    return Accelerator(mixed_precision=config.mixed_precision if gpu else "no", cpu=not gpu)


def train_adapter(components: Components, items: Sequence[TrainItem], config: GeneratorConfig,
                  out_dir: str | os.PathLike, *, resume: bool = True, progress: bool = True,
                  stop_at_step: int | None = None, run_info: Mapping[str, Any] | None = None,
                  accelerator: Any = None, latent_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Train the adapter on ``items``; the run folder gets checkpoints, ``metrics.jsonl`` and ``adapter/``.

    With ``latent_dir`` the frames' VAE latents are cached there (``macs_model.latent_cache``), not re-encoded."""
    if not items:
        raise MacsError("train generator: no training items")
    out_dir = Path(out_dir)
    accelerator = accelerator or make_accelerator(config)
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
    if config.lr_schedule == "release":
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: release_lr(s, total, config.grad_accum))
    else:
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: cosine_with_warmup(s, total, config.warmup_steps, config.min_lr_ratio))
    buckets = ([nearest_bucket(*image_size(item.image), bucket_sizes(config.height)) for item in items]
               if config.image_mode == "buckets" else None)
    run_info = json.loads(dumps_json(dict(run_info or {})))
    adapter_config = {"generator_config": config.to_dict(), "base": components.source,
                      "cross_attention_dim": unet.config.cross_attention_dim, "run_info": run_info,
                      "versions": run_versions()}
    step = 0
    checkpoint = latest_checkpoint(out_dir) if resume else None
    if checkpoint is not None:
        state = read_trainer_state(checkpoint)
        if state.get("generator_config") != config.to_dict():
            raise MacsError(f"{checkpoint}: cannot resume: the checkpoint's generator config differs from this "
                            "run's; use a new --out or --restart")
        saved_run = state.get("run_info") or {}
        differ = sorted(k for k in RESUME_KEYS if saved_run.get(k) != run_info.get(k))
        if differ:
            raise MacsError(f"{checkpoint}: cannot resume: the checkpoint was trained with another "
                            f"{', '.join(differ)}; use a new --out or --restart")
        adapter_state, _ = read_adapter(checkpoint)
        load_adapter_state(unet, adapter_state, str(checkpoint), tokens=tokens, decoupled=config.decoupled)
        step = restore_states(checkpoint, state, optimizer, scheduler, accelerator, out_dir, rng_required=True)
    else:
        start_run(out_dir, config.seed, rank, main)
    if main:
        atomic_write_text(out_dir / "config.json", dumps_json({"generator_config": config.to_dict(),
                                                               "base": components.source, "run_info": run_info,
                                                               "versions": run_versions()}))
    module = unet if config.decoupled else tokens
    module, optimizer = accelerator.prepare(module, optimizer)
    text = encode_prompt(components, config.prompt, device)
    noise_scheduler = components.scheduler

    def save(at: int) -> None:
        write_checkpoint(accelerator, out_dir, at, optimizer, scheduler,
                         {"total_steps": total, "generator_config": config.to_dict(), "run_info": run_info},
                         lambda folder: save_adapter(folder, unet, adapter_config, tokens=tokens,
                                                     decoupled=config.decoupled))

    stop = total if stop_at_step is None else min(total, stop_at_step)
    started, last = time.perf_counter(), {}
    order_epoch, order, views = -1, None, None
    module.train()
    with progress_bar(progress and main) as bar:
        task = bar.add_task("stage-2 training", total=total, completed=step) if bar is not None else None
        while step < stop:
            epoch = step // per_epoch
            if epoch != order_epoch:
                (order, views), order_epoch = _epoch_plan(len(items), buckets, config, epoch), epoch
            loss_sum = 0.0
            for micro in range(config.grad_accum):
                index = (step % per_epoch) * config.grad_accum + micro
                first = index * config.batch_size * nproc + rank * config.batch_size
                positions = range(first, first + config.batch_size)
                batch = [items[int(order[i])] for i in positions]
                # through the prepared module, so that several processes average their gradients
                loss = _diffusion_loss(components, module if config.decoupled else unet,
                                       tokens if config.decoupled else module, batch, [views[i] for i in positions],
                                       epoch, text, noise_scheduler, config, device, weight_dtype, latent_cache)
                sync = micro == config.grad_accum - 1
                with contextlib.nullcontext() if sync or nproc == 1 else accelerator.no_sync(module):
                    accelerator.backward(loss / config.grad_accum)
                loss_sum += float(loss.detach()) / config.grad_accum
            if config.grad_clip is not None and config.grad_clip_mode == "value":
                accelerator.clip_grad_value_(params, config.grad_clip)
            elif config.grad_clip is not None:
                accelerator.clip_grad_norm_(params, config.grad_clip)
            lr = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if bar is not None:
                bar.update(task, completed=step)
            if step % config.log_every == 0 or step == total:
                last = {"step": step, "epoch": epoch, "loss": loss_sum, "lr": lr,
                        "seconds": round(time.perf_counter() - started, 3)}
                if main:
                    with open(out_dir / METRICS, "a", encoding="utf-8") as fh:
                        fh.write(json.dumps(last) + "\n")
            if step % config.checkpoint_every == 0 or step == total:
                save(step)
    if main and step == total:
        save_adapter(out_dir / "adapter", unet, adapter_config, tokens=tokens, decoupled=config.decoupled)
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
    kwargs = unet_inputs(text.expand(len(batch), -1, -1).to(weight_dtype), audio, decoupled=config.decoupled,
                         tokens=tokens)
    with torch.autocast(device.type, dtype=weight_dtype, enabled=weight_dtype != torch.float32):
        prediction = unet(noisy.to(weight_dtype), timesteps, **kwargs).sample
    return torch.nn.functional.mse_loss(prediction.float(), target.float())


def load_trained(folder: str | os.PathLike, components: Components | None = None,
                 base: str | os.PathLike | None = None, *, allow_partial: bool = False
                 ) -> tuple[Components, GeneratorConfig, AudioTokens]:
    """Components with a saved adapter installed, from an adapter folder, a run folder's final ``adapter/`` or
    (``allow_partial``) an unfinished run's latest checkpoint; the base is loaded from the adapter's config unless
    ``components`` are given. ``components.source`` records the adapter folder and its sha256."""
    from macs_bench.io import sha256_file

    folder = Path(folder)
    if not (folder / ADAPTER_FILE).is_file():
        if (folder / "adapter" / ADAPTER_FILE).is_file():
            folder = folder / "adapter"
        else:
            candidate = latest_checkpoint(folder)
            if candidate is None:
                raise MacsError(f"{folder}: no adapter ({ADAPTER_FILE}) and no checkpoint")
            if not allow_partial:
                raise MacsError(f"{folder}: training has not finished (latest: {candidate.name}); finish it, or "
                                "pass --allow-partial to generate with that checkpoint")
            folder = candidate
    state, saved = read_adapter(folder)
    try:
        config = GeneratorConfig.from_dict(saved["generator_config"])
    except KeyError:
        raise MacsError(f"{folder / ADAPTER_CONFIG}: no generator_config") from None
    if base is None and config.base == "sd":
        base = (saved.get("base") or {}).get("base")  # the SD the adapter was trained on or imported for
    components = components or load_components(config, base)
    _, tokens = build_adapter(components, config)
    load_adapter_state(components.unet, state, str(folder), tokens=tokens, decoupled=config.decoupled)
    components.unet.eval()
    tokens.eval()
    components.source = {**components.source, "adapter": str(folder),
                         "adapter_sha256": sha256_file(folder / ADAPTER_FILE)}
    return components, config, tokens


def sample_seed(sample_id: str, seed: int = 0) -> int:
    """The generation seed of one sample: a hash of (seed, sample id), so it does not depend on batching or order."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{sample_id}".encode()).digest()[:8], "big") % (2**63)


def pipeline(components: Components):
    """diffusers' ``StableDiffusionPipeline`` over the components, with DPM-Solver and no safety checker.

    One method differs from the stock pipeline: ``ip_adapter_image_embeds`` are taken as one row per prompt
    ([negatives; positives] under guidance). The stock method assumes one embedding shared by the whole batch
    and repeats it batch-size times, which would let every image attend to the audio of all its batch-mates.
    """
    from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline

    class PerSamplePipeline(StableDiffusionPipeline):
        def prepare_ip_adapter_image_embeds(self, ip_adapter_image, ip_adapter_image_embeds, device,
                                            num_images_per_prompt, do_classifier_free_guidance):
            if ip_adapter_image_embeds is None:
                raise MacsError("the audio pipeline needs ip_adapter_image_embeds (the sources' audio embeddings)")
            return [embeds.to(device) for embeds in ip_adapter_image_embeds]

    return PerSamplePipeline(
        vae=components.vae, text_encoder=components.text_encoder, tokenizer=components.tokenizer,
        unet=components.unet, scheduler=DPMSolverMultistepScheduler.from_config(components.scheduler.config),
        safety_checker=None, feature_extractor=None, image_encoder=None, requires_safety_checker=False)


@torch.no_grad()
def generate_images(components: Components, config: GeneratorConfig, tokens: AudioTokens,
                    items: Sequence[tuple[str, torch.Tensor]], out_dir: str | os.PathLike, *, top_k: int | None = None,
                    batch_size: int = 4, seed: int = 0, device: str | torch.device | None = None,
                    overwrite: bool = False, progress: bool = True) -> list[Path]:
    """Write ``<sample_id>.png`` for each (sample_id, audio embeddings [K, clap_dim] in token order); returns the
    files written.

    Existing images are skipped (so an interrupted run resumes) unless ``overwrite``. ``top_k`` keeps the first K
    embeddings (paper Fig. 4). Each image's noise comes from ``sample_seed(sample_id, seed)``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = torch.float16 if device.type == "cuda" and config.mixed_precision == "fp16" else torch.float32
    pipe = pipeline(components).to(device) if dtype == torch.float32 else pipeline(components).to(device, dtype)
    tokens.to(device, dtype)
    pipe.set_progress_bar_config(disable=True)
    components.unet.eval()
    tokens.eval()  # no dropout in the tokens' MLP at inference
    guided = config.guidance_scale > 1
    todo = [(sid, emb) for sid, emb in items if overwrite or not (out_dir / f"{sid}.png").is_file()]
    text = encode_prompt(components, config.prompt, device).to(dtype)
    written = []
    with progress_bar(progress) as bar:
        task = bar.add_task("generating", total=len(todo)) if bar is not None else None
        for start in range(0, len(todo), batch_size):
            chunk = todo[start:start + batch_size]
            audio = torch.stack([emb[:top_k] if top_k else emb for _, emb in chunk]).to(device, dtype)
            zeros = torch.zeros_like(audio)
            prompt = text.expand(len(chunk), -1, -1)
            generators = [torch.Generator(device="cpu").manual_seed(sample_seed(sid, seed)) for sid, _ in chunk]
            latents = torch.stack([torch.randn(pipe.unet.config.in_channels, config.height // pipe.vae_scale_factor,
                                               config.width // pipe.vae_scale_factor, generator=g)
                                   for g in generators]).to(device, dtype)
            common = dict(num_inference_steps=config.inference_steps, guidance_scale=config.guidance_scale,
                          height=config.height, width=config.width, latents=latents, output_type="pil")
            if config.decoupled:
                embeds = torch.cat([zeros, audio]) if guided else audio
                images = pipe(prompt_embeds=prompt, negative_prompt_embeds=prompt,
                              ip_adapter_image_embeds=[embeds[:, None]], **common).images
            else:
                images = pipe(prompt_embeds=torch.cat([prompt, tokens(audio)], dim=1),
                              negative_prompt_embeds=torch.cat([prompt, tokens(zeros)], dim=1), **common).images
            for (sid, _), image in zip(chunk, images):
                buffer = io.BytesIO()
                image.save(buffer, format="PNG")
                atomic_write_bytes(out_dir / f"{sid}.png", buffer.getvalue())
                written.append(out_dir / f"{sid}.png")
            if bar is not None:
                bar.update(task, advance=len(chunk))
    return written


def adapter_parameters(components: Components, tokens: AudioTokens, decoupled: bool) -> int:
    """Trainable adapter size (what ``adapter.safetensors`` holds)."""
    return sum(v.numel() for v in adapter_state_dict(components.unet, tokens, decoupled=decoupled).values())

