"""The offline end-to-end demo (the README's main job): split, separation, generation, scoring, leaderboard.

Smoke scale on purpose: a synthetic benchmark made on the fly (``macs_bench.datasets.synthetic``), the ``tiny``
separator with the tiny random CLAP stand-in, the ``tiny`` generator on a tiny random Stable Diffusion, and the
``tiny`` random scoring encoders. It shows every stage working on a machine with no GPU, no weights and no
network; its numbers say nothing about MACS. Every number is computed by the same code paths the real runs use.

Each stage resumes or skips finished work, so a rerun with nothing changed rewrites the (identical) synthetic files,
re-scores from cached features and re-renders the leaderboard: seconds. A folder holds one plan: the quick and
the full demo need different folders.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from macs_bench.io import atomic_write_text, dumps_json

NOTICE = ("SMOKE-SCALE DEMO: synthetic data, tiny models and random-weight encoders. The numbers only show the "
          "pipeline runs end to end; they are not comparable with the paper or with each other beyond this demo.")
MODELS = ("MACS-tiny", "no-separation-tiny")


@dataclass(frozen=True)
class DemoPlan:
    """How big the demo is; ``quick`` is the shortened form the test suite runs."""

    clips: int = 80
    pretrain_clips: int = 64
    folds: tuple[int, ...] = (0, 1)
    separator_steps: int = 120
    generator_steps: int = 40

    @classmethod
    def quick(cls) -> "DemoPlan":
        return cls(clips=40, pretrain_clips=24, folds=(0,), separator_steps=6, generator_steps=4)


def _claim(path: Path, plan: DemoPlan) -> None:
    """Record the plan a demo folder holds; refuse another plan before anything is overwritten."""
    import json

    from macs_bench.errors import MacsError

    wanted = json.loads(dumps_json(plan.__dict__))
    if path.is_file():
        try:
            held = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            held = None
        if held != wanted:
            raise MacsError(f"{path.parent}: holds a demo run with another plan ({path.name}); use another --out "
                            "(e.g. runs/demo-quick for --quick) or delete that folder")
        return
    atomic_write_text(path, dumps_json(wanted))


def run_demo(out: str | os.PathLike = "runs/demo", *, plan: DemoPlan | None = None, progress: bool = True,
             log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every stage into ``out``; returns the summary also written to ``out/summary.json``."""
    from macs_bench.datasets.synthetic import write_synthetic
    from macs_bench.boards import build_leaderboard, load_results, write_leaderboard
    from macs_bench.plots.grid import sample_grid
    from macs_bench.scoring import ScoreConfig, score
    from macs_model.stage1 import train_separator
    from macs_model.stage2 import generate, train_generator

    plan = plan or DemoPlan()
    out = Path(out)
    _claim(out / "plan.json", plan)
    started = time.perf_counter()
    timings: dict[str, float] = {}

    def stage(name: str):
        log(f"[demo] {name}")
        timings[name] = time.perf_counter()

    def done(name: str):
        timings[name] = round(time.perf_counter() - timings[name], 2)

    stage("synthetic benchmark")
    data = write_synthetic(out / "data", n_clips=plan.clips, seed=0, prefix="syn")
    pretrain = write_synthetic(out / "pretrain", n_clips=plan.pretrain_clips, seed=1, prefix="pre")
    done("synthetic benchmark")

    stage("stage 1: tiny separator on the pre-training clips")
    train_separator(str(pretrain.manifest), pretrain.media, out / "separator", preset="tiny", clap="tiny",
                    steps=plan.separator_steps, progress=progress)
    done("stage 1: tiny separator on the pre-training clips")

    results = out / "results"
    for fold in plan.folds:
        for model in MODELS:
            name = f"stage 2 + scoring: {model}, fold {fold}"
            stage(name)
            run = out / "generators" / f"{model}-fold{fold}"
            conditioning = {"separator": out / "separator"} if model == "MACS-tiny" else \
                {"no_separation": True, "clap": "tiny"}
            train_generator(data.manifest, data.media, run, fold=fold, preset="tiny",
                            steps=plan.generator_steps, progress=progress, **conditioning)
            generate(data.manifest, data.media, run, out / "pred" / model, fold=fold, progress=progress)
            score(data.manifest, out / "pred" / model, data.media, model_name=model, fold=fold,
                  out=results / f"{model}-fold{fold}.json",
                  config=ScoreConfig(preset="tiny", cache_dir=str(out / "features")))
            done(name)

    stage("leaderboard, radar and grid")
    board = out / "leaderboard"
    leaderboard = build_leaderboard(load_results(results), "synthetic", folds=list(plan.folds), paper_rows="never")
    leaderboard.title = "MACS demo on a synthetic benchmark (smoke scale)"
    leaderboard.notes.insert(0, NOTICE)
    write_leaderboard(board, leaderboard, radar=True)
    sample_grid(data.manifest, data.media, {m: out / "pred" / m for m in MODELS}, board / "grid.png", n=6)
    done("leaderboard, radar and grid")

    summary = {"notice": NOTICE, "out": str(out), "plan": plan.__dict__, "seconds": timings,
               "total_seconds": round(time.perf_counter() - started, 2),
               "leaderboard": str(board / "leaderboard.md"), "radar": str(board / "radar.png"),
               "grid": str(board / "grid.png")}
    atomic_write_text(out / "summary.json", dumps_json(summary))
    return summary
