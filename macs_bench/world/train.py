"""Train the world's models from scratch, deterministically on one CPU thread, and measure them on held-out clips.

Data: clips of :mod:`macs_bench.world.synthetic` made in memory (the frames through the same JPEG round trip as
the benchmark's files) with seeds of their own (training 1000, held-out 2000), never the demo's (0 and 1):

- the CLAP-like pair sees **single-source** clips only (one class at a random level, often over a part of the
  clip), as real CLAP is trained on single-event captions, plus noise clips for its "Noise" prompt;
- the scoring image and text towers see the mixtures' frames and, as negatives, pictures that carry the motifs'
  colours without their shapes (flat tints, dots, blurred blobs), the colours in wrong shapes, and true motifs
  beside wrong-shape distractors; the audio tower then learns the frozen image space (wav2clip's recipe);
- the SD base (:mod:`macs_bench.world.train_sd`) learns the mixtures' frames from class-name prompts.

Every step is seeded; with ``torch.set_num_threads(1)`` the same torch build on the same CPU writes the same
bytes. Entry point: ``tools/train_world.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from macs_bench.world.data import batches, chance_top_k_hits, hot_of, jpeg, single_source_data, top_k_hits, world_data
from macs_bench.world.synthetic import CLASSES
from macs_bench.world.towers import ClapPair, Towers, image_tensor, normalise

TRAIN_SEED, HELD_SEED = 1000, 2000
NOISE = "Noise"


def _siglip(a: torch.Tensor, b: torch.Tensor, target: torch.Tensor, scale: torch.Tensor,
            bias: torch.Tensor) -> torch.Tensor:
    """Pairwise sigmoid contrastive loss (SigLIP) between embeddings ``a`` [N, D] and ``b`` [C, D]."""
    logits = normalise(a) @ normalise(b).T * scale.exp() + bias
    return F.binary_cross_entropy_with_logits(logits, target)


def negatives(sets, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One judge negative per label set, in turn: a flat tint, colour dots, blurred colour blobs, the colours in
    wrong shapes (all with no class present), and the true motifs beside two wrong-shape distractors (only the
    true classes present). JPEG round trip as the frames. Returns images and multi-hot targets."""
    from macs_bench.world import motifs

    rng = np.random.default_rng(seed)
    images, targets = [], []
    for i, names in enumerate(sets):
        kind = i % 5
        if kind == 0:
            image = motifs.draw_colour_only(names)
        elif kind == 1:
            image = motifs.draw_dots(names, rng)
        elif kind == 2:
            image = motifs.draw_blobs(names, rng)
        elif kind == 3:
            image = motifs.draw_wrong_shapes(names, rng)
        else:
            extra = [(motifs.motif_of(CLASSES[int(rng.integers(len(CLASSES)))])[0],
                      motifs.WRONG_SHAPES[int(rng.integers(3))]) for _ in range(min(2, 9 - len(names)))]
            image = motifs.draw_motifs([motifs.motif_of(n) for n in names] + extra, rng)
        images.append(jpeg(image))
        targets.append(names if kind == 4 else ())
    return image_tensor(images), hot_of(targets)


def train_towers(train: dict, held: dict, steps: int = 1500, log: Callable[[str], None] = print) -> tuple:
    """Image + text towers by SigLIP over class names (frames and their negatives), then the audio tower into
    the frozen image space (audio/image InfoNCE, positives every batch image with the clip's label set)."""
    torch.manual_seed(10)
    towers = Towers()
    scale, bias = torch.nn.Parameter(torch.tensor(2.3)), torch.nn.Parameter(torch.tensor(-2.0))
    names = list(CLASSES)
    neg_images, neg_hot = negatives(train["sets"], seed=13)
    images, hot = torch.cat([train["images"], neg_images]), torch.cat([train["hot"], neg_hot])
    params = [*towers.image.parameters(), *towers.text.parameters(), scale, bias]
    optimizer = torch.optim.AdamW(params, lr=2e-3, weight_decay=1e-4)
    for step, idx in enumerate(batches(len(hot), 64, steps, seed=11)):
        loss = _siglip(towers.image(images[idx]), towers.text(names), hot[idx], scale, bias)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 250 == 0:
            log(f"[towers] image/text step {step} loss {loss.item():.4f}")
    towers.image.requires_grad_(False)
    towers.text.requires_grad_(False)
    with torch.no_grad():
        target_train = normalise(towers.image(train["images"]))
        stats_train = towers.audio.statistics(train["audio"])
    temperature = 0.07
    optimizer = torch.optim.AdamW(towers.audio.mlp.parameters(), lr=2e-3, weight_decay=1e-4)
    for step, idx in enumerate(batches(len(train["hot"]), 64, steps, seed=12)):
        logits = normalise(towers.audio.mlp(stats_train[idx])) @ target_train[idx].T / temperature
        same = (train["hot"][idx][:, None, :] == train["hot"][idx][None, :, :]).all(-1).float()
        soft = same / same.sum(dim=1, keepdim=True)
        loss = 0.5 * (-(soft * logits.log_softmax(1)).sum(1).mean() - (soft * logits.log_softmax(0)).sum(0).mean())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 250 == 0:
            log(f"[towers] audio->image step {step} loss {loss.item():.4f}")
    towers.eval().requires_grad_(False)
    return towers, evaluate_towers(towers, held)


@torch.no_grad()
def evaluate_towers(towers: Towers, held: dict) -> dict[str, Any]:
    from macs_bench.world.judge import judge_controls

    text = normalise(towers.text(list(CLASSES)))
    image = normalise(towers.image(held["images"]))
    audio = normalise(towers.audio(held["audio"]))
    same_set = (held["hot"][:, None] == held["hot"][None]).all(-1).float()
    nearest = (audio @ image.T).argmax(1)
    return {
        "held_out_clips": len(held["hot"]),
        "image_zero_shot_top_k_hits": top_k_hits(image @ text.T, held["hot"]),
        "audio_zero_shot_top_k_hits": top_k_hits(audio @ text.T, held["hot"]),
        "audio_to_image_top1_same_label_set": float(same_set[torch.arange(len(nearest)), nearest].mean()),
        "chance_same_label_set": float(same_set.mean()),
        "chance_top_k_hits": chance_top_k_hits(held["hot"]),
        "judge": judge_controls(towers, held["sets"]),
    }


def _noise_clips(n: int, samples: int, seed: int) -> torch.Tensor:
    """Background the separator's spare outputs hold: faint white noise, some near silence."""
    rng = np.random.default_rng(seed)
    levels = rng.uniform(1e-4, 0.05, size=(n, 1))
    return torch.from_numpy((rng.standard_normal((n, samples)) * levels).astype(np.float32))


def clap_prompts() -> list[str]:
    from macs_bench.datasets.fsd50k import PROMPT_PREFIX

    return [PROMPT_PREFIX + c for c in CLASSES] + [NOISE]


def train_clap(n_train: int, held: dict, steps: int = 800, log: Callable[[str], None] = print) -> tuple:
    """The CLAP-like pair by SigLIP over "The sound of <class>" prompts and "Noise", on ``n_train``
    single-source clips and noise clips; measured on held-out single-source clips and on mixtures."""
    torch.manual_seed(20)
    pair = ClapPair()
    scale, bias = torch.nn.Parameter(torch.tensor(2.3)), torch.nn.Parameter(torch.tensor(-2.0))
    audio, labels = single_source_data(n_train, TRAIN_SEED + 1)
    noise = _noise_clips(n_train // 8, audio.shape[1], seed=21)
    with torch.no_grad():
        stats = torch.cat([pair.audio.statistics(audio), pair.audio.statistics(noise)])
    n_prompts = len(CLASSES) + 1
    hot = torch.cat([F.one_hot(labels.long(), n_prompts).float(),
                     F.one_hot(torch.full((len(noise),), len(CLASSES)), n_prompts).float()])
    prompts = clap_prompts()
    optimizer = torch.optim.AdamW([*pair.audio.mlp.parameters(), *pair.text.parameters(), scale, bias], lr=2e-3,
                                  weight_decay=1e-4)
    for step, idx in enumerate(batches(len(hot), 64, steps, seed=22)):
        loss = _siglip(pair.audio.mlp(stats[idx]), pair.text(prompts), hot[idx], scale, bias)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 250 == 0:
            log(f"[clap] step {step} loss {loss.item():.4f}")
    pair.eval().requires_grad_(False)
    single, single_labels = single_source_data(480, HELD_SEED + 1)
    with torch.no_grad():
        text = normalise(pair.text(prompts))
        single_top1 = (normalise(pair.audio(single)) @ text.T)[:, :-1].argmax(1) == single_labels
        scores = normalise(pair.audio(held["audio"])) @ text.T
        noise_held = normalise(pair.audio(_noise_clips(64, held["audio"].shape[1], seed=23))) @ text.T
    return pair, {"trained_on": f"{n_train} single-source clips + {len(noise)} noise clips",
                  "single_source_top1": float(single_top1.float().mean()),
                  "chance_single_source_top1": 1 / len(CLASSES),
                  "mixture_top_k_hits": top_k_hits(scores[:, :-1], held["hot"]),
                  "chance_top_k_hits": chance_top_k_hits(held["hot"]),
                  "noise_clips_ranked_noise_first": float((noise_held.argmax(1) == len(CLASSES)).float().mean())}


def _gate(pair, path: Path, report: dict[str, Any], log: Callable[[str], None]) -> None:
    """Run the gate on the fresh CLAP before anything else is trained; a failing gate stops the training."""
    from macs_bench.errors import MacsError
    from macs_bench.io import sha256_file
    from macs_bench.world.gate import gate_pair

    result = gate_pair(pair, sha256_file(path))
    report["gate"] = result.to_dict()
    log(f"[world] gate: mixture probe {result.mixture_accuracy:.3f}, per-source probe "
        f"{result.per_source_accuracy:.3f}, gap {result.gap:+.3f}: {'holds' if result.holds else 'FAILS'}")
    if not result.holds:
        raise MacsError(f"the world gate fails (gap {result.gap:+.3f} < {result.margin}): the world is too easy "
                        "to test separation; change the world, not the gate")


def train_world(out: Path, *, parts: tuple[str, ...] = ("clap", "towers", "sd"), n_train: int = 2400,
                n_held: int = 500, steps: dict[str, int] | None = None,
                log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train the named parts into ``out`` (clap.safetensors, towers.safetensors, sd/); returns the report.
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

    steps = {"clap": 800, "towers": 1500, "vae": 800, "unet": 6000, **(steps or {})}
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"steps": steps, "n_train": n_train, "n_held": n_held, "seeds": [TRAIN_SEED, HELD_SEED],
                              "torch": torch.__version__}
    files: list[str] = []
    started = time.perf_counter()
    held = world_data(n_held, HELD_SEED)
    if "clap" in parts:
        pair, report["clap"] = train_clap(n_train, held, steps["clap"], log)
        save_file(state_of(pair), str(out / CLAP_FILE))
        files.append(CLAP_FILE)
        log(f"[world] clap {report['clap']} ({time.perf_counter() - started:.0f} s)")
        _gate(pair, out / CLAP_FILE, report, log)
    train = world_data(n_train, TRAIN_SEED) if {"towers", "sd"} & set(parts) else None
    log(f"[world] data ready ({time.perf_counter() - started:.0f} s)")
    towers = None
    if "towers" in parts:
        towers, report["towers"] = train_towers(train, held, steps["towers"], log)
        save_file(state_of(towers), str(out / TOWERS_FILE))
        files.append(TOWERS_FILE)
        log(f"[world] towers {report['towers']} ({time.perf_counter() - started:.0f} s)")
    if "sd" in parts:
        from macs_bench.world.sd import build, save
        from macs_bench.world.train_sd import evaluate_sd, train_sd, train_vae

        sd_parts = build(seed=30)
        report["vae_loss"] = train_vae(sd_parts, train["images"], steps["vae"], log)
        report["unet_loss"] = train_sd(sd_parts, train, steps["unet"], log)
        files += save(sd_parts, out / SD_DIR)
        if towers is None:  # the towers trained beside it, else the shipped ones
            towers = load_towers(out / TOWERS_FILE) if (out / TOWERS_FILE).is_file() else load_towers()
        report["sd"] = evaluate_sd(sd_parts, towers, held["sets"])
        log(f"[world] sd {report['sd']} ({time.perf_counter() - started:.0f} s)")
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["files"] = files
    return report
