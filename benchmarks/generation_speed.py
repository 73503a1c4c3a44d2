"""Generation images per second at batch N against batch 1 (``generate_images``, per-sample seeds, PNGs written),
measured within one run.

``--arch tiny`` (default) is the tests' small random SD at 32², 4 steps; ``--arch sd14`` is Stable Diffusion
v1.4's architecture with random weights at 512², 20 DPM-Solver steps, CFG 7.5, fp16 on a GPU (the paper's
setting). Batching pays on a GPU; on a CPU the work per image is the same and the ratio stays near 1.
Run: .venv/bin/python benchmarks/generation_speed.py [--arch tiny|sd14] [--batch 8] [--images 16] [--device cpu]
"""

from __future__ import annotations

import argparse

import torch
from perf_common import components_for, generation_rate, generator_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=("tiny", "sd14"), default="tiny")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--images", type=int, default=16, help="images timed at each batch size")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    components, config = components_for(args.arch, device), generator_config(args.arch)
    one = generation_rate(components, config, args.images, 1, device)
    many = generation_rate(components, config, args.images, args.batch, device)
    print(f"generation, {args.arch} ({config.height}x{config.width}, {config.inference_steps} steps, guidance "
          f"{config.guidance_scale:g}), {args.images} images, {args.device}, {args.threads} threads")
    print(f"  batch 1: {one:.2f} images/s; batch {args.batch}: {many:.2f} images/s; ratio {many / one:.2f}x")


if __name__ == "__main__":
    main()
