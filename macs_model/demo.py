"""The offline end-to-end demo (the README's main job): a miniature of the paper in a synthetic world.

The world (``macs_bench.world.synthetic``, ``docs/world.md``): twelve sound classes sharing frequency bands,
each tied to a coloured motif (colours shared, so shape decides); clips mix one to five. Its foundation models
are trained once and shipped (``macs_bench.world``): a CLAP-like pair, a small Stable Diffusion base, and
scoring towers standing in for Inception, CLIP and wav2clip. The demo trains only what MACS trains: the
separator (stage 1, ``--clap world``) on pre-training clips, then for each fold the audio adapter on the frozen
world base (stage 2, ``world`` preset), with and without separation, through the same code as the paper
preset. Control rows calibrate the metrics: ``oracle`` (the true motifs re-drawn in another layout),
``shuffled`` (MACS-world's images handed to the wrong clips), ``noise``, ``colour-only`` (a flat tint of the
clip's motif colours) and ``all-motifs`` (every class drawn). Every metric is checked to order the oracle above
the shuffled and noise rows; per-source coverage (share of a clip's classes whose motif the world's zero-shot
detector finds) is reported by number of sources.

Each stage resumes or skips finished work, so a rerun re-scores from cached features: seconds. A folder holds
one plan: the quick and the full demo need different folders.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from macs_bench.io import atomic_write_text, dumps_json

NOTICE = ("SYNTHETIC-WORLD DEMO: twelve sound classes tied to twelve motifs, world-trained stand-ins for CLAP, Stable "
          "Diffusion, Inception, CLIP and wav2clip. The numbers measure this miniature world only; they are not "
          "comparable with the paper.")
MODELS = ("MACS-world", "no-separation-world")
CONTROLS = ("oracle", "shuffled", "noise", "colour-only", "all-motifs")
ROWS = ("oracle", *MODELS, *CONTROLS[1:])


@dataclass(frozen=True)
class DemoPlan:
    """How big the demo is; ``quick`` is the shortened form the test suite runs."""

    clips: int = 160
    pretrain_clips: int = 96
    folds: tuple[int, ...] = (0, 1)
    separator_steps: int = 150
    generator_steps: int = 300

    @classmethod
    def quick(cls) -> "DemoPlan":
        return cls(clips=60, pretrain_clips=32, folds=(0,), separator_steps=20, generator_steps=120)


def _labels(manifest: Path) -> dict[str, tuple[str, ...]]:
    from macs_bench.datasets.manifest import manifest_rows, split_list

    return {r["sample_id"]: tuple(split_list(r["labels"])) for r in manifest_rows(manifest)}


def judged_coverage(pred: Path, ids: list[str], labels: dict[str, tuple[str, ...]], towers=None):
    """Each clip's per-source coverage (:class:`~macs_bench.metrics.coverage.CoverageScores`) of the images
    ``pred/<id>.png``, with the world's image and text towers as the detector (the world's judge; loaded
    here unless given, so that a caller judging many folders loads them once)."""
    import torch

    from macs_bench.metrics.coverage import source_coverage
    from macs_bench.world.synthetic import CLASSES
    from macs_bench.world.scoring import image_input
    from macs_bench.world.towers import load_towers

    towers = towers or load_towers()
    with torch.no_grad():
        images = towers.image(torch.stack([image_input(pred / f"{sid}.png") for sid in ids])).numpy()
        text = towers.text(list(CLASSES)).numpy()
    return source_coverage(images, text, [[CLASSES.index(c) for c in labels[sid]] for sid in ids])


def fold_coverage(pred: Path, ids: list[str], labels: dict[str, tuple[str, ...]]) -> dict[str, float]:
    """Per-source coverage of one row on one fold (the world's judge): the mean, by number of sources, n."""
    from macs_bench.world.controls import coverage_summary

    return coverage_summary(judged_coverage(pred, ids, labels)) | {"n": float(len(ids))}


def metric_checks(means: dict[str, dict[str, float]]) -> list[str]:
    """One line per metric: does it order the oracle above the shuffled and noise rows? Plus the z-scores of
    the shuffled row, which should sit near zero."""
    import math

    from macs_bench.metrics.spec import DIRECTIONS, LABELS

    lines = []
    for metric, direction in DIRECTIONS.items():
        values = {row: means.get(row, {}).get(metric) for row in ("oracle", "shuffled", "noise")}
        if any(v is None for v in values.values()):
            lines.append(f"{LABELS[metric]}: not measured for every control row")
            continue
        sign = 1 if direction == "higher" else -1
        beaten = [row for row in ("shuffled", "noise") if sign * (values["oracle"] - values[row]) <= 0]
        lines.append(f"{LABELS[metric]}: " + ("orders oracle above shuffled and noise" if not beaten else
                                              f"CANNOT TELL the oracle from {' and '.join(beaten)}"))
    same = [LABELS[m] for m in ("fid", "clip_fid", "kid")
            if None not in (means.get("shuffled", {}).get(m), means.get("MACS-world", {}).get(m))
            and math.isclose(means["shuffled"][m], means["MACS-world"][m], rel_tol=1e-9, abs_tol=1e-12)]
    if same:
        lines.append(f"{', '.join(same)}: the shuffled row equals MACS-world (the same images): distribution "
                     "metrics cannot see which clip an image belongs to")
    for metric in ("ais_z", "iis_z"):
        value = means.get("shuffled", {}).get(metric)
        if value is not None:
            lines.append(f"{LABELS[metric]} of the shuffled control: {value:+.3f} (expected near 0)")
    return lines


def _mark_control(path: Path) -> None:
    """Stamp a control row's result so the leaderboard shows it as a control and never ranks it."""
    import json

    data = json.loads(path.read_text(encoding="utf-8"))
    data["row"] = {"kind": "control", "source": "computed", "may_have_seen_test": False,
                   "note": "calibrates the metrics; not a model"}
    atomic_write_text(path, dumps_json(data))


def _coverage_table(cov: dict[str, list[dict[str, float]]]) -> tuple[str, dict[str, dict[str, float]]]:
    """Markdown table of mean coverage over folds (overall and by number of sources), and the means."""
    import numpy as np

    from macs_bench.world.sounds import MAX_SOURCES

    keys = ("coverage", *(f"coverage_{k}" for k in range(1, MAX_SOURCES + 1)))
    means = {row: {k: float(np.mean([f[k] for f in folds if k in f])) for k in keys} for row, folds in cov.items()}

    def cell(row: str, k: str) -> str:
        values = [f[k] for f in cov[row] if k in f]
        return f"{np.mean(values):.3f}" + (f" ± {np.std(values, ddof=1):.3f}" if len(values) > 1 else "")

    lines = ["| row | coverage | 1 source | " + " | ".join(f"{k[9:]} sources" for k in keys[2:]) + " |",
             "|---|" + "---:|" * len(keys)]
    lines += [f"| {row} | " + " | ".join(cell(row, k) for k in keys) + " |" for row in cov]
    return "\n".join(lines), means


def scope_note(plan: DemoPlan) -> str:
    """What this run covers of the world's benchmark, and what it trains versus reuses."""
    return (f"Scope: {plan.clips} clips in 5 folds, of which folds {', '.join(map(str, plan.folds))} are run (the "
            "world's full benchmark, `write_synthetic`'s default, is 600 clips, 120 test clips per source count); "
            "the separator and both adapters are trained in this run, the world's foundation models (CLAP, SD "
            "base, scoring towers) are the shipped checkpoints.")


def stage1_notes(plan: DemoPlan) -> str:
    """The demo's stage-1 recipe against the paper's: the ramp it keeps, and every setting where it deviates
    (computed from the two presets, so a changed preset cannot leave the note stale)."""
    from dataclasses import fields

    from macs_model.separation.api import separator_preset
    from macs_model.separation.train_config import TrainConfig

    ours = TrainConfig.preset("tiny", steps=plan.separator_steps, epochs=None, ramp=True)
    paper = TrainConfig.preset("paper")
    epochs = ours.total_epochs(plan.pretrain_clips)

    def diff(a, b, skip=()) -> str:
        return ", ".join(f"{f.name} {getattr(a, f.name)} (paper {getattr(b, f.name)})" for f in fields(a)
                         if f.name not in skip and getattr(a, f.name) != getattr(b, f.name))

    return (f"Stage 1 runs the paper's loss ramp, reconstruction only in the first epoch to alignment only in the "
            f"last, over {epochs} epochs of {plan.pretrain_clips} world pre-training clips ({plan.separator_steps} "
            f"steps; the paper: 10 epochs of FSD50K), with the world CLAP for LAION-CLAP. Deviations from the "
            f"paper's training preset: {diff(ours, paper, skip=('steps', 'epochs', 'checkpoint_every'))}. The "
            f"separator is the tiny STFT-UNet: {diff(separator_preset('tiny'), separator_preset('paper'))}.")


def _grid_ids(labels: dict[str, tuple[str, ...]], ids: list[str], per_count: int = 2) -> list[str]:
    """Test clips with one, three and five sources, ``per_count`` of each (sorted ids)."""
    return [sid for k in (1, 3, 5) for sid in [s for s in sorted(ids) if len(labels[s]) == k][:per_count]]


def run_demo(out: str | os.PathLike = "runs/demo", *, plan: DemoPlan | None = None, progress: bool = True,
             processes: int | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every stage into ``out``; returns the summary also written to ``out/summary.json``.

    Runs torch on one thread (restored afterwards): the world's models are so small that a second thread costs
    more in synchronisation than it gains (ten times slower per adapter step on a busy 2-CPU machine). The folds
    run side by side in ``processes`` processes instead (default: one per fold up to the CPU count); the jobs
    are seeded, so the numbers do not depend on it.
    """
    import torch

    from macs_model.jobs import default_processes

    plan = plan or DemoPlan()
    processes = processes or default_processes(len(plan.folds))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run_demo(Path(out), plan, progress, processes, log)
    finally:
        torch.set_num_threads(threads)


def _run_demo(out: Path, plan: DemoPlan, progress: bool, processes: int,
              log: Callable[[str], None]) -> dict[str, Any]:
    import json

    from macs_bench import compare
    from macs_bench.boards import build_leaderboard, load_results, write_leaderboard
    from macs_bench.world.synthetic import write_synthetic
    from macs_bench.plots.grid import sample_grid
    import macs_bench.world.scoring  # noqa: F401  registers the 'world' encoder preset
    from macs_bench.world import WORLD_DIR
    from macs_bench.world.checksums import verify_tree
    from macs_model.generation.api import fold_ids
    from macs_model.jobs import cpu_seconds, run_jobs
    from macs_model.run_folder import claim_plan
    from macs_model.separation.api import WORLD_CLAP, train_separator

    claim_plan(out / "plan.json", plan.__dict__, what="a demo run",
               hint="delete that folder (runs/demo-quick suits the quick plan)")
    world = verify_tree(WORLD_DIR)
    started, cpu_started = time.perf_counter(), cpu_seconds()
    timings: dict[str, float] = {}

    def stage(name: str):
        log(f"[demo] {name}")
        timings[name] = time.perf_counter()

    def done(name: str):
        timings[name] = round(time.perf_counter() - timings[name], 2)

    stage("synthetic benchmark")
    data = write_synthetic(out / "data", n_clips=plan.clips, seed=0, prefix="syn")
    pretrain = write_synthetic(out / "pretrain", n_clips=plan.pretrain_clips, seed=1, prefix="pre")
    labels = _labels(data.manifest)
    done("synthetic benchmark")

    stage("stage 1: separator on the pre-training clips (world CLAP)")
    train_separator(str(pretrain.manifest), pretrain.media, out / "separator", preset="tiny", clap=WORLD_CLAP,
                    steps=plan.separator_steps, ramp=True, progress=progress)
    done("stage 1: separator on the pre-training clips (world CLAP)")

    results = out / "results"
    inline = processes == 1  # else each fold runs in a worker process, where only print reaches the terminal
    folds = run_jobs([(f"fold {fold}", _fold, (out, data.manifest, data.media, plan, fold, progress and inline,
                                                log if inline else None)) for fold in plan.folds],
                     processes, log, "[demo]")
    coverage: dict[str, list[dict[str, float]]] = {row: [] for row in ROWS}
    for fold_timings, fold_coverage_ in folds.values():
        timings.update(fold_timings)
        for row in ROWS:
            coverage[row].append(fold_coverage_[row])

    stage("leaderboard, checks, radar and grid")
    board_dir = out / "leaderboard"
    leaderboard = build_leaderboard(load_results(results), "synthetic", folds=list(plan.folds), paper_rows="never")
    leaderboard.title = "MACS demo in the synthetic world"
    means = {row.name: dict(row.mean) for row in leaderboard.rows}
    checks = metric_checks(means)
    table, coverage_means = _coverage_table(coverage)
    leaderboard.notes[:0] = [NOTICE, scope_note(plan), stage1_notes(plan),
                             "Metric checks: " + "; ".join(checks) + ".",
                             "Per-source coverage (mean ± std over folds; the world's zero-shot detector; a random "
                             "ranking scores K/12 for K sources; oracle, shuffled, noise, colour-only and all-motifs "
                             "are controls, not ranked):\n\n" + table]
    ranges = {m: (means["noise"][m], means["oracle"][m]) for m in means["oracle"]
              if means["noise"].get(m) is not None and means["oracle"][m] is not None}
    write_leaderboard(board_dir, leaderboard, radar=True, radar_ranges=ranges,
                      radar_note="each axis from the noise row (centre) to the oracle row (rim)")
    separation = compare([results / f"{m}-fold{f}.json" for m in MODELS for f in plan.folds], rounds=1000)
    atomic_write_text(board_dir / "separation.txt", separation.table() + "\n")
    shown = _grid_ids(labels, fold_ids(data.manifest, plan.folds[0])[1])
    sample_grid(data.manifest, data.media, {m: out / "pred" / m for m in ("oracle", *MODELS)}, board_dir / "grid.png",
                sample_ids=shown, tile=128)
    done("leaderboard, checks, radar and grid")

    paired = {d.metric: {"a": d.a, "b": d.b, "difference": d.value, "low": d.low, "high": d.high, "p": d.p,
                         "p_holm": d.p_adjusted} for d in separation.differences}
    summary = {"notice": NOTICE, "scope": scope_note(plan), "stage1": stage1_notes(plan), "out": str(out),
               "plan": plan.__dict__, "seconds": timings, "total_seconds": round(time.perf_counter() - started, 2),
               "cpu_seconds": round(cpu_seconds() - cpu_started, 2), "processes": processes,
               "world_weights": world,
               "metric_checks": checks, "coverage": coverage_means, "coverage_folds": coverage,
               "metrics": means, "separation": paired, "separation_table": str(board_dir / "separation.txt"),
               "leaderboard": str(board_dir / "leaderboard.md"),
               "radar": str(board_dir / "radar.png"), "grid": str(board_dir / "grid.png")}
    atomic_write_text(out / "summary.json", dumps_json(json.loads(dumps_json(summary))))
    return summary


def _fold(out: Path, manifest: Path, media: Path, plan: DemoPlan, fold: int, progress: bool,
          log: Callable[[str], None] | None) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """One fold: both adapters trained on the other folds, their test images, the controls, every row scored;
    returns each stage's seconds and each row's coverage."""
    from macs_bench.metrics.scoring import ScoreConfig, score
    from macs_bench.world import SD_DIR, WORLD_DIR
    from macs_bench.world.controls import (write_all_motifs, write_colour_only, write_noise, write_oracle,
                                           write_shuffled)
    from macs_model.generation.api import fold_ids, generate, train_generator
    from macs_model.separation.api import WORLD_CLAP

    log = log or print
    labels = _labels(manifest)
    results, pred = out / "results", out / "pred"
    scoring = ScoreConfig(preset="world", cache_dir=str(out / "features"))
    timings: dict[str, float] = {}
    _, test = fold_ids(manifest, fold)
    for model in MODELS:
        name = f"stage 2: {model}, fold {fold}"
        log(f"[demo] {name}")
        started = time.perf_counter()
        run = out / "generators" / f"{model}-fold{fold}"
        conditioning = {"separator": out / "separator"} if model == "MACS-world" else {"no_separation": True}
        train_generator(manifest, media, run, fold=fold, preset="world", base=WORLD_DIR / SD_DIR, clap=WORLD_CLAP,
                        steps=plan.generator_steps, progress=progress, **conditioning)
        generate(manifest, media, run, pred / model, fold=fold, clap=WORLD_CLAP, progress=progress)
        timings[name] = round(time.perf_counter() - started, 2)
    name = f"controls + scoring, fold {fold}"
    log(f"[demo] {name}")
    started = time.perf_counter()
    write_oracle({sid: labels[sid] for sid in test}, pred / "oracle")
    write_shuffled(pred / "MACS-world", test, pred / "shuffled")
    write_noise(test, pred / "noise")
    write_colour_only({sid: labels[sid] for sid in test}, pred / "colour-only")
    write_all_motifs({sid: labels[sid] for sid in test}, pred / "all-motifs")
    coverage = {}
    for row in ROWS:
        score(manifest, pred / row, media, model_name=row, fold=fold, out=results / f"{row}-fold{fold}.json",
              config=scoring)
        if row in CONTROLS:
            _mark_control(results / f"{row}-fold{fold}.json")
        coverage[row] = fold_coverage(pred / row, test, labels)
    timings[name] = round(time.perf_counter() - started, 2)
    return timings, coverage
