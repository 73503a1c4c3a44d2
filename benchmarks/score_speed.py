"""Scoring speed on this machine with the real encoder architectures (random weights: the published weights
cannot be downloaded here; the work per file is the same).

Prints two ratios, each measured within this run:
  (a) the whole `score` call (decode, resize, encode, cache, metrics, result files) over the bare encoder
      forward passes for the same files (target <= 1.3);
  (b) the release's per-sample AIS/IIS algorithm, which re-encodes every other generated image for every
      sample (O(N^2) CLIP passes), against ours (one pass per file and an N x N similarity matrix), at N = 40.
Run: .venv/bin/python benchmarks/score_speed.py [--n 300] [--n-release 40]
"""

from __future__ import annotations

import argparse
import csv
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
            small = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
            Image.fromarray(small).resize((512, 512), Image.BICUBIC).save(folder / f"{sid}.{ext}")
        tone = 0.2 * np.sin(2 * np.pi * (150 + i) * t) + 0.01 * rng.standard_normal(t.size)
        soundfile.write(media / "audio" / f"{sid}.wav", tone.astype(np.float32), 16000, subtype="PCM_16")
    return manifest, media, pred, ids


def bare_forward_seconds(encoders, media: Path, pred: Path, ids: list[str], batch: int) -> float:
    """Forward passes only, on inputs preprocessed beforehand (not timed)."""
    jobs = [("inception", pred, ".png"), ("inception", media / "frames", ".jpg"), ("clip", pred, ".png"),
            ("clip", media / "frames", ".jpg"), ("wav2clip", media / "audio", ".wav")]
    total = 0.0
    for name, folder, ext in jobs:
        enc = encoders[name]
        inputs = [enc.preprocess(folder / f"{sid}{ext}") for sid in ids]
        t0 = time.perf_counter()
        for i in range(0, len(inputs), batch):
            enc.encode(inputs[i:i + batch], torch.device("cpu"))
        total += time.perf_counter() - t0
    return total


def release_algorithm_seconds(encoders, media: Path, pred: Path, ids: list[str]) -> float:
    """The release's per-sample AIS/IIS: for each sample, encode its query and ALL generated images again."""
    clip, audio = encoders["clip"], encoders["wav2clip"]
    t0 = time.perf_counter()
    for sid in ids:
        gt = clip.encode([clip.preprocess(media / "frames" / f"{sid}.jpg")], torch.device("cpu"))
        au = audio.encode([audio.preprocess(media / "audio" / f"{sid}.wav")], torch.device("cpu"))
        gens = [clip.preprocess(pred / f"{other}.png") for other in ids]
        gen = np.concatenate([clip.encode(gens[i:i + 32], torch.device("cpu")) for i in range(0, len(gens), 32)])
        for query in (gt, au):
            sims = (gen @ query[0]) / (np.linalg.norm(gen, axis=1) * np.linalg.norm(query[0]))
            others = np.delete(sims, ids.index(sid))
            (sims[ids.index(sid)] - others.mean()) / others.std()
    return time.perf_counter() - t0


def ours_similarity_seconds(encoders, media: Path, pred: Path, ids: list[str]) -> float:
    clip, audio = encoders["clip"], encoders["wav2clip"]
    t0 = time.perf_counter()
    cpu = torch.device("cpu")
    gen = clip.encode([clip.preprocess(pred / f"{s}.png") for s in ids], cpu)
    gt = clip.encode([clip.preprocess(media / "frames" / f"{s}.jpg") for s in ids], cpu)
    au = audio.encode([audio.preprocess(media / "audio" / f"{s}.wav") for s in ids], cpu)
    paired_scores(gt, gen)
    paired_scores(au, gen)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--n-release", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    encoders = build_encoders("random", seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        manifest, media, pred, ids = make_case(tmp / "big", args.n)
        bare = bare_forward_seconds(encoders, media, pred, ids, args.batch_size)
        t0 = time.perf_counter()
        result = score(manifest, pred, media, model_name="bench", out=tmp / "r.json", encoders=encoders,
                       config=ScoreConfig(preset="random", batch_size=args.batch_size, cache_dir=str(tmp / "cache")))
        total = time.perf_counter() - t0
        print(f"N = {args.n} pairs, real architectures, CPU threads {torch.get_num_threads()}")
        print(f"bare encoder forward passes: {bare:8.1f} s")
        print(f"whole score call:            {total:8.1f} s   (a) ratio {total / bare:.2f}  (target <= 1.3)")
        print("  score timings:", {k: round(v, 1) for k, v in result["timings_seconds"].items()})

        manifest, media, pred, ids = make_case(tmp / "small", args.n_release)
        release = release_algorithm_seconds(encoders, media, pred, ids)
        ours = ours_similarity_seconds(encoders, media, pred, ids)
        print(f"AIS/IIS at N = {args.n_release}: release's re-encoding {release:.1f} s, ours {ours:.1f} s   "
              f"(b) ratio {release / ours:.1f}x")


if __name__ == "__main__":
    main()
