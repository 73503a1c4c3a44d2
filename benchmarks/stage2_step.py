"""Stage-2 training step with and without the latent cache (``macs_model.generation.latent_cache``), measured within one run.

Runs ``train_adapter`` on the same frames: once filling the cache (first epoch), then ``--rounds`` alternating
pairs without the cache and reading it (warm); prints the median seconds per optimiser step of each and the
ratio without / warm; then, timed alone, the part of the step the cache replaces (decode + VAE-encode the
batch's frames vs read their cached moments). ``--arch tiny`` (default) is the tests' small random SD at 32²;
``--arch sd14`` is Stable Diffusion v1.4's architecture with random weights at 512², fp16 on a GPU (the
paper's setting). On a CPU shared with other jobs, ``--threads 1`` gives steadier numbers.
Run: .venv/bin/python benchmarks/stage2_step.py [--arch tiny|sd14] [--steps 6] [--batch 2] [--rounds 3]
"""

from __future__ import annotations

import argparse

import torch
from perf_common import latent_times, stage2_cache_times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=("tiny", "sd14"), default="tiny")
    parser.add_argument("--steps", type=int, default=6, help="steps per run (one epoch: steps x batch frames)")
    parser.add_argument("--batch", type=int, default=2, help="images per step (the paper: 2 x accum 8)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating pairs of runs without / with cache")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    latents = latent_times(args.arch, device, args.batch)
    times = stage2_cache_times(args.arch, device, args.steps, args.batch,
                               rounds=args.rounds)
    print(f"stage-2 step, {args.arch}, batch {args.batch}, {args.device}, {args.threads} threads, "
          f"median step after the first, {args.rounds} rounds")
    print(f"  without cache   {times['step_seconds_without_cache']:.3f} s")
    print(f"  filling cache   {times['step_seconds_filling_cache']:.3f} s")
    print(f"  warm cache      {times['step_seconds_with_warm_cache']:.3f} s")
    print(f"  ratio without / warm: {times['ratio_without_over_warm']:.2f}x")
    print(f"the part the cache replaces, one step's latents (median of 20): decode + encode "
          f"{1000 * latents['latents_seconds_encode']:.1f} ms, cache read "
          f"{1000 * latents['latents_seconds_cache']:.1f} ms, ratio {latents['latents_ratio']:.1f}x")


if __name__ == "__main__":
    main()
