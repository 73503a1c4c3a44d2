"""Shared pieces of the model benchmarks: random models at the real architectures, toy inputs, timed workloads.

Every workload runs the project's own code path (``generate_images``, ``train_adapter``, the separator and its
losses, the scoring encoders) on random weights: the published weights cannot be downloaded here and the work per
input is the same. Imported by the scripts beside it (``python benchmarks/<script>.py`` puts this folder first on
the path).
"""

from __future__ import annotations

import copy
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image


def char_tokenizer(folder: Path):
    """A character-level RoBERTa BPE tokenizer (CLAP's text side needs one; the real one is a download)."""
    from macs_model.separation.clap import load_tokenizer

    symbols = ["<s>", "<pad>", "</s>", "<unk>"] + [chr(b) for b in range(33, 127)] + ["Ġ", "<mask>"]
    (folder / "vocab.json").write_text(json.dumps({s: i for i, s in enumerate(symbols)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return load_tokenizer(folder)[0]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def sd14_components(device: torch.device, seed: int = 0):
    """Stable Diffusion v1.4's architecture (UNet 860 M, VAE 84 M, CLIP ViT-L/14 text encoder) with random
    weights, built on ``device``; the tokenizer is the tiny character-level one (77 tokens, as SD's)."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from macs_model.generation.components import Components, tiny_components

    tokenizer = tiny_components(seed).tokenizer
    torch.manual_seed(seed)
    with torch.device(device):
        unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8)
        vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, sample_size=512, layers_per_block=2,
                            block_out_channels=(128, 256, 512, 512),
                            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
        text = CLIPTextModel(CLIPTextConfig(
            vocab_size=len(tokenizer), hidden_size=768, intermediate_size=3072, num_attention_heads=12,
            num_hidden_layers=12, max_position_embeddings=77, hidden_act="quick_gelu",
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id))
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                              beta_schedule="scaled_linear", steps_offset=1)
    return Components(vae.eval(), text.eval(), tokenizer, unet, scheduler,
                      {"base": "random SD v1.4 architecture", "seed": seed})


def components_for(arch: str, device: torch.device):
    """``tiny`` (the tests' small random SD, CPU-fast) or ``sd14`` (SD v1.4's architecture, random)."""
    from macs_model.generation.components import tiny_components

    return tiny_components(0) if arch == "tiny" else sd14_components(device)


def generator_config(arch: str, **overrides: Any):
    """The tiny preset, or the paper preset (512², 20 DPM-Solver steps, CFG 7.5, fp16) for ``sd14``."""
    from macs_model.generation.config import GeneratorConfig

    if arch == "tiny":
        return GeneratorConfig.preset("tiny", clap_dim=32, **overrides)
    return GeneratorConfig.preset("paper", **overrides)


def write_frames(folder: Path, n: int, size: int, seed: int = 0) -> list[Path]:
    """n smooth random RGB JPEG frames of size x size."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        small = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
        path = folder / f"frame{i:04d}.jpg"
        Image.fromarray(small).resize((size, size), Image.BICUBIC).save(path, quality=90)
        paths.append(path)
    return paths


def unit_embeddings(n: int, k: int, dim: int, seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    rows = torch.randn(n, k, dim, generator=gen)
    return list(rows / rows.norm(dim=-1, keepdim=True))


def generation_rate(components, config, images: int, batch_size: int, device: torch.device,
                    warmup: bool = True) -> float:
    """Images per second of ``generate_images`` (PNG writing included) at ``batch_size``, after a warm-up call."""
    from macs_model.generation.components import build_adapter
    from macs_model.generation.pipeline import generate_images

    torch.manual_seed(0)
    _, tokens = build_adapter(components, config)
    items = [(f"g{i:04d}", e) for i, e in enumerate(unit_embeddings(images, config.num_tokens, config.clap_dim))]
    with tempfile.TemporaryDirectory() as tmp:
        if warmup:
            generate_images(components, config, tokens, items[:batch_size], Path(tmp) / "warm",
                            batch_size=batch_size, device=device, progress=False)
        sync(device)
        start = time.perf_counter()
        generate_images(components, config, tokens, items, Path(tmp) / "timed", batch_size=batch_size,
                        device=device, progress=False)
        sync(device)
        return images / (time.perf_counter() - start)


def stage2_step_times(make_components: Callable[[], Any], config, frames: list[Path], work: Path,
                      latent_dir: Path | None) -> list[float]:
    """Seconds of each stage-2 optimiser step of one ``train_adapter`` run after its first."""
    from macs_model.generation.training import TrainItem, train_adapter

    items = [TrainItem(f"f{i:04d}", path, e)
             for i, (path, e) in enumerate(zip(frames, unit_embeddings(len(frames), config.num_tokens,
                                                                      config.clap_dim)))]
    run = Path(tempfile.mkdtemp(dir=work))
    train_adapter(make_components(), items, config, run, progress=False, latent_dir=latent_dir)
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return list(np.diff([row["seconds"] for row in logged]))


def stage2_cache_times(arch: str, device: torch.device, steps: int, batch_size: int, warmup: bool = True,
                       rounds: int = 1) -> dict[str, float]:
    """Median seconds per stage-2 step: without the latent cache, filling it (first epoch) and reading it (warm).

    A short warm-up run comes first, so that one-time costs (kernel selection, allocations) fall in none. Then
    one run fills the cache, and ``rounds`` pairs of runs without / with the warm cache alternate, so that a busy
    machine slows both alike; medians over all their steps after the first. ``steps`` x ``batch_size`` frames
    make one epoch, so the filling run encodes each frame once and the warm runs encode none.
    """
    config = generator_config(arch, steps=steps, epochs=None, batch_size=batch_size, grad_accum=1, log_every=1,
                              checkpoint_every=10**6)
    base = components_for(arch, device)

    def fresh():
        return copy.deepcopy(base)

    plain, warm = [], []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        frames = write_frames(work / "frames", steps * batch_size, max(config.height, config.width) + 8)
        if warmup:
            stage2_step_times(fresh, config.replace(steps=2), frames, work, None)
        filling = stage2_step_times(fresh, config, frames, work, work / "latents")
        for _ in range(rounds):
            plain += stage2_step_times(fresh, config, frames, work, None)
            warm += stage2_step_times(fresh, config, frames, work, work / "latents")
    plain_s, warm_s = float(np.median(plain)), float(np.median(warm))
    return {"step_seconds_without_cache": plain_s, "step_seconds_filling_cache": float(np.median(filling)),
            "step_seconds_with_warm_cache": warm_s, "ratio_without_over_warm": plain_s / warm_s}


def latent_times(arch: str, device: torch.device, batch_size: int, repeats: int = 20) -> dict[str, float]:
    """Median seconds to get one step's frame latents: decode + VAE-encode vs read from the warm cache.

    The part of a stage-2 step the cache replaces, timed alone in alternating rounds (``frame_latents``).
    """
    from macs_model.generation.latent_cache import LatentCache, frame_latents
    from macs_model.generation.training import TrainItem

    config = generator_config(arch)
    vae = components_for(arch, device).vae.to(device)
    if device.type == "cuda" and config.mixed_precision == "fp16":
        vae = vae.to(torch.float16)
    with tempfile.TemporaryDirectory() as tmp:
        frames = write_frames(Path(tmp) / "frames", batch_size, max(config.height, config.width) + 8)
        items = [TrainItem(f"f{i:04d}", path, None) for i, path in enumerate(frames)]
        cache = LatentCache(Path(tmp) / "latents", vae)
        frame_latents(vae, items, [None] * len(items), config.height, config.width, cache)  # fills it (and warms up)
        timings: dict[str, list[float]] = {"encode": [], "cache": []}
        for _ in range(repeats):
            for name, source in (("encode", None), ("cache", cache)):
                sync(device)
                start = time.perf_counter()
                frame_latents(vae, items, [None] * len(items), config.height, config.width, source)
                sync(device)
                timings[name].append(time.perf_counter() - start)
    encode, read = float(np.median(timings["encode"])), float(np.median(timings["cache"]))
    return {"latents_seconds_encode": encode, "latents_seconds_cache": read, "latents_ratio": encode / read}


def stage1_step_seconds(preset: str, device: torch.device, half: bool, batch: int, repeats: int,
                        tiny_clap: bool, warmup: bool = True) -> float:
    """Mean seconds of one stage-1 training step (separator, MixIT, CLAP contrastive + ranking, backward, AdamW),
    in fp32 or under fp16 autocast with a gradient scaler, after one warm-up step."""
    from macs_model.separation.alignment import ClapAlignment
    from macs_model.separation.clap import ClapEncoder, TinyClap, build_clap_model
    from macs_model.separation.config import SeparatorConfig
    from macs_model.separation.losses import mixit_loss
    from macs_model.separation.separator import build_separator
    from macs_model.separation.training import make_mixture_of_mixtures

    torch.manual_seed(0)
    config = SeparatorConfig.preset(preset)
    model = build_separator(config).to(device).train()
    if tiny_clap:
        encoder = TinyClap(input_rate=config.sample_rate)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            encoder = ClapEncoder(build_clap_model({"vocab_size": 101}), char_tokenizer(Path(tmp)))
    align = ClapAlignment(encoder, config.num_sources).to(device)
    optimizer = torch.optim.AdamW(list(model.parameters()) + align.trainable(), lr=1e-3)
    scaler = torch.amp.GradScaler(device.type, enabled=half)
    clips = 0.1 * torch.randn(batch, config.clip_samples, device=device)
    labels = [["Dog", "Bark"], ["Rain"], ["Speech", "Music", "Car"], ["Bird"]] * batch

    def step():
        mixture, mix1, mix2 = make_mixture_of_mixtures(clips)
        with torch.autocast(device.type, dtype=torch.float16, enabled=half):
            sources = model(mixture)
            rec, _ = mixit_loss(sources, mix1, mix2)
            l_cl, l_rank = align(sources, {"labels": labels[:batch], "mixture": mixture})
            loss = rec + l_cl + l_rank
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)

    if warmup:
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    sync(device)
    return (time.perf_counter() - start) / repeats


def torchsort_check(device: torch.device) -> dict[str, Any]:
    """torchsort's soft ranks on ``device`` against the CPU's, with their gradients."""
    from importlib.metadata import version

    import torchsort

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 6, generator=gen, dtype=torch.float64)
    ranks, grads = [], []
    for where in (torch.device("cpu"), device):
        leaf = x.to(where).requires_grad_()
        r = torchsort.soft_rank(leaf, regularization="l2", regularization_strength=1.0)
        (r * torch.arange(6, device=where)).sum().backward()
        ranks.append(r.detach().cpu())
        grads.append(leaf.grad.cpu())
    return {"device": str(device), "version": version("torchsort"),
            "max_abs_rank_diff": float((ranks[0] - ranks[1]).abs().max()),
            "max_abs_grad_diff": float((grads[0] - grads[1]).abs().max())}


def scoring_rate(preset: str, device: torch.device, images: int, batch_size: int = 32) -> dict[str, float]:
    """Images per second through the two image encoders of scoring (Inception, CLIP): decode, preprocess, encode."""
    from macs_bench.features.encoders import build_encoders

    encoders = build_encoders(preset, seed=0)
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_frames(Path(tmp), images, 512)
        for name in ("inception", "clip"):
            encoder = encoders[name].to(device)
            encoder.encode([encoder.preprocess(paths[0])], device)  # warm-up
            sync(device)
            start = time.perf_counter()
            for i in range(0, images, batch_size):
                encoder.encode([encoder.preprocess(p) for p in paths[i:i + batch_size]], device)
            sync(device)
            rates[f"{name}_images_per_second"] = images / (time.perf_counter() - start)
    rates["both_images_per_second"] = 1 / sum(1 / r for r in rates.values())
    return rates
