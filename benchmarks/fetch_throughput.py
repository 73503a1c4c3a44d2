"""Extraction throughput of `datasets fetch` on this machine, for 10-second clips from local videos.

Prints the time per clip of the bare ffmpeg pass against our whole path (probe, the same ffmpeg pass,
verification, quality filter, atomic install, ledger), both measured in this run, and clips per second with
parallel workers. Run: .venv/bin/python benchmarks/fetch_throughput.py [--clips 24] [--size 640x360]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

from macs_bench.datasets.manifest import COLUMNS
from macs_bench.media import ffmpeg
from macs_bench.media.fetch import FetchOptions, fetch
from macs_bench.media.quality import QualityThresholds


def make_clip(path: Path, size: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration=10",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=10",
                    "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac",
                    "-shortest", str(path)], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        videos = tmp / "videos"
        videos.mkdir()
        ytids = [f"bench{i:06d}"[:11] for i in range(args.clips)]
        for ytid in ytids:
            make_clip(videos / f"{ytid}.mp4", args.size)
        manifest = tmp / "manifest"
        manifest.mkdir()
        lines = [",".join(COLUMNS)] + [f"{y}_0_10,{y},0,10,a;b,,2,4,,eval" for y in ytids]
        (manifest / "manifest.csv").write_text("\n".join(lines) + "\n")

        out = tmp / "bare"
        out.mkdir()
        t0 = time.perf_counter()
        for ytid in ytids:
            frames = out / ytid
            frames.mkdir()
            ffmpeg.extract_clip(videos / f"{ytid}.mp4", 0.0, 10.0, 10, out / f"{ytid}.wav", frames)
        bare = (time.perf_counter() - t0) / args.clips

        t0 = time.perf_counter()
        full_path = dict(quality=QualityThresholds())  # the quality filter on: the most work per clip
        report = fetch(manifest, tmp / "media1", source_dir=videos, options=FetchOptions(jobs=1, **full_path))
        ours = (time.perf_counter() - t0) / args.clips
        assert report.n_ok == args.clips, report

        t0 = time.perf_counter()
        report = fetch(manifest, tmp / "media2", source_dir=videos, options=FetchOptions(jobs=args.jobs, **full_path))
        parallel = time.perf_counter() - t0
        assert report.n_ok == args.clips, report

    print(f"{args.clips} clips of 10 s at {args.size}, {os.cpu_count()} CPUs")
    print(f"bare ffmpeg pass:        {bare * 1000:7.1f} ms/clip")
    print(f"whole fetch path, 1 job: {ours * 1000:7.1f} ms/clip   ratio to bare ffmpeg: {ours / bare:.2f}")
    print(f"whole fetch path, {args.jobs} jobs: {args.clips / parallel:6.2f} clips/s")


if __name__ == "__main__":
    main()
