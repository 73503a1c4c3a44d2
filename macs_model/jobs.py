"""Independent, seeded CPU jobs run side by side: the world's demo and ablations put one fold (or one stage-1
run) in each process, so a 2-CPU machine does two at once. Each process runs torch on one thread, as the world
does inline, so a job computes the same bytes whichever way it runs."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

Job = tuple[str, Callable[..., Any], tuple]  # (name, a module-level function, its arguments)


def default_processes(jobs: int) -> int:
    """One process per job up to the CPU count."""
    import os

    return max(1, min(jobs, os.cpu_count() or 1))


def run_jobs(jobs: Sequence[Job], processes: int, log: Callable[[str], None], prefix: str = "[jobs]"
             ) -> dict[str, Any]:
    """Run the jobs inline (``processes`` 1, or a single job) or in that many spawned processes; returns name
    -> what the function returned, or the seconds it worked when it returned None. A failed job raises its
    error here after the jobs not yet started are cancelled."""
    def finished(name: str, value: Any, seconds: float) -> Any:
        log(f"{prefix} {name}: {seconds:.0f} s")
        return round(seconds, 2) if value is None else value

    if processes <= 1 or len(jobs) <= 1:
        done = {}
        for name, function, args in jobs:
            log(f"{prefix} {name}")
            value, seconds = _timed(function, args)
            done[name] = finished(name, value, seconds)
        return done
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    workers = min(processes, len(jobs))
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_worker_start) as pool:
        futures = {name: pool.submit(_timed, function, args) for name, function, args in jobs}
        log(f"{prefix} {', '.join(futures)}: {workers} processes")
        try:
            return {name: finished(name, *future.result()) for name, future in futures.items()}
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise


def cpu_seconds() -> float:
    """CPU time of this process and of its finished worker processes (``time.process_time`` alone misses
    the workers)."""
    import os

    times = os.times()
    return time.process_time() + times.children_user + times.children_system


def _timed(function: Callable[..., Any], args: tuple) -> tuple[Any, float]:
    started = time.perf_counter()
    value = function(*args)
    return value, time.perf_counter() - started


def _worker_start() -> None:
    import torch

    torch.set_num_threads(1)
    import macs_bench.world.scoring  # noqa: F401  registers the world's encoder preset in the new process
