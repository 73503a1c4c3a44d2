"""Scoring speed on this machine with the real encoder architectures (random weights: the published weights
cannot be downloaded here; the work per file is the same).

Prints two ratios, each measured within this run:
  (a) the whole `score` call (decode, resize, encode, cache, metrics, result files) over the bare encoder
      forward passes for the same files (target <= 1.3);
  (b) the release's per-sample AIS/IIS algorithm, which re-encodes every other generated image for every
      sample (O(N^2) CLIP passes), against ours (one pass per file and an N x N similarity matrix), at N = 40.
Measured honestly: textured images (full-resolution noise over a smooth pattern, so decoders and resizers do
real work, unlike upsampled 8 x 8 blocks), one warm-up of each path (allocator, kernel choice, first-call
imports) not timed, bare and full runs alternated so drifting machine load hits both alike, every full run on a
fresh cache (no feature reused), and the median of --repeats runs of each.
Run: .venv/bin/python benchmarks/score_speed.py [--n 300] [--n-release 40] [--repeats 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import torch
from PIL import Image

from macs_bench.datasets.manifest import COLUMNS
from macs_bench.features.encoders import build_encoders
from macs_bench.metrics import paired_scores
from macs_bench.scoring import ScoreConfig, score


def make_case(root: Path, n: int) -> tuple[Path, Path, Path, list[str]]:
    rng = np.random.default_rng(0)
    manifest, media, pred = root / "manifest", root / "media", root / "pred"
    for d in (manifest, media / "frames", media / "audio", pred):
        d.mkdir(parents=True)
    ids = [f"bench{i:06d}_0_10" for i in range(n)]
    with open(manifest / "manifest.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for sid in ids:
            writer.writerow([sid, sid[:11], 0, 10, "a;b", "", 2, 4, 0, "eval"])
    t = np.arange(160000) / 16000
    for i, sid in enumerate(ids):
        for folder, ext in ((media / "frames", "jpg"), (pred, "png")):
            Image.fromarray(textured(rng)).save(folder / f"{sid}.{ext}")
        tone = 0.2 * np.sin(2 * np.pi * (150 + i) * t) + 0.01 * rng.standard_normal(t.size)
        soundfile.write(media / "audio" / f"{sid}.wav", tone.astype(np.float32), 16000, subtype="PCM_16")
    return manifest, media, pred, ids


def textured(rng: np.random.Generator, size: int = 512) -> np.ndarray:
    """A photo-like test image: a smooth random colour field plus full-resolution noise and edges."""
    small = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(small).resize((size, size), Image.BICUBIC), dtype=np.float32)
    noise = rng.normal(0, 24, (size, size, 3))
    stripes = 30 * np.sign(np.sin(np.arange(size) / rng.uniform(2, 12)))[None, :, None]
    return np.clip(smooth + noise + stripes, 0, 255).astype(np.uint8)


def bare_forward_seconds(encoders, media: Path, pred: Path, ids: list[str], batch: int,
                         device: torch.device) -> float:
    """Forward passes only, on inputs preprocessed beforehand (not timed)."""
    jobs = [("inception", pred, ".png"), ("inception", media / "frames", ".jpg"), ("clip", pred, ".png"),
            ("clip", media / "frames", ".jpg"), ("wav2clip", media / "audio", ".wav")]
    total = 0.0
    for name, folder, ext in jobs:
        enc = encoders[name]
        inputs = [enc.preprocess(folder / f"{sid}{ext}") for sid in ids]
        _sync(device)
        t0 = time.perf_counter()
        for i in range(0, len(inputs), batch):
            enc.encode(inputs[i:i + batch], device)  # returns host arrays: each batch ends synchronised
        total += time.perf_counter() - t0
    return total


def release_algorithm_seconds(encoders, media: Path, pred: Path, ids: list[str]) -> float:
    """The release's per-sample AIS/IIS: for each sample, encode its query and ALL generated images again."""
    clip, audio = encoders["clip"], encoders["wav2clip"]
    t0 = time.perf_counter()
    for sid in ids:
        gt = clip.encode([clip.preprocess(media / "frames" / f"{sid}.jpg")], next(clip.model.parameters()).device)
        au = audio.encode([audio.preprocess(media / "audio" / f"{sid}.wav")], next(clip.model.parameters()).device)
        gens = [clip.preprocess(pred / f"{other}.png") for other in ids]
        gen = np.concatenate([clip.encode(gens[i:i + 32], next(clip.model.parameters()).device) for i in range(0, len(gens), 32)])
        for query in (gt, au):
            sims = (gen @ query[0]) / (np.linalg.norm(gen, axis=1) * np.linalg.norm(query[0]))
            others = np.delete(sims, ids.index(sid))
            (sims[ids.index(sid)] - others.mean()) / others.std()
    return time.perf_counter() - t0


def ours_similarity_seconds(encoders, media: Path, pred: Path, ids: list[str]) -> float:
    clip, audio = encoders["clip"], encoders["wav2clip"]
    t0 = time.perf_counter()
    cpu = next(clip.model.parameters()).device  # the device the encoders sit on
    gen = clip.encode([clip.preprocess(pred / f"{s}.png") for s in ids], cpu)
    gt = clip.encode([clip.preprocess(media / "frames" / f"{s}.jpg") for s in ids], cpu)
    au = audio.encode([audio.preprocess(media / "audio" / f"{s}.wav") for s in ids], cpu)
    paired_scores(gt, gen)
    paired_scores(au, gen)
    return time.perf_counter() - t0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def full_score_seconds(encoders, manifest: Path, media: Path, pred: Path, cache: Path, batch: int,
                       device: torch.device) -> tuple[float, dict]:
    """One whole ``score`` call on a fresh feature cache."""
    _sync(device)
    t0 = time.perf_counter()
    result = score(manifest, pred, media, model_name="bench", out=cache / "r.json", encoders=encoders,
                   config=ScoreConfig(preset="random", batch_size=batch, cache_dir=str(cache), device=str(device)))
    _sync(device)
    return time.perf_counter() - t0, result["timings_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--n-release", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each path (median reported)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    encoders = {name: enc.to(device) for name, enc in build_encoders("random", seed=0).items()}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        manifest, media, pred, ids = make_case(tmp / "big", args.n)
        bare_forward_seconds(encoders, media, pred, ids[: args.batch_size], args.batch_size, device)  # warm-up
        full_score_seconds(encoders, manifest, media, pred, tmp / "warm", args.batch_size, device)
        bares, fulls, timings = [], [], {}
        for r in range(args.repeats):  # alternate, so load drifting during the run hits both paths alike
            bares.append(bare_forward_seconds(encoders, media, pred, ids, args.batch_size, device))
            seconds, timings = full_score_seconds(encoders, manifest, media, pred, tmp / f"cache{r}",
                                                  args.batch_size, device)
            fulls.append(seconds)
        bare, total = statistics.median(bares), statistics.median(fulls)
        print(f"N = {args.n} pairs, real architectures (random weights), {device}, CPU threads "
              f"{torch.get_num_threads()}, median of {args.repeats} alternated runs after one warm-up")
        print(f"bare encoder forward passes: {bare:8.1f} s   runs {[round(b, 1) for b in bares]}")
        print(f"whole score call:            {total:8.1f} s   runs {[round(f, 1) for f in fulls]}")
        print(f"(a) ratio {total / bare:.2f} (target <= 1.3); per-pair ratios "
              f"{[round(f / b, 2) for f, b in zip(fulls, bares)]}")
        print("  last score timings:", {k: round(v, 1) for k, v in timings.items()})

        manifest, media, pred, ids = make_case(tmp / "small", args.n_release)
        ours_similarity_seconds(encoders, media, pred, ids[:4])  # warm-up
        release = statistics.median(release_algorithm_seconds(encoders, media, pred, ids)
                                    for _ in range(args.repeats))
        ours = statistics.median(ours_similarity_seconds(encoders, media, pred, ids) for _ in range(args.repeats))
        print(f"AIS/IIS at N = {args.n_release}: release's re-encoding {release:.1f} s, ours {ours:.1f} s   "
              f"(b) ratio {release / ours:.1f}x (medians of {args.repeats})")


if __name__ == "__main__":
    main()
