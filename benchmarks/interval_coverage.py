"""Coverage of the set-metric intervals (macs_bench.metrics.resample) over many seeds, when the generated and
reference sets come from one distribution ("same") and from different ones ("shifted": a mean shift and a
wider spread on some dimensions, as a real model's images differ from the ground truth).

For each metric it prints the share of seeds whose 95% interval holds the estimand (the estimator's
expectation at this N: Monte Carlo over independent draws; the population value for the unbiased ones) and the
median width over the width a normal interval with the true spread would have (w/oracle: 1 when the spread
is estimated right; the true spread from the same independent draws), for several numbers of resampling
rounds, so a Monte Carlo shortfall of few rounds (noisy tail quantiles, a noisy variance fit) is told apart
from a shortfall of the method itself. A binomial 95% band
around 0.95 for S seeds is about +-2 sqrt(0.95*0.05/S).
Run: nice -n 19 .venv/bin/python benchmarks/interval_coverage.py [--seeds 100] [--rounds 120 400] [--n 120]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from macs_bench.metrics.sets import set_metric_functions
from macs_bench.metrics.resample import on_rows, resample_intervals

D = 6
CHECKED = ("fid", "kid", "cmmd", "cmmd_unbiased", "precision_inception", "coverage_inception")


def draw(seed: int, n: int, case: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    gen, ref = rng.normal(size=(n, D)), rng.normal(size=(n, D))
    if case == "shifted":
        gen[:, :2] = 0.5 + 1.3 * gen[:, :2]
    return gen, ref


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--rounds", type=int, nargs="+", default=[120, 400])
    parser.add_argument("--n", type=int, default=120)
    parser.add_argument("--cases", nargs="+", default=["same", "shifted"])
    parser.add_argument("--truth-draws", type=int, default=300)
    args = parser.parse_args()
    fns = set_metric_functions(kid_subsets=1, kid_subset_size=1000, kid_seed=0)
    band = 2 * np.sqrt(0.95 * 0.05 / args.seeds)
    print(f"N = {args.n}, d = {D}, {args.seeds} seeds, nominal 0.95 (binomial band +-{band:.3f})")
    for case in args.cases:
        t0 = time.perf_counter()
        values = {m: [fns[m][1](*draw(10_000 + s, args.n, case)) for s in range(args.truth_draws)] for m in CHECKED}
        truth = {m: float(np.mean(v)) for m, v in values.items()}
        oracle = {m: 2 * 1.96 * float(np.std(v, ddof=1)) for m, v in values.items()}  # a normal interval's width
        for rounds in args.rounds:
            covered = {m: 0 for m in CHECKED}
            inside = {m: 0 for m in CHECKED}
            widths = {m: [] for m in CHECKED}
            for seed in range(args.seeds):
                gen, ref = draw(seed, args.n, case)
                ci = resample_intervals({m: ("set", on_rows(fns[m][1], gen, ref)) for m in CHECKED},
                                        list(range(args.n)), rounds=rounds, seed=seed + 10**6)
                for m in CHECKED:
                    point = fns[m][1](gen, ref)
                    inside[m] += ci[m]["low"] <= point <= ci[m]["high"]
                    covered[m] += ci[m]["low"] <= truth[m] <= ci[m]["high"]
                    widths[m].append(ci[m]["high"] - ci[m]["low"])
            cells = "  ".join(f"{m} {covered[m] / args.seeds:.2f} (w/oracle {np.median(widths[m]) / oracle[m]:.2f})"
                              for m in CHECKED)
            print(f"{case:8s} rounds {rounds:4d}: {cells}   point inside: "
                  f"{min(inside.values())}/{args.seeds}   [{time.perf_counter() - t0:.0f} s]", flush=True)


if __name__ == "__main__":
    main()
