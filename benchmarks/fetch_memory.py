"""Peak memory of the fetch run loop at 10k and 100k synthetic ids, with clips that take no time.

The run loop (:func:`macs_bench.media.fetch.run_fetch`) takes work in bounded batches, so what it allocates
should not grow with the number of ids. Measured with tracemalloc over the loop alone (the id list itself is
built before), beside a one-future-per-id loop (how it was before) as the control, all in this run.
Run: .venv/bin/python benchmarks/fetch_memory.py [--small 10000] [--large 100000] [--jobs 4]
"""

from __future__ import annotations

import argparse
import threading
import tracemalloc
from concurrent.futures import ThreadPoolExecutor, as_completed

from macs_bench.media.clip import FetchOptions, Outcome
from macs_bench.media.fetch import run_fetch
from macs_bench.media.items import FetchItem


class InstantFetcher:
    """Every clip ``ok`` at once, nothing written: only the loop's own memory is measured."""

    def __init__(self, jobs: int):
        self.options = FetchOptions(jobs=jobs, report_every=1e9)
        self.stop = threading.Event()

    def process(self, item: FetchItem) -> Outcome:
        return Outcome("ok", detail={"source": "download", "frame_seconds": [4]})


class CountingLedger:
    def __init__(self):
        self.n = 0

    def record(self, *args) -> None:
        self.n += 1


def one_future_per_id(fetcher: InstantFetcher, ledger: CountingLedger, todo: list[FetchItem]) -> None:
    """The control: every id's future submitted at once (the loop before issue 22)."""
    with ThreadPoolExecutor(max_workers=fetcher.options.jobs) as pool:
        futures = {pool.submit(fetcher.process, item): item for item in todo}
        for future in as_completed(futures):
            outcome = future.result()
            ledger.record(futures[future].sample_id, outcome.status)


def peak_mib(loop, n: int, jobs: int) -> float:
    todo = [FetchItem(f"v{i:010d}_0_10", f"v{i:010d}", "0", "10", (4,), 2) for i in range(n)]
    ledger = CountingLedger()
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    loop(InstantFetcher(jobs), ledger, todo)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    assert ledger.n == n
    return peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, default=4)
    args = parser.parse_args()

    print(f"peak memory of the run loop (tracemalloc, MiB), {args.jobs} workers, instant clips")
    for name, loop in (("bounded batches (run_fetch)", run_fetch), ("one future per id (control)", one_future_per_id)):
        small, large = peak_mib(loop, args.small, args.jobs), peak_mib(loop, args.large, args.jobs)
        print(f"{name:30s} {args.small:>7,} ids: {small:8.2f}   {args.large:>7,} ids: {large:8.2f}   "
              f"ratio {large / small:5.2f}")


if __name__ == "__main__":
    main()
