"""MixIT loss, forward + backward: the Gram-matrix form (``mixit_loss``) against the remix form
(``mixit_loss_remix``, every one of the 2^M - 2 remixes built), measured within this run.

Prints, per setting, the mean time of each form over ``--repeats`` runs after one warm-up, their ratio, and the
largest difference of the two losses and of their gradients. Settings: the paper preset (batch 8 clips of 8 s at
16 kHz, M = 6) and the same at M = 8, where the remix form grows 4x and the Gram form barely.
Run: .venv/bin/python benchmarks/mixit_speed.py [--batch 8] [--seconds 8] [--repeats 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import torch

from macs_model.separation.losses import mixit_loss, mixit_loss_remix
from macs_model.separation.training import make_mixture_of_mixtures


def timed(form, estimates, mix1, mix2, repeats: int, device: torch.device):
    """(mean seconds of forward + backward, loss, gradient) over ``repeats`` runs after a warm-up."""
    def once():
        leaf = estimates.detach().clone().requires_grad_()
        loss, _ = form(leaf, mix1, mix2)
        loss.backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return loss.detach(), leaf.grad

    once()
    start = time.perf_counter()
    for _ in range(repeats):
        loss, grad = once()
    return (time.perf_counter() - start) / repeats, loss, grad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8, help="clips per micro-batch (the paper: 8)")
    parser.add_argument("--seconds", type=float, default=8.0, help="clip length (the paper: 8 s at 16 kHz)")
    parser.add_argument("--sources", type=int, nargs="+", default=[6, 8], help="M values (the paper: 6)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    length = round(args.seconds * 16000)
    clips = 0.1 * torch.randn(args.batch, length, generator=gen)
    _, mix1, mix2 = (x.to(device) for x in make_mixture_of_mixtures(clips))
    print(f"MixIT forward + backward, batch {args.batch} x {args.seconds:g} s at 16 kHz, float32, {device}, "
          f"{args.threads} threads, mean of {args.repeats}")
    for m in args.sources:
        estimates = (0.05 * torch.randn(args.batch, m, length, generator=gen)).to(device)
        remix_s, remix_loss, remix_grad = timed(mixit_loss_remix, estimates, mix1, mix2, args.repeats, device)
        gram_s, gram_loss, gram_grad = timed(mixit_loss, estimates, mix1, mix2, args.repeats, device)
        print(f"  M = {m} ({2**m - 2} bipartitions): remix {remix_s:.3f} s, Gram {gram_s:.3f} s, "
              f"ratio {remix_s / gram_s:.1f}x; |loss diff| {abs(gram_loss - remix_loss).item():.1e}, "
              f"max |grad diff| {(gram_grad - remix_grad).abs().max().item():.1e}")


if __name__ == "__main__":
    main()
