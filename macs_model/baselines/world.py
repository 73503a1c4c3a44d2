"""World analogues of the baselines, and the one call that puts their rows on a world leaderboard.

Each analogue is the real baseline's code on the synthetic world's shipped towers (``macs_bench.world``'s public
loading: ``WORLD_DIR``, ``SD_DIR``, the ``world`` CLAP): ground-truth prompt, CLAP zero-shot prompt, AudioToken
(one pseudo-token from the mixture) and AudioToken w/ MSS (one token per world-separator source).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

WORLD_BASELINES = ("gt-prompt-world", "clap-zero-shot-world", "audiotoken-world", "audiotoken-mss-world")


def gt_prompt(**options: Any):
    from macs_model.baselines.prompt import GroundTruthPrompt

    return GroundTruthPrompt(world=True, **options)


def zero_shot(**options: Any):
    from macs_model.baselines.prompt import ZeroShotPrompt

    return ZeroShotPrompt(world=True, **options)


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def world_baseline_rows(manifest: str | os.PathLike, media: str | os.PathLike, out: str | os.PathLike, *,
                        folds: Sequence[int], results: str | os.PathLike, separator: str | os.PathLike | None = None,
                        names: Sequence[str] = WORLD_BASELINES, steps: int | None = None,
                        config: Any = None, seed: int = 0, progress: bool = False) -> dict[str, list[Path]]:
    """Fit (where the baseline trains) and run every world baseline on each fold; one score result per
    (baseline, fold) as ``results/<baseline>-fold<K>.json`` (world scoring preset unless ``config``), ready for
    ``build_leaderboard(load_results(results), ...)``. Work folders go under ``out``. The MSS token baseline
    needs ``separator`` (a world stage-1 run) and is skipped without one. Returns baseline -> result files."""
    from macs_bench.models.registry import load_model
    from macs_bench.models.runner import run
    from macs_bench.scoring import ScoreConfig

    out, results = Path(out).expanduser(), Path(results).expanduser()
    config = config or ScoreConfig(preset="world", cache_dir=str(out / "features"))
    written: dict[str, list[Path]] = {}
    for name in names:
        if name == "audiotoken-mss-world" and separator is None:
            continue
        for fold in folds:
            options: dict[str, Any] = {}
            if name.startswith("audiotoken"):
                options = {"work": out / name / f"fold{fold}" / "token", **({"steps": steps} if steps else {})}
                if name == "audiotoken-mss-world":
                    options["separator"] = separator
            model = load_model(name, **options)
            fit = callable(getattr(model, "fit", None))
            done = run(model, manifest, media, out / name / f"fold{fold}", fold=fold, seed=seed, config=config,
                       fit=fit, progress=progress, result_file=results / f"{name}-fold{fold}.json")
            written.setdefault(name, []).append(done.result_file)
    return written
