"""Rebuild the world models shipped in macs_bench/world/weights/, or check that they reproduce bit for bit.

    python tools/train_world.py                 # retrain everything into the shipped folder (~40 min, 1 thread)
    python tools/train_world.py --check         # retrain into a temporary folder, compare with SHA256SUMS
    python tools/train_world.py --check --parts clap   # the same for one part (seconds to minutes)

Deterministic on CPU (one thread, fixed seeds): the same torch build writes the same bytes. Training the CLAP
runs the world gate (``tools/world_gate.py``) before anything else is trained, and stops if it fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

PARTS = ("clap", "towers", "sd")


def main(argv: list[str] | None = None) -> int:
    from macs_bench.io import atomic_write_text, dumps_json
    from macs_bench.world import REPORT_FILE, SUMS_FILE, WORLD_DIR
    from macs_bench.world.checksums import read_sums, write_sums
    from macs_bench.world.train import train_world

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=WORLD_DIR)
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--check", action="store_true", help="retrain into a temporary folder and compare hashes")
    args = parser.parse_args(argv)
    if args.check:
        shipped = read_sums(WORLD_DIR / SUMS_FILE)
        with tempfile.TemporaryDirectory() as tmp:
            report = train_world(Path(tmp), parts=tuple(args.parts))
            fresh = write_sums(Path(tmp), report["files"])
        bad = [name for name, digest in fresh.items() if shipped.get(name) != digest]
        for name, digest in fresh.items():
            print(f"{'OK  ' if name not in bad else 'DIFF'} {name} {digest}")
        return 1 if bad else 0
    out = args.out
    report = train_world(out, parts=tuple(args.parts))
    known = set(read_sums(out / SUMS_FILE)) if (out / SUMS_FILE).is_file() else set()
    write_sums(out, sorted(known | set(report["files"])))
    previous = json.loads((out / REPORT_FILE).read_text()) if (out / REPORT_FILE).is_file() else {}
    atomic_write_text(out / REPORT_FILE, dumps_json({**previous, **{k: v for k, v in report.items()
                                                                     if k not in ("seconds", "files")},
                                                     "seconds_" + "+".join(args.parts): report["seconds"]}))
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
