"""One-shot GPU check: the model's GPU paths at the real architectures with random weights, as one JSON.

On a single GPU (default setting ``full``, within about 6 minutes, start-up included):
  - torchsort: CUDA soft ranks and their gradients against the CPU's;
  - generation: Stable Diffusion v1.4's architecture at 512², 20 DPM-Solver steps, CFG 7.5, fp16, images/s at
    batch 1 and batch 8 (``generate_images``, per-sample seeds, PNGs written);
  - stage 1: one training step at the paper preset (batch 8 x 8 s, M = 6, HTSAT + RoBERTa CLAP), fp32 and under
    fp16 autocast;
  - stage 2: one ``train_adapter`` step, fp16, without and with the latent cache;
  - scoring: images/s through Inception and CLIP ViT-B/32 (the paper encoders' architectures).
``--small`` runs each part at a CPU-sized setting (tiny models, a few inputs) so that CI exercises the script
in under a minute. Each part is timed and fenced: a failure is recorded in its entry and the others still run;
parts that would start after ``--budget`` seconds are recorded as skipped. Exit status 1 when a part failed.
Run: .venv/bin/python benchmarks/gpu_check.py [--small] [--out gpu-check.json] [--budget 330]
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import perf_common as perf
import torch

SETTINGS: dict[str, dict[str, Any]] = {
    "full": {"arch": "sd14", "gen_images": 8, "gen_batch": 8, "stage1_preset": "paper", "stage1_batch": 8,
             "stage1_repeats": 3, "tiny_clap": False, "stage2_steps": 6, "stage2_batch": 2,
             "stage2_rounds": 2, "encoders": "random", "score_images": 256, "warmup": True},
    "small": {"arch": "tiny", "gen_images": 2, "gen_batch": 2, "stage1_preset": "tiny", "stage1_batch": 2,
              "stage1_repeats": 1, "tiny_clap": True, "stage2_steps": 3, "stage2_batch": 2,
              "stage2_rounds": 1, "encoders": "tiny", "score_images": 16, "warmup": False},
}


def generation(device: torch.device, s: dict[str, Any]) -> dict[str, Any]:
    components, config = perf.components_for(s["arch"], device), perf.generator_config(s["arch"])
    one = perf.generation_rate(components, config, s["gen_images"], 1, device, s["warmup"])
    many = perf.generation_rate(components, config, s["gen_images"], s["gen_batch"], device, s["warmup"])
    return {"resolution": [config.height, config.width], "steps": config.inference_steps,
            "guidance_scale": config.guidance_scale,
            "dtype": "fp16" if device.type == "cuda" and config.mixed_precision == "fp16" else "fp32",
            "images": s["gen_images"], "batch_1_images_per_second": one,
            f"batch_{s['gen_batch']}_images_per_second": many, "ratio": many / one}


def stage1(device: torch.device, s: dict[str, Any]) -> dict[str, Any]:
    args = (s["stage1_preset"], device)
    fp32, fp16 = (perf.stage1_step_seconds(*args, half, s["stage1_batch"], s["stage1_repeats"], s["tiny_clap"],
                                           s["warmup"]) for half in (False, True))
    return {"preset": s["stage1_preset"], "batch": s["stage1_batch"], "repeats": s["stage1_repeats"],
            "step_seconds_fp32": fp32, "step_seconds_fp16_autocast": fp16, "ratio_fp32_over_fp16": fp32 / fp16}


def stage2(device: torch.device, s: dict[str, Any]) -> dict[str, Any]:
    times = perf.stage2_cache_times(s["arch"], device, s["stage2_steps"], s["stage2_batch"], s["warmup"],
                                    s["stage2_rounds"])
    precision = "fp16" if device.type == "cuda" and s["arch"] == "sd14" else "fp32"
    latents = perf.latent_times(s["arch"], device, s["stage2_batch"], repeats=5 if s["warmup"] else 2)
    return {"arch": s["arch"], "precision": precision, "batch": s["stage2_batch"], "steps": s["stage2_steps"],
            **times, **latents}


def scoring(device: torch.device, s: dict[str, Any]) -> dict[str, Any]:
    return {"encoders": s["encoders"], "images": s["score_images"],
            **perf.scoring_rate(s["encoders"], device, s["score_images"])}


def run_part(name: str, fn: Callable[[], dict[str, Any]], started: float, budget: float) -> dict[str, Any]:
    """fn's result plus its seconds; an exception becomes an ``error`` entry; past the budget it is skipped."""
    if time.perf_counter() - started > budget:
        return {"skipped": f"time budget of {budget:g} s spent"}
    t0 = time.perf_counter()
    try:
        result = fn()
    except Exception as exc:  # noqa: BLE001 - one part's failure must not lose the others' numbers
        result = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=4)}
    finally:
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return {**result, "seconds": time.perf_counter() - t0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="CPU-sized setting (what CI runs)")
    parser.add_argument("--device", default=None, help="default: cuda if present, else cpu")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--budget", type=float, default=330.0, help="no part starts after this many seconds")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    setting = "small" if args.small else "full"
    s = SETTINGS[setting]
    from macs_model.run_folder import run_versions

    report: dict[str, Any] = {
        "check": "macs gpu_check", "setting": setting, "config": s, "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
        "threads": args.threads, "seed": 0, "weights": "random (real architectures)", "versions": run_versions(),
    }
    parts = {"torchsort": lambda: perf.torchsort_check(device), "generation": lambda: generation(device, s),
             "stage1": lambda: stage1(device, s), "stage2": lambda: stage2(device, s),
             "scoring": lambda: scoring(device, s)}
    for name, fn in parts.items():
        report[name] = run_part(name, fn, started, args.budget)
    report["total_seconds"] = time.perf_counter() - started
    text = json.dumps(report, indent=2, sort_keys=True)
    print(text)
    if args.out is not None:
        from macs_bench.io import atomic_write_text

        atomic_write_text(args.out, text + "\n")
    return 1 if any("error" in report[name] for name in parts) else 0


if __name__ == "__main__":
    sys.exit(main())
