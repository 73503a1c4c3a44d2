"""Peak memory of `datasets export` against the number of samples: streaming means it stays flat.

Builds a MEDIA folder of N synthetic 10 s clips (16 kHz WAV + JPEG, ledger rows marked ok, no ffmpeg), exports
N and 4N samples as one WebDataset shard and as one Parquet file, each in a fresh process, and prints
the growth of its peak resident memory over what the imports took, and the ratio 4N / N, measured in this
run. Run:
.venv/bin/python benchmarks/export_memory.py [--clips 100]
"""

from __future__ import annotations

import argparse
import csv
import io
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np
from PIL import Image

from macs_bench.datasets.manifest import COLUMNS
from macs_bench.media.ledger import Ledger


def make_media(root: Path, n: int) -> Path:
    rng = np.random.default_rng(0)
    (root / "media" / "audio").mkdir(parents=True)
    (root / "media" / "frames").mkdir()
    rows = []
    with Ledger(root / "media" / "ledger.sqlite") as ledger:
        for i in range(n):
            sid = f"bench{i:06d}_0_10"
            with wave.open(str(root / "media" / "audio" / f"{sid}.wav"), "wb") as fh:
                fh.setnchannels(1), fh.setsampwidth(2), fh.setframerate(16000)
                fh.writeframes(rng.integers(-3000, 3000, 160000, dtype="<i2").tobytes())
            buf = io.BytesIO()
            Image.fromarray(rng.integers(0, 255, (360, 640, 3), dtype=np.uint8)).save(buf, "JPEG")
            (root / "media" / "frames" / f"{sid}.jpg").write_bytes(buf.getvalue())
            ledger.record(sid, "ok", detail={"frame_seconds": [4]})
            rows.append({"sample_id": sid, "ytid": sid[:11], "start": "0", "end": "10", "labels": "Dog",
                         "n_labels": "1", "frame_seconds": "4", "split": "eval"})
    (root / "m").mkdir()
    with open(root / "m" / "manifest.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({c: r.get(c, "") for c in COLUMNS} for r in rows)
    return root


CHILD = """
import resource, sys
import pyarrow.parquet, webdataset
from macs_bench.media.export import export
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
export(sys.argv[1], sys.argv[2], sys.argv[3], fmt=sys.argv[4], shard_size=10**6)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


def peak_mb(manifest: Path, media: Path, out: Path, fmt: str) -> float:
    """Peak RSS growth (MB) of one export in a fresh process (Arrow's C++ buffers included)."""
    done = subprocess.run([sys.executable, "-c", CHILD, str(manifest), str(media), str(out), fmt],
                          capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        small, large = Path(tmp) / "small", Path(tmp) / "large"
        make_media(small, args.clips)
        make_media(large, 4 * args.clips)
        for fmt in ("webdataset", "parquet"):
            a = peak_mb(small / "m", small / "media", small / f"out-{fmt}", fmt)
            b = peak_mb(large / "m", large / "media", large / f"out-{fmt}", fmt)
            data = sum(p.stat().st_size for p in (large / "media").rglob("*") if p.suffix in (".wav", ".jpg"))
            print(f"{fmt:>10}: peak RSS growth {a:6.1f} MB for {args.clips} clips, {b:6.1f} MB for "
                  f"{4 * args.clips} (ratio {b / max(a, 0.1):.2f}; {data / 2**20:.0f} MB of media)")


if __name__ == "__main__":
    main()
