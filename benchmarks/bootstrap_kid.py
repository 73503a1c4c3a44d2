"""Bootstrap cost of KID: kernel matrices computed once and gathered per round (``kid_resampler``) against
recomputing ``kernel_inception_distance`` on every resampled set, on Inception-sized random features.

Prints the ratio of the two timings measured within this run, and the largest relative difference of the
values (the same draws, so they agree to rounding).
Run: .venv/bin/python benchmarks/bootstrap_kid.py [--n 1000] [--dim 2048] [--subsets 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from macs_bench.metrics.kid import kernel_inception_distance, kid_resampler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--subsets", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    a = np.abs(rng.normal(size=(args.n, args.dim)))  # non-negative like Inception's pool features
    b = np.abs(rng.normal(size=(args.n, args.dim))) * 1.05
    draws = [rng.integers(0, args.n, size=args.n) for _ in range(args.rounds)]

    start = time.perf_counter()
    slow = [kernel_inception_distance(a[r], b[r], args.subsets, 1000, 0)[0] for r in draws]
    t_slow = time.perf_counter() - start
    start = time.perf_counter()
    fast_fn = kid_resampler(a, b, args.subsets, 1000, 0)
    fast = [fast_fn(r) for r in draws]
    t_fast = time.perf_counter() - start
    worst = max(abs(x - y) / abs(y) for x, y in zip(fast, slow))
    print(f"N={args.n} d={args.dim} subsets={args.subsets} rounds={args.rounds}")
    print(f"recompute per round: {t_slow:.2f} s; kernels once then gather: {t_fast:.2f} s "
          f"(setup included); ratio {t_slow / t_fast:.1f}x; max relative difference {worst:.1e}")


if __name__ == "__main__":
    main()
