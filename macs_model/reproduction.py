"""``macs-model reproduce``: from the authors' released files to a leaderboard row beside the paper's.

Steps, each resumable, all under ``OUT``:

1. ``OUT/import``: ``import-release`` of ``separator_FSD50K_full.pt``, ``<Name>_mlp.pt`` and ``<Name>_unet.pt``
   from ``--release-dir`` (Name: LLP, AudioSet, Landscape as the release's ``DATASET_NAME``); kept when it records
   the same files (by sha256 of the MLP and the separator), refused when it records others;
2. ``OUT/images``: ``generate`` for each held-out fold (existing images are kept);
3. ``OUT/results/<model>/fold<K>.json``: ``macs-bench score`` of each fold, skipped when its result names the same
   images (by the generation record's adapter hash and fold) and the same score preset;
4. ``OUT/leaderboard``: the leaderboard of every fold scored so far, with the paper's rows when the encoders are
   the published ones.

Before anything runs, every weight the run needs is looked up; offline, the missing ones are named in one line
with the ``macs-bench weights fetch`` command that gets them. ``reproduce.json`` records the steps and inputs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from macs_bench.errors import MacsError
from macs_bench.io import atomic_write_text, dumps_json
from macs_model.generation.release_import import RELEASE_NAMES, SEPARATOR_FILE, import_release, release_files

__all__ = ["reproduce", "release_files", "missing_weights", "RELEASE_NAMES", "SEPARATOR_FILE", "MODEL_NAME"]

MODEL_NAME = "MACS (release weights)"
SCORE_WEIGHTS = ("inception-2015-12-05", "clip-vit-b-32-openai", "wav2clip")


def missing_weights(names: Sequence[str]) -> list[str]:
    """The registry entries among ``names`` that are not present and verified here."""
    from macs_bench import weights

    missing = []
    for name in names:
        try:
            weights.path(name)
        except MacsError:
            missing.append(name)
    return missing


def reproduce(release_dir: str | os.PathLike, dataset: str, manifest: str | os.PathLike, media: str | os.PathLike,
              out: str | os.PathLike, *, folds: Sequence[int | None], preset: str = "paper",
              score_preset: str | None = None, clap: str | None = None, base: str | os.PathLike | None = None,
              device: str = "auto", batch_size: int = 4, allow_missing: bool = False,
              progress: bool = True) -> dict[str, Any]:
    """Run the four steps for ``folds`` (None: the manifest's test split); returns what ``reproduce.json`` holds.

    ``preset`` "paper" is the release's model on SD v1.4, scored with the published encoders; "tiny" (tests)
    reads release-shaped miniatures onto the tiny random SD and scores with the tiny encoders.
    """
    from macs_bench.boards import build_leaderboard, load_results, write_leaderboard
    from macs_bench.datasets.manifest import manifest_dataset
    from macs_bench.device import resolve_device
    from macs_bench.scoring import ScoreConfig, score
    from macs_model.generation.api import generate

    resolve_device(device)  # a device this machine lacks is refused before any work

    release_dir, manifest, media, out = Path(release_dir), Path(manifest), Path(media), Path(out)
    score_preset = score_preset or ("paper" if preset == "paper" else "tiny")
    files = release_files(release_dir, dataset)
    built_for = manifest_dataset((manifest / "manifest.csv") if manifest.is_dir() else manifest)
    if built_for != dataset:
        raise MacsError(f"{manifest}: a manifest of {built_for!r}, not of the dataset {dataset!r}")
    needed = []
    if preset == "paper" and base is None:
        needed.append("stable-diffusion-v1-4")
    if preset == "paper" and clap is None:
        needed.append("roberta-base-tokenizer")  # CLAP's tokenizer, built with the release's CLAP
    if score_preset == "paper":
        needed += SCORE_WEIGHTS
    absent = missing_weights(needed)
    if absent:
        raise MacsError("reproduce needs weights that are not here; fetch them with: "
                        + "; ".join(f"macs-bench weights fetch {name}" for name in absent))
    run, identity = import_release(release_dir, dataset, out / "import", base=base, preset=preset)
    steps = []
    for fold in folds:
        images = out / "images"
        record = generate(manifest, media, run, images, fold=fold, base=base, clap=clap, device=device,
                          batch_size=batch_size, progress=progress)
        tag = f"fold{fold}" if fold is not None else "test"
        result_file = out / "results" / MODEL_NAME.split()[0] / f"{tag}.json"
        scored = _scored(result_file, record, score_preset)
        if not scored:
            config = ScoreConfig(preset=score_preset, allow_missing=allow_missing,
                                 device=device)
            result = score(manifest, images, media, model_name=MODEL_NAME, fold=fold,
                           split=None if fold is not None else "test", out=result_file, config=config)
            _stamp(result_file, result, record, score_preset)
        steps.append({"fold": fold, "generated_now": record["written_now"], "samples": record["samples"],
                      "scored_now": not scored, "result": str(result_file)})
    board = build_leaderboard(load_results(out / "results"), dataset)
    written = write_leaderboard(out / "leaderboard", board, radar=False)
    summary = {"release_files": {k: str(v) for k, v in files.items()}, **identity, "dataset": dataset,
               "manifest": str(manifest), "media": str(media), "score_preset": score_preset, "steps": steps,
               "leaderboard": {k: str(v) for k, v in written.items()}}
    atomic_write_text(out / "reproduce.json", dumps_json(summary))
    return summary


def _scored(result_file: Path, record: dict[str, Any], score_preset: str) -> bool:
    """Whether ``result_file`` already scores these images (same adapter hash, fold, score preset)."""
    try:
        stamp = json.loads(result_file.read_text(encoding="utf-8")).get("reproduce", {})
    except (OSError, ValueError, AttributeError):
        return False
    return stamp == {"adapter_sha256": record["adapter_sha256"], "fold": record["fold"],
                     "score_preset": score_preset, "samples": record["samples"]}


def _stamp(result_file: Path, result: dict[str, Any], record: dict[str, Any], score_preset: str) -> None:
    """Add what was scored to the result file, so a rerun knows it is done, and the comparability stamp: the
    release adapter was trained on most of the benchmark's clips, so the row may have seen the test clips."""
    from macs_bench.models.protocol import RowInfo
    from macs_model.baselines.macs import RELEASE_NOTE

    row = RowInfo("model", "computed", True, RELEASE_NOTE).to_dict()
    result = {**result, "row": row, "reproduce": {"adapter_sha256": record["adapter_sha256"], "fold": record["fold"],
                                      "score_preset": score_preset, "samples": record["samples"]}}
    atomic_write_text(result_file, dumps_json(result))
