"""Train the world's models from scratch, deterministically on one CPU thread, and measure them on held-out clips.

Data: synthetic clips of ``macs_bench.datasets.synthetic`` with seeds of their own (training 1000, held-out
2000), never the demo's (seeds 0 and 1). Every step is seeded; with ``torch.set_num_threads(1)`` the same torch
build on the same CPU writes the same bytes. Entry point: ``tools/train_world.py``.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from macs_bench.datasets.synthetic import CLASSES, write_synthetic
from macs_bench.world.towers import ClapPair, Towers, image_tensor, normalise

TRAIN_SEED, HELD_SEED = 1000, 2000
NOISE = "Noise"


def world_data(n: int, seed: int, root: Path) -> dict[str, Any]:
    """``n`` synthetic clips: audio [N, T], images [N, 3, 32, 32] in [0, 1], multi-hot labels [N, 4], label sets."""
    from PIL import Image

    from macs_bench.datasets.manifest import manifest_rows, split_list
    from macs_bench.features.inputs import load_audio

    made = write_synthetic(root / f"seed{seed}", n_clips=n, seed=seed, prefix=f"w{seed}-")
    rows = manifest_rows(made.manifest)
    audio, images, sets = [], [], []
    for row in rows:
        audio.append(torch.from_numpy(load_audio(made.media / "audio" / f"{row['sample_id']}.wav")))
        with Image.open(made.media / "frames" / f"{row['sample_id']}.jpg") as img:
            images.append(img.convert("RGB").copy())
        sets.append(tuple(split_list(row["labels"])))
    hot = torch.tensor([[float(c in s) for c in CLASSES] for s in sets])
    return {"audio": torch.stack(audio), "images": image_tensor(images), "hot": hot, "sets": sets}


def _batches(n: int, batch: int, steps: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    order: list[int] = []
    for _ in range(steps):
        while len(order) < batch:
            order += torch.randperm(n, generator=generator).tolist()
        yield torch.tensor(order[:batch])
        order = order[batch:]


def _siglip(a: torch.Tensor, b: torch.Tensor, target: torch.Tensor, scale: torch.Tensor,
            bias: torch.Tensor) -> torch.Tensor:
    """Pairwise sigmoid contrastive loss (SigLIP) between embeddings ``a`` [N, D] and ``b`` [C, D]."""
    logits = normalise(a) @ normalise(b).T * scale.exp() + bias
    return F.binary_cross_entropy_with_logits(logits, target)


def top_k_hits(scores: torch.Tensor, hot: torch.Tensor) -> float:
    """Share of true classes among each row's top-|labels| scored classes (what coverage counts)."""
    hits = total = 0
    for row, truth in zip(scores, hot):
        k = int(truth.sum())
        hits += int(truth[row.topk(k).indices].sum())
        total += k
    return hits / max(1, total)


def train_towers(train: dict, held: dict, steps: int = 600, log: Callable[[str], None] = print) -> tuple:
    """Image + text towers by SigLIP over class names, then the audio tower into the frozen image space
    (wav2clip's recipe: audio/image InfoNCE, positives every batch image with the clip's label set)."""
    torch.manual_seed(10)
    towers = Towers()
    scale, bias = torch.nn.Parameter(torch.tensor(2.3)), torch.nn.Parameter(torch.tensor(-2.0))
    names = list(CLASSES)
    params = [*towers.image.parameters(), *towers.text.parameters(), scale, bias]
    optimizer = torch.optim.AdamW(params, lr=2e-3, weight_decay=1e-4)
    for step, idx in enumerate(_batches(len(train["hot"]), 64, steps, seed=11)):
        loss = _siglip(towers.image(train["images"][idx]), towers.text(names), train["hot"][idx], scale, bias)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 200 == 0:
            log(f"[towers] image/text step {step} loss {loss.item():.4f}")
    towers.image.requires_grad_(False)
    towers.text.requires_grad_(False)
    with torch.no_grad():
        target_train = normalise(towers.image(train["images"]))
        stats_train = towers.audio.statistics(train["audio"])
    temperature = 0.07
    optimizer = torch.optim.AdamW(towers.audio.mlp.parameters(), lr=2e-3, weight_decay=1e-4)
    for step, idx in enumerate(_batches(len(train["hot"]), 64, steps, seed=12)):
        logits = normalise(towers.audio.mlp(stats_train[idx])) @ target_train[idx].T / temperature
        same = (train["hot"][idx][:, None, :] == train["hot"][idx][None, :, :]).all(-1).float()
        soft = same / same.sum(dim=1, keepdim=True)
        loss = 0.5 * (-(soft * logits.log_softmax(1)).sum(1).mean() - (soft * logits.log_softmax(0)).sum(0).mean())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 200 == 0:
            log(f"[towers] audio->image step {step} loss {loss.item():.4f}")
    towers.eval().requires_grad_(False)
    return towers, evaluate_towers(towers, held)


@torch.no_grad()
def evaluate_towers(towers: Towers, held: dict) -> dict[str, float]:
    text = normalise(towers.text(list(CLASSES)))
    image = normalise(towers.image(held["images"]))
    audio = normalise(towers.audio(held["audio"]))
    single = held["hot"].sum(1) == 1
    same_set = (held["hot"][:, None] == held["hot"][None]).all(-1).float()
    nearest = (audio @ image.T).argmax(1)
    return {
        "held_out_clips": len(held["hot"]),
        "image_zero_shot_top1_single_source": float(((image @ text.T).argmax(1) == held["hot"].argmax(1))[single]
                                                     .float().mean()),
        "image_zero_shot_top_k_hits": top_k_hits(image @ text.T, held["hot"]),
        "audio_zero_shot_top_k_hits": top_k_hits(audio @ text.T, held["hot"]),
        "audio_to_image_top1_same_label_set": float(same_set[torch.arange(len(nearest)), nearest].mean()),
        "chance_same_label_set": float(same_set.mean()),
        "chance_top1_single_source": 0.25,
        "chance_top_k_hits": float((held["hot"].sum(1) ** 2 / 4).sum() / held["hot"].sum()),
    }


def _noise_clips(n: int, samples: int, seed: int) -> torch.Tensor:
    """Background the separator's spare outputs hold: faint white noise, some near silence."""
    rng = np.random.default_rng(seed)
    levels = rng.uniform(1e-4, 0.05, size=(n, 1))
    return torch.from_numpy((rng.standard_normal((n, samples)) * levels).astype(np.float32))


def clap_prompts() -> list[str]:
    from macs_bench.datasets.fsd50k import PROMPT_PREFIX

    return [PROMPT_PREFIX + c for c in CLASSES] + [NOISE]


def train_clap(train: dict, held: dict, steps: int = 600, log: Callable[[str], None] = print) -> tuple:
    """The CLAP-like pair by SigLIP over "The sound of <class>" prompts and "Noise" (noise-only clips)."""
    torch.manual_seed(20)
    pair = ClapPair()
    scale, bias = torch.nn.Parameter(torch.tensor(2.3)), torch.nn.Parameter(torch.tensor(-2.0))
    noise = _noise_clips(len(train["hot"]) // 8, train["audio"].shape[1], seed=21)
    with torch.no_grad():
        stats = torch.cat([pair.audio.statistics(train["audio"]), pair.audio.statistics(noise)])
    hot = torch.cat([F.pad(train["hot"], (0, 1)), F.pad(torch.ones(len(noise), 1), (4, 0))])
    prompts = clap_prompts()
    optimizer = torch.optim.AdamW([*pair.audio.mlp.parameters(), *pair.text.parameters(), scale, bias], lr=2e-3,
                                  weight_decay=1e-4)
    for step, idx in enumerate(_batches(len(hot), 64, steps, seed=22)):
        loss = _siglip(pair.audio.mlp(stats[idx]), pair.text(prompts), hot[idx], scale, bias)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 200 == 0:
            log(f"[clap] step {step} loss {loss.item():.4f}")
    pair.eval().requires_grad_(False)
    with torch.no_grad():
        text = normalise(pair.text(prompts))
        scores = normalise(pair.audio(held["audio"])) @ text.T
        noise_held = normalise(pair.audio(_noise_clips(64, held["audio"].shape[1], seed=23))) @ text.T
    return pair, {"audio_text_top_k_hits": top_k_hits(scores[:, :4], held["hot"]),
                  "noise_clips_ranked_noise_first": float((noise_held.argmax(1) == 4).float().mean()),
                  "chance_top_k_hits": float((held["hot"].sum(1) ** 2 / 4).sum() / held["hot"].sum())}


def train_vae(parts: dict, images: torch.Tensor, steps: int, log: Callable[[str], None] = print) -> float:
    """Reconstruction (MSE) + a small KL, images in [-1, 1]; sets SD's ``scaling_factor`` to 1 / latent std."""
    vae = parts["vae"]
    x_all = images * 2 - 1
    optimizer = torch.optim.AdamW(vae.parameters(), lr=1e-3, weight_decay=0.0)
    generator = torch.Generator().manual_seed(31)
    for step, idx in enumerate(_batches(len(x_all), 32, steps, seed=30)):
        posterior = vae.encode(x_all[idx]).latent_dist
        z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=generator)
        loss = F.mse_loss(vae.decode(z).sample, x_all[idx]) + 1e-6 * posterior.kl().mean()
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
    for step, idx in enumerate(_batches(len(mean), 32, steps, seed=40)):
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
        if step % 200 == 0:
            log(f"[sd] unet step {step} loss {loss.item():.4f}")
    unet.eval().requires_grad_(False)
    text_encoder.eval().requires_grad_(False)
    return float(loss.detach())


@torch.no_grad()
def evaluate_sd(parts: dict, towers: Towers, per_set: int = 8) -> dict[str, float]:
    """Draw ``per_set`` images for each of the 14 class sets (stock pipeline, DPM-Solver, 20 steps, CFG 3) and
    check with the world image tower that the prompted motifs are the top-scored classes."""
    from itertools import combinations

    from diffusers import DPMSolverMultistepScheduler

    from macs_bench.world.sd import pipeline, prompt

    pipe = pipeline({**parts, "scheduler": DPMSolverMultistepScheduler.from_config(parts["scheduler"].config)})
    sets = [c for k in (1, 2, 3) for c in combinations(CLASSES, k)]
    prompts = [prompt(s) for s in sets for _ in range(per_set)]
    generator = torch.Generator().manual_seed(50)
    images = pipe(prompts, num_inference_steps=20, guidance_scale=3.0, height=32, width=32, generator=generator,
                  output_type="pil").images
    hot = torch.tensor([[float(c in s) for c in CLASSES] for s in sets for _ in range(per_set)])
    scores = normalise(towers.image(image_tensor(images))) @ normalise(towers.text(list(CLASSES))).T
    return {"samples": len(images), "prompted_classes_top_k_hits": top_k_hits(scores, hot),
            "chance_top_k_hits": float((hot.sum(1) ** 2 / 4).sum() / hot.sum()), "inference_steps": 20,
            "guidance_scale": 3.0}


def train_world(out: Path, *, parts: tuple[str, ...] = ("towers", "clap", "sd"), n_train: int = 1536,
                n_held: int = 256, steps: dict[str, int] | None = None,
                log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train the named parts into ``out`` (towers.safetensors, clap.safetensors, sd/); returns the report.
    Runs on one thread with deterministic algorithms, and restores torch's settings afterwards."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    try:
        return _train_world(Path(out), parts, n_train, n_held, steps, log)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def _train_world(out: Path, parts: tuple[str, ...], n_train: int, n_held: int, steps: dict[str, int] | None,
                 log: Callable[[str], None]) -> dict[str, Any]:
    from safetensors.torch import save_file

    from macs_bench.world import CLAP_FILE, SD_DIR, TOWERS_FILE
    from macs_bench.world.towers import load_towers, state_of

    steps = {"towers": 600, "clap": 600, "vae": 500, "unet": 1500, **(steps or {})}
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"steps": steps, "n_train": n_train, "n_held": n_held, "seeds": [TRAIN_SEED, HELD_SEED],
                              "torch": torch.__version__}
    files: list[str] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        train = world_data(n_train, TRAIN_SEED, Path(tmp))
        held = world_data(n_held, HELD_SEED, Path(tmp))
        log(f"[world] data ready ({time.perf_counter() - started:.0f} s)")
    towers = None
    if "towers" in parts:
        towers, report["towers"] = train_towers(train, held, steps["towers"], log)
        save_file(state_of(towers), str(out / TOWERS_FILE))
        files.append(TOWERS_FILE)
        log(f"[world] towers {report['towers']} ({time.perf_counter() - started:.0f} s)")
    if "clap" in parts:
        pair, report["clap"] = train_clap(train, held, steps["clap"], log)
        save_file(state_of(pair), str(out / CLAP_FILE))
        files.append(CLAP_FILE)
        log(f"[world] clap {report['clap']} ({time.perf_counter() - started:.0f} s)")
    if "sd" in parts:
        from macs_bench.world.sd import build, save

        sd_parts = build(seed=30)
        report["vae_loss"] = train_vae(sd_parts, train["images"], steps["vae"], log)
        report["unet_loss"] = train_sd(sd_parts, train, steps["unet"], log)
        files += save(sd_parts, out / SD_DIR)
        if towers is None:  # the towers trained beside it, else the shipped ones
            towers = load_towers(out / TOWERS_FILE) if (out / TOWERS_FILE).is_file() else load_towers()
        report["sd"] = evaluate_sd(sd_parts, towers)
        log(f"[world] sd {report['sd']} ({time.perf_counter() - started:.0f} s)")
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["files"] = files
    return report
