"""The paper's ablations computed (issue 21 item 4): ``macs-model ablations``.

Rows (paper §4.6, Tab. 4, Fig. 4, plus the controls a reviewer asks for):

- ``MACS``: the full method; ``no-RL`` / ``no-CL``: stage 1 without the soft-rank / the contrastive loss;
  ``waveform``: the Table 4 waveform-domain (MixIT-style) separator in place of the STFT UNet; ``no-DC``: the
  audio tokens appended to the text tokens instead of decoupled cross-attention (MACS's separator);
- ``no-sep 1 token``: the mixture's CLAP embedding as one token; ``no-sep M slots``: the same embedding repeated
  into M slots, the separator's capacity without its information;
- Fig. 4: MACS's adapter conditioned on its first 1, 2, 3 slots (``top-K``) and on slots 4, 5, 6;
- in the world, the harness's world baselines (``macs_model.baselines.world``);
- controls beside the table, never ranked: oracle, shuffled, noise, colour-only (a flat tint of the clip's
  motif colours) and all-motifs (every class drawn).

Every row is scored per fold; the table gives fold means and, against MACS, each metric's paired difference,
its interval and permutation p (:func:`macs_bench.compare`), Holm-corrected over the row's metrics. Stage-1
runs, adapters, images and score results are kept under the output folder and reused by a rerun.
"""

from __future__ import annotations

import json
import os
import time
from functools import partial
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from macs_bench.errors import MacsError
from macs_bench.io import atomic_write_text, dumps_json
from macs_model.ablation_plan import (REFERENCE, SEPARATORS, AblationPlan, AblationResult, Benchmark, Variant,
                                     adapter_dir, pred_dir)
from macs_model.jobs import cpu_seconds, run_jobs
from macs_model.run_folder import claim_plan



def world_benchmark(out: Path, plan: AblationPlan) -> Benchmark:
    """The synthetic world's benchmark (written once under ``out``) with its shipped CLAP and SD base."""
    from macs_bench.world.synthetic import write_synthetic
    from macs_bench.world import SD_DIR, WORLD_DIR
    from macs_model.separation.api import WORLD_CLAP

    data = write_synthetic(out / "data", n_clips=plan.clips, seed=0, prefix="syn")
    pretrain = write_synthetic(out / "pretrain", n_clips=plan.pretrain_clips, seed=1, prefix="pre")
    return Benchmark(data.manifest, data.media, str(pretrain.manifest), pretrain.media, clap=WORLD_CLAP,
                     base=str(WORLD_DIR / SD_DIR), preset="world", separator_preset="tiny", device="cpu",
                     ramp=True)


def check_real(manifest, media, pretrain_media, device: str) -> None:
    """Argument checks of the real-benchmark path: its folders exist and a GPU is asked for."""
    if manifest is None or media is None:
        raise MacsError("ablations on a real benchmark need --manifest and --media (or --world)")
    for what, path in (("--manifest", manifest), ("--media", media), ("--pretrain-media", pretrain_media)):
        if path is None or not Path(path).is_dir():
            raise MacsError(f"{path}: {what} is not a folder")
    from macs_bench.device import resolve_device

    if resolve_device(device).type == "cpu":
        raise MacsError("ablations on a real benchmark train 7 Stable Diffusion adapters per fold: they need a "
                        "GPU (--device cuda); use --world for the CPU-sized synthetic world")


TABLE_ONLY = ("rows", "baselines", "rounds", "workers")  # a rerun may change these, reusing the rest


def run_ablations(out: str | os.PathLike = "runs/ablations", *, plan: AblationPlan | None = None,
                  benchmark: Benchmark | None = None, progress: bool = True,
                  log: Callable[[str], None] = print) -> AblationResult:
    """Train (or reuse), generate and score every row of ``plan`` per fold into ``out``; write the table
    (``ablations.md`` / ``ablations.json``), the leaderboard with its radar, and a sample grid. Without
    ``benchmark`` the plan must be a world plan. The world runs torch on one thread (see ``run_demo``)."""
    import torch

    plan = plan or AblationPlan()
    if benchmark is None and not plan.world:
        raise MacsError("a real-benchmark ablation needs its Benchmark (manifest, media, pre-training data)")
    threads = torch.get_num_threads()
    if plan.world:
        torch.set_num_threads(1)
    try:
        return _run(Path(out).expanduser(), plan, benchmark, progress, log)
    finally:
        torch.set_num_threads(threads)


def _run(out: Path, plan: AblationPlan, bench: Benchmark | None, progress: bool,
         log: Callable[[str], None]) -> AblationResult:
    from macs_bench.metrics.scoring import ScoreConfig
    from macs_model.ablation_table import write_outputs

    started, cpu_started = time.perf_counter(), cpu_seconds()
    out.mkdir(parents=True, exist_ok=True)
    world_weights = None
    if plan.world:
        import macs_bench.world.scoring  # noqa: F401  registers the 'world' encoder preset
        from macs_bench.world import WORLD_DIR
        from macs_bench.world.checksums import verify_tree

        world_weights = verify_tree(WORLD_DIR)
        claim_plan(out / "plan.json", {**asdict(plan), "benchmark": {"world": True}}, what="an ablation run",
                   ignore=TABLE_ONLY)
        bench = world_benchmark(out, plan)
    else:
        claim_plan(out / "plan.json", {**asdict(plan), "benchmark": {k: str(v) for k, v in asdict(bench).items()}},
                   what="an ablation run", ignore=TABLE_ONLY)
    scoring = ScoreConfig(preset="world" if plan.world else "paper", cache_dir=str(out / "features"))

    inline = plan.processes() == 1  # else each job runs in a worker process, where only print reaches the terminal
    separators = [(f"stage 1: separator {key}", _separator, (key, bench, plan, out, progress and inline))
                  for key in plan.separators()]
    timings = run_jobs(separators, plan.processes(), log, "[ablations]")
    for jobs in fold_jobs(bench, plan, out, scoring):
        timings |= run_jobs(jobs, plan.processes(), log, "[ablations]")
    seconds = round(time.perf_counter() - started, 2)
    work = _work_ledger(out / "timings.json", timings)
    record = {"work_seconds": round(sum(work.values()), 2), "work": work, "plan": asdict(plan),
              "benchmark": {k: str(v) for k, v in asdict(bench).items()}, "world_weights": world_weights,
              "seconds": timings, "run_seconds": seconds, "processes": plan.processes(),
              "cpu_seconds": round(cpu_seconds() - cpu_started, 2),
              "cpus": os.cpu_count(), "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}
    table_started = time.perf_counter()
    table = "table, radar and grid"
    result = run_jobs([(table, partial(write_outputs, log=log), (out, plan, bench, record))], 1, log,
                      "[ablations]")[table]
    result.seconds = round(time.perf_counter() - started, 2)  # the whole invocation, the table included
    written = json.loads(result.record.read_text(encoding="utf-8"))
    written |= {"table_seconds": round(time.perf_counter() - table_started, 2), "total_seconds": result.seconds,
                "total_cpu_seconds": round(cpu_seconds() - cpu_started, 2)}
    atomic_write_text(result.record, dumps_json(written))
    return result


def _separator(key: str, bench: Benchmark, plan: AblationPlan, out: Path, progress: bool) -> None:
    from macs_model.separation.api import train_separator

    train_separator(bench.pretrain, bench.pretrain_media, out / "separators" / key, preset=bench.separator_preset,
                    clap=bench.clap, steps=plan.separator_steps, seed=plan.seed, device=bench.device,
                    ramp=bench.ramp, progress=progress, **SEPARATORS[key])


def fold_jobs(bench: Benchmark, plan: AblationPlan, out: Path, scoring) -> list[list[tuple]]:
    """The folds' jobs in two waves, each a flat list the workers share: first every row that trains its own
    adapter and the world baselines (the longest first), then what reads their output (Fig. 4's rows reuse
    MACS's adapter, the shuffled control its images) and the controls."""
    from macs_model.generation.api import fold_ids

    first: list[tuple] = []
    if plan.world and plan.baselines:
        first += [(f"fold {fold}: world baselines", _baselines, (fold, bench, plan, out, scoring))
                  for fold in plan.folds]
    then: list[tuple] = []
    for fold in plan.folds:
        for v in plan.variants():
            (then if v.adapter_of else first).append((f"fold {fold}: {v.name}", _row,
                                                      (v, fold, bench, plan, out, scoring)))
        test = fold_ids(bench.manifest, fold)[1]
        then.append((f"fold {fold}: controls", _controls, (fold, test, bench, plan, out / "pred", out / "results",
                                                           scoring)))
    return [first, then]


def _baselines(fold: int, bench: Benchmark, plan: AblationPlan, out: Path, scoring) -> None:
    from macs_model.baselines.world import world_baseline_rows

    world_baseline_rows(bench.manifest, bench.media, out / "baselines", folds=[fold], results=out / "results",
                        separator=out / "separators" / "full", config=scoring, seed=plan.seed)


def _work_ledger(path: Path, timings: dict[str, float]) -> dict[str, float]:
    """Seconds each job took when it did its work (the longest run seen), kept across reruns, so a rerun that
    reuses everything still reports what the table cost."""
    try:
        held = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError):
        held = {}
    ledger = {**held, **{k: max(v, held.get(k, 0.0)) for k, v in timings.items()}}
    atomic_write_text(path, dumps_json(ledger))
    return ledger


def _row(v: Variant, fold: int, bench: Benchmark, plan: AblationPlan, out: Path, scoring) -> None:
    """Train (or reuse) the row's adapter on the other folds, draw its test images, score them."""
    from macs_model.generation.api import generate, train_generator

    trained = v.adapter_of or v.name
    run = adapter_dir(out, trained, fold)
    if v.adapter_of is None:
        if v.separator is None:
            from macs_model.separation.api import separator_preset

            m = separator_preset(bench.separator_preset).num_sources if v.mixture_slots == -1 else v.mixture_slots
            conditioning: dict[str, Any] = {"no_separation": True, "mixture_slots": m}
        else:
            conditioning = {"separator": out / "separators" / v.separator}
        train_generator(bench.manifest, bench.media, run, fold=fold, preset=bench.preset, base=bench.base,
                        clap=bench.clap, steps=plan.generator_steps, decoupled=v.decoupled, progress=False,
                        device=bench.device, **conditioning)
    images = pred_dir(out, v.name)
    generate(bench.manifest, bench.media, run, images, fold=fold, clap=bench.clap, top_k=v.top_k,
             slots=v.slots, seed=plan.seed, device=bench.device, progress=False)
    _score(bench, images, v.name, fold, out / "results", scoring)


def _score(bench: Benchmark, images: Path, name: str, fold: int, results: Path, scoring) -> None:
    """Score unless a result newer than every image of the folder is there already (a rerun reuses it)."""
    from macs_bench.metrics.scoring import score

    target = results / f"{name}-fold{fold}.json"
    newest = max((p.stat().st_mtime for p in images.glob("*.png")), default=0.0)
    if target.is_file() and target.stat().st_mtime >= newest:
        return
    score(bench.manifest, images, bench.media, model_name=name, fold=fold, out=target, config=scoring)


def _controls(fold: int, test: Sequence[str], bench: Benchmark, plan: AblationPlan, pred: Path, results: Path,
              scoring) -> None:
    """Oracle, shuffled (MACS's images on the wrong clips), noise, colour-only and all-motifs, marked as
    controls; on a real benchmark only the shuffled row (the others draw the world's motifs)."""
    from macs_bench.world import controls
    from macs_model.demo import _labels, _mark_control

    labels = _labels(bench.manifest)
    writers = {"oracle": lambda d: controls.write_oracle({s: labels[s] for s in test}, d),
               "shuffled": lambda d: controls.write_shuffled(pred_dir(pred.parent, REFERENCE), test, d),
               "noise": lambda d: controls.write_noise(test, d),
               "colour-only": lambda d: controls.write_colour_only({s: labels[s] for s in test}, d),
               "all-motifs": lambda d: controls.write_all_motifs({s: labels[s] for s in test}, d)}
    for name, write in writers.items():
        if not plan.world and name != "shuffled":
            continue  # drawn controls exist in the world only
        write(pred / name)
        _score(bench, pred / name, name, fold, results, scoring)
        _mark_control(results / f"{name}-fold{fold}.json")
