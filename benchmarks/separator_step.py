"""Stage-1 training step at the ``paper`` preset on this machine's CPU, broken down by stage, and CLAP passes.

Real architectures with random weights (the published CLAP cannot be downloaded here; the work is the same): the
58 M-parameter STFT-mask UNet, laion-clap's HTSAT-tiny + RoBERTa. The tokenizer is a small character-level one
built on the fly: text embeddings are cached after the first step, so it does not change step times.

Prints, over ``--repeats`` timed steps after one warm-up:
  - forward time of STFT, UNet, iSTFT + mixture consistency, CLAP (sources and mixture), each loss, then backward
    and the optimiser step, with each one's share of the step;
  - CLAP audio passes per mixture: ours M + 1 (counted by ClapAlignment), the release's 2M (it embeds the mixture
    again beside every source), and the time ratio of the two CLAP workloads measured here.
Run: .venv/bin/python benchmarks/separator_step.py [--batch 2] [--repeats 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch
from perf_common import char_tokenizer

from macs_model.separation.alignment import ClapAlignment
from macs_model.separation.clap import ClapEncoder, build_clap_model
from macs_model.separation.config import SeparatorConfig
from macs_model.separation.losses import contrastive_loss, mixit_loss, ranking_loss
from macs_model.separation.separator import StftMaskSeparator, mixture_consistency
from macs_model.separation.training import make_mixture_of_mixtures


class Timer:
    def __init__(self):
        self.totals = defaultdict(float)

    def __call__(self, name, fn, *args):
        start = time.perf_counter()
        out = fn(*args)
        self.totals[name] += time.perf_counter() - start
        return out


def step(model, align, optimizer, clips, labels, timer):
    cfg = model.config
    mixture, mix1, mix2 = make_mixture_of_mixtures(clips)
    stft = timer("STFT", lambda: torch.stft(mixture, cfg.n_fft, hop_length=cfg.hop, window=model.window,
                                            center=True, pad_mode="reflect", return_complex=True))
    masks = timer("UNet", lambda: model.unet((stft.real.square() + stft.imag.square()).unsqueeze(1)))

    def inverse():
        masked = (masks * stft.unsqueeze(1)).flatten(0, 1)
        wave = torch.istft(masked, cfg.n_fft, hop_length=cfg.hop, window=model.window, center=True,
                           length=mixture.shape[-1])
        return mixture_consistency(wave.view(mixture.shape[0], cfg.num_sources, -1), mixture)

    sources = timer("iSTFT + consistency", inverse)
    b, m, t = sources.shape
    source_emb = timer("CLAP sources (M per mixture)",
                       lambda: align.encoder.embed_audio(sources.reshape(b * m, t)).reshape(b, m, -1))
    with torch.no_grad():
        mixture_emb = timer("CLAP mixture (1 per mixture)", lambda: align.encoder.embed_audio(mixture))
    align.audio_passes += b * m + b
    align.mixtures += b
    rec, _ = timer("loss: MixIT", lambda: mixit_loss(sources, mix1, mix2))
    text = timer("loss: contrastive", lambda: align.encoder.embed_text(
        [p for row in align.prompts({"labels": labels, "mixture": mixture}) for p in row]).reshape(b, m, -1))
    l_cl = timer("loss: contrastive", lambda: contrastive_loss(source_emb, text, align.logit_scale))
    l_rank = timer("loss: ranking", lambda: ranking_loss((source_emb * mixture_emb[:, None]).sum(-1)))
    loss = rec + l_cl + l_rank
    timer("backward", loss.backward)
    timer("optimiser step", lambda: (optimizer.step(), optimizer.zero_grad(set_to_none=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=2, help="clips per step (the paper: 8 x accum 2)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = SeparatorConfig.preset("paper")
    model = StftMaskSeparator(config).train()
    with tempfile.TemporaryDirectory() as tmp:
        encoder = ClapEncoder(build_clap_model({"vocab_size": 101}), char_tokenizer(Path(tmp)))
    align = ClapAlignment(encoder, config.num_sources)
    optimizer = torch.optim.AdamW(list(model.parameters()) + align.trainable(), lr=1e-3)
    clips = 0.1 * torch.randn(args.batch, config.clip_samples)
    labels = [["Dog", "Bark"], ["Rain"], ["Speech", "Music", "Car"], ["Bird"]] * args.batch
    labels = labels[:args.batch]

    step(model, align, optimizer, clips, labels, Timer())  # warm-up (allocations, text cache)
    align.audio_passes = align.mixtures = 0
    timer = Timer()
    start = time.perf_counter()
    for _ in range(args.repeats):
        step(model, align, optimizer, clips, labels, timer)
    total = (time.perf_counter() - start) / args.repeats

    print(f"stage-1 step at the paper preset: batch {args.batch} x {config.clip_seconds:g} s, M = "
          f"{config.num_sources}, {sum(p.numel() for p in model.parameters()):,} separator parameters, "
          f"CPU, {args.threads} threads, mean of {args.repeats} steps")
    for name, seconds in timer.totals.items():
        per = seconds / args.repeats
        print(f"  {name:<30} {per:8.3f} s  {100 * per / total:5.1f} %")
    print(f"  {'whole step':<30} {total:8.3f} s")

    m = config.num_sources
    ours = align.audio_passes / align.mixtures
    print(f"CLAP audio passes per mixture: ours {ours:g} (M + 1), release {2 * m} (2M): "
          f"{2 * m / ours:.2f}x fewer")
    sources = 0.1 * torch.randn(args.batch * m, config.clip_samples)
    mixtures = 0.1 * torch.randn(args.batch, config.clip_samples)
    with torch.no_grad():
        t0 = time.perf_counter()
        encoder.embed_audio(sources), encoder.embed_audio(mixtures)
        t1 = time.perf_counter()
        encoder.embed_audio(sources), encoder.embed_audio(mixtures.repeat_interleave(m, dim=0))
        t2 = time.perf_counter()
    print(f"CLAP forward per step, measured: ours {t1 - t0:.3f} s, release-style {t2 - t1:.3f} s, "
          f"ratio {(t2 - t1) / (t1 - t0):.2f}")


if __name__ == "__main__":
    main()
