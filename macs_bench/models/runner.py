"""``macs-bench run``: generate one fold's images with any model of the protocol, then score them.

Layout of ``OUT``: ``images/<sample_id>.png``, ``run.json`` (what made the images: the model's provenance, the
seed, the manifest and fold; a rerun with the same identity resumes, another is refused) and ``result.json``
(+ ``result.per_sample.csv``): the score result with the model's provenance and the leaderboard ``row`` facts.

Under ``accelerate launch`` each process draws one slice of the fold's pending ids (``ids[rank::world]``), all
write into the same ``images/``; after a barrier the main process checks that the slices add up to the fold
(the merge) and every process joins the (sharded) scoring.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from macs_bench.errors import MacsError
from macs_bench.io import atomic_write_bytes, atomic_write_text, dumps_json, sha256_file
from macs_bench.models.protocol import Item, ModelFacts, model_facts, sample_seed

IMAGES, RUN_JSON, RESULT_JSON = "images", "run.json", "result.json"


@dataclass(frozen=True)
class RunResult:
    """What one ``run`` did: where its files are, how many images it drew now, and the score (main process)."""

    out: Path
    images: Path
    result_file: Path
    samples: int
    generated_now: int
    score: Any  # ScoreResult, or None on a non-main process


@dataclass(frozen=True)
class FoldSamples:
    ids: list[str]
    labels: dict[str, tuple[str, ...]]


def fold_samples(manifest: str | os.PathLike, fold: int | None, split: str | None) -> FoldSamples:
    """The sample ids (manifest order) and labels of fold K, of a split, or of the whole manifest."""
    from macs_bench.datasets.manifest import manifest_rows, split_list

    rows = manifest_rows(manifest)
    if fold is not None:
        folds = sorted({r["fold"] for r in rows if r.get("fold")})
        if str(fold) not in folds:
            raise MacsError(f"{manifest}: no fold {fold} (folds: {', '.join(folds) or 'none'})")
        rows = [r for r in rows if r.get("fold") == str(fold)]
    elif split is not None:
        rows = [r for r in rows if r.get("split") == split]
        if not rows:
            raise MacsError(f"{manifest}: no samples in split {split!r}")
    return FoldSamples([r["sample_id"] for r in rows],
                       {r["sample_id"]: tuple(split_list(r["labels"])) for r in rows})


def check_not_trained(facts: ModelFacts, ids: Sequence[str], where: str) -> None:
    """Refuse to evaluate a model on samples it was trained on (the leak check)."""
    if not facts.trained:
        return
    overlap = sorted(facts.trained.intersection(ids))
    if overlap:
        raise MacsError(f"model {facts.name}: trained on {len(overlap)} of the {len(ids)} samples of {where} "
                        f"(e.g. {overlap[0]}); evaluate a fold it held out")


def slice_ids(ids: Sequence[str], index: int, count: int) -> list[str]:
    """Process ``index`` of ``count``'s share of ``ids``: every count-th id, so the slices are disjoint and
    their union is ``ids``."""
    if not 0 <= index < count:
        raise ValueError(f"process {index} of {count}")
    return list(ids[index::count])


def merged_missing(images: Path, ids: Sequence[str]) -> list[str]:
    """The ids whose image no process wrote (empty when the slices add up to the fold)."""
    return [sid for sid in ids if not (images / f"{sid}.png").is_file()]


def run(model: Any, manifest: str | os.PathLike, media: str | os.PathLike, out: str | os.PathLike, *,
        fold: int | None = None, split: str | None = None, seed: int = 0, batch_size: int = 8,
        config: Any = None, model_name: str | None = None, fit: bool = False, overwrite: bool = False,
        allow_missing: bool = False, progress: bool = True, result_file: str | os.PathLike | None = None
        ) -> RunResult:
    """Generate the images of ``fold`` (or ``split``, or the whole manifest) with ``model``, score them with
    ``config`` (a :class:`~macs_bench.scoring.ScoreConfig`) and write ``OUT/result.json``.

    ``model``: an object of the protocol, or a name / ``pkg.module:Class`` for :func:`load_model`. ``fit``
    first trains it on the other folds (models with ``fit``). Images already in ``OUT/images`` are kept when
    ``run.json`` names the same model identity and seed (an interrupted run resumes); otherwise the call is
    refused unless ``overwrite``. ``result_file`` puts the result elsewhere (e.g. a leaderboard's results
    folder, which must hold score results only).
    """
    from macs_bench.datasets.manifest import manifest_csv
    from macs_bench.features.inputs import AUDIO_RATE, load_audio
    from macs_bench.media.layout import MediaLayout
    from macs_bench.models.registry import load_model
    from macs_bench.scoring import ScoreConfig, score
    from macs_bench.scoring.distributed import process_group

    started = time.perf_counter()
    if isinstance(model, str):
        model = load_model(model)
    csv_path = manifest_csv(Path(manifest).expanduser())
    media, out = MediaLayout(media), Path(out).expanduser()
    if not csv_path.is_file():
        raise MacsError(f"{csv_path}: no manifest")
    if not media.root.is_dir():
        raise MacsError(f"{media.root}: no MEDIA folder")
    where = f"fold {fold}" if fold is not None else f"split {split}" if split else "the whole manifest"
    samples = fold_samples(csv_path, fold, split)
    if fit:
        if not callable(getattr(model, "fit", None)):
            raise MacsError(f"{type(model).__name__} has no fit(): it cannot be trained by the harness")
        model.fit(csv_path, media.root, fold)
    if callable(getattr(model, "prepare", None)):  # e.g. a zero-shot model reading the label vocabulary
        model.prepare(csv_path, media.root, fold)
    facts = model_facts(model, model_name)
    check_not_trained(facts, samples.ids, where)
    ids = [sid for sid in samples.ids if media.audio(sid).is_file()]
    if len(ids) < len(samples.ids) and not allow_missing:
        raise MacsError(f"{media.root}: {len(samples.ids) - len(ids)} of the {len(samples.ids)} samples of "
                        f"{where} have no audio; fetch them or allow missing samples")
    if not ids:
        raise MacsError(f"{media.root}: none of the {len(samples.ids)} samples of {where} has audio")
    images = out / IMAGES
    identity = {"model": facts.name, "model_provenance": facts.provenance, "seed": seed,
                "manifest_sha256": sha256_file(csv_path), "fold": fold, "split": split}
    group = process_group()
    main = group is None or group.is_main_process
    if main:
        _claim(out / RUN_JSON, identity, images, overwrite)
    if group is not None:
        group.wait_for_everyone()
    pending = [sid for sid in ids if not (images / f"{sid}.png").is_file()]
    mine = slice_ids(pending, group.process_index, group.num_processes) if group is not None else pending
    _draw(model, mine, samples, facts, media, images, seed, batch_size, AUDIO_RATE, load_audio,
          progress and main)
    if group is not None:
        group.wait_for_everyone()
    missing = merged_missing(images, ids)
    if missing:
        raise MacsError(f"{images}: {len(missing)} images were not written (e.g. {missing[0]}.png); rerun")
    config = config or ScoreConfig()
    if allow_missing:
        from dataclasses import replace

        config = replace(config, allow_missing=True)
    result = score(csv_path.parent, images, media.root, model_name=facts.name, fold=fold,
                   split=split if fold is None else None, config=config)
    result_file = Path(result_file).expanduser() if result_file is not None else out / RESULT_JSON
    if result is not None:
        result.provenance["row"] = facts.row.to_dict()
        result.provenance["model_provenance"] = facts.provenance
        result.provenance["generation"] = {"seed": seed, "batch_size": batch_size, "samples": len(ids),
                                           "generated_now": len(pending), "run_record": str(out / RUN_JSON),
                                           "processes": 1 if group is None else group.num_processes,
                                           "seconds": round(time.perf_counter() - started, 3)}
        result.save(result_file)
    return RunResult(out, images, result_file, len(ids), len(pending), result)


def _claim(path: Path, identity: dict[str, Any], images: Path, overwrite: bool) -> None:
    """Record what makes the images; refuse a folder whose images another model or seed made."""
    wanted = json.loads(dumps_json(identity))
    if path.is_file() and not overwrite:
        try:
            held = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            held = None
        if held != wanted:
            differ = sorted(k for k in wanted if not isinstance(held, dict) or held.get(k) != wanted[k])
            raise MacsError(f"{path.parent}: holds images made with another {', '.join(differ)} ({path.name}); "
                            "use another output folder, or overwrite to replace them")
    elif overwrite and images.is_dir():
        for png in images.glob("*.png"):
            png.unlink()
    elif not path.is_file() and images.is_dir() and any(images.glob("*.png")):
        raise MacsError(f"{images}: holds images without a {path.name}; use another output folder, or "
                        "overwrite to replace them")
    atomic_write_text(path, dumps_json(wanted))


def _draw(model, ids, samples, facts, media, images: Path, seed: int, batch_size: int, rate: int, load_audio,
          show: bool) -> None:
    """Generate ``ids`` in batches, each image written (temporary file, then rename) as soon as it is drawn."""
    from contextlib import nullcontext

    bar = _progress() if show and ids else nullcontext()
    with bar as shown:
        task = shown.add_task("generating", total=len(ids)) if shown is not None else None
        for start in range(0, len(ids), batch_size):
            chunk = ids[start:start + batch_size]
            items = [Item(sid, load_audio(media.audio(sid)), rate, sample_seed(sid, seed),
                          samples.labels[sid] if facts.uses_labels else ()) for sid in chunk]
            drawn = model.generate(items, seed)
            if len(drawn) != len(items):
                raise MacsError(f"model {facts.name}: generate returned {len(drawn)} images for {len(items)} items")
            for sid, image in zip(chunk, drawn):
                atomic_write_bytes(images / f"{sid}.png", _png(image))
            if shown is not None:
                shown.update(task, advance=len(chunk))


def _png(image: Any) -> bytes:
    import numpy as np
    from PIL import Image

    if not isinstance(image, Image.Image):
        image = Image.fromarray(np.asarray(image, dtype=np.uint8))
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def _progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
