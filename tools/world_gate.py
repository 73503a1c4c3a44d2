"""The world's gate: does a single mixture embedding lose what per-source embeddings keep?

    python tools/world_gate.py            # run on the shipped world CLAP, print, exit 1 if the gate fails
    python tools/world_gate.py --record   # also record the result in macs_bench/world/weights/report.json

On held-out mixtures, the same linear probe must recover the exact label set at least 15 points less often
from the world CLAP's mixture embedding than from the sum of the true sources' embeddings
(``macs_bench.world.gate`` defines both). If it fails, the world is too easy and must be changed, not the gate.
Deterministic (one thread, fixed seeds); about half a minute.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from macs_bench.io import atomic_write_text, dumps_json
    from macs_bench.world import CLAP_FILE, REPORT_FILE, WORLD_DIR
    from macs_bench.world.gate import run_gate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clap", type=Path, default=WORLD_DIR / CLAP_FILE, help="world CLAP weights to gate")
    parser.add_argument("--record", action="store_true", help="write the result into the world report")
    args = parser.parse_args(argv)
    result = run_gate(args.clap)
    print(f"mixture probe {result.mixture_accuracy:.3f}, per-source probe {result.per_source_accuracy:.3f}, "
          f"gap {result.gap:+.3f} (needs >= {result.margin:.2f}): {'HOLDS' if result.holds else 'FAILS'}")
    for k in sorted(result.mixture_by_sources):
        print(f"  {k} sources: mixture {result.mixture_by_sources[k]:.3f}, "
              f"per-source {result.per_source_by_sources[k]:.3f}")
    if args.record:
        report = WORLD_DIR / REPORT_FILE
        held = json.loads(report.read_text(encoding="utf-8")) if report.is_file() else {}
        atomic_write_text(report, dumps_json({**held, "gate": result.to_dict()}))
    return 0 if result.holds else 1


if __name__ == "__main__":
    sys.exit(main())
