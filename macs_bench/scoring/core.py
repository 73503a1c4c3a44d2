"""Score any audio-to-image model: FID, CLIP-FID, KID, AIS/AIS-z and IIS/IIS-z from one encoder pass per file.

Inputs: a built manifest (optionally one fold), a folder with one generated image per sample id, and the MEDIA
folder of ``datasets fetch`` (ground-truth frames and audio) -- or, with :func:`score_folders`, two image folders
(and an audio folder) paired by file stem. Each file goes through each encoder it needs once: the CLIP
embeddings of the generated images serve CLIP-FID, IIS and AIS alike, and every feature is cached by content
hash, so scoring a second model against the same ground truth encodes only its images.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from macs_bench.datasets.manifest import manifest_dataset
from macs_bench.device import resolve_device
from macs_bench.scoring.distributed import finish, process_group
from macs_bench.errors import MacsError
from macs_bench.features.cache import FeatureCache
from macs_bench.io import sha256_file
from macs_bench.metric_sets import (compute_extras, coverage_inputs, coverage_provenance, directions, extra_jobs,
                                    interval_functions, needed_encoders, parse_metrics, small_n_warnings)
from macs_bench.metric_spec import DIRECTIONS, IMAGE_SUFFIXES, definitions
from macs_bench.metrics import frechet_distance, kernel_inception_distance, paired_scores
from macs_bench.metrics.resample import LEVEL, METHODS, resample_intervals
from macs_bench.scoring.pairing import Pairing, manifest_csv, pair_files, pair_folders
from macs_bench.provenance import digest_lines
from macs_bench.results import ScoreResult, per_sample_frame
from macs_bench.scoring.checks import check_config, check_out, feature_notes, wide_image_warnings
from macs_bench.scoring.provenance import (default_cache_dir, encoders_preset, missing_weights, published_weights,
                                         run_provenance, scope_warnings)

if TYPE_CHECKING:  # the encoders import torch: loaded when a score runs, not when this module is imported
    from macs_bench.features.encoders import Encoder

__all__ = ["ScoreConfig", "score", "score_folders", "compute_metrics"]

Progress = Callable[[str, int], Callable[[int], None]]


@dataclass
class ScoreConfig:
    preset: str = "paper"  # encoder weights: paper | random | tiny (only paper is comparable with the paper)
    weights: dict[str, str] = field(default_factory=dict)  # explicit weight files per encoder name
    batch_size: int = 32
    num_workers: int | None = None  # decoding: DataLoader processes; None: a thread pool (up to 8 threads)
    device: str = "auto"
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    kid_seed: int = 0
    allow_missing: bool = False
    cache_dir: str | None = None  # default: $MACS_HOME/features
    # names: ("paper",), ("all",) or extras such as ("coverage", "cmmd") (macs_bench.metric_spec.EXTRAS); a
    # comma string is accepted too
    metrics: tuple[str, ...] | str = ("paper",)
    bootstrap: int = 0  # rounds of the bootstrap confidence intervals (0: none)
    bootstrap_seed: int = 0
    coverage_detector: str | None = None  # open_clip ARCH/PRETRAINED for coverage (None: the CLIP of AIS/IIS)


@dataclass
class _Job:
    """What one score run compares and how it is recorded: the inputs, the identity, the options."""

    pairing: Pairing | None
    identity: dict[str, Any]  # model, dataset, fold, split
    inputs: dict[str, Any]  # the record's input paths (and manifest hash), before the content digests
    config: ScoreConfig
    selected: tuple[str, ...]
    out: Path | None
    benchmark: bool = True  # a manifest's samples (comparable with the paper when the weights are published)


def compute_metrics(gen_incep: np.ndarray, gt_incep: np.ndarray, gen_clip: np.ndarray, gt_clip: np.ndarray,
                    audio_emb: np.ndarray | None, config: ScoreConfig
                    ) -> tuple[dict[str, Any], dict[str, np.ndarray], list[str]]:
    """The seven numbers, the per-sample AIS/IIS arrays and notes on values that cannot be trusted (AIS is
    undefined without audio)."""
    kid_ok, notes = feature_notes(gen_incep, gt_incep)
    kid_mean, kid_std = kernel_inception_distance(gen_incep, gt_incep, num_subsets=config.kid_subsets,
                                                  max_subset_size=config.kid_subset_size,
                                                  seed=config.kid_seed) if kid_ok else (np.nan, np.nan)
    iis = paired_scores(gt_clip, gen_clip, undefined_z="nan")
    if audio_emb is not None:
        ais = paired_scores(audio_emb, gen_clip, undefined_z="nan")
        ais_mean, ais_z_mean, ais_each, ais_z = ais.mean, ais.z_mean, ais.per_sample, ais.z
    else:
        ais_mean = ais_z_mean = np.nan
        ais_each = ais_z = np.full(len(gen_clip), np.nan)
    metrics = {
        "fid": frechet_distance(gen_incep, gt_incep),
        "clip_fid": frechet_distance(gen_clip, gt_clip),
        "kid": kid_mean,
        "kid_std": kid_std,
        "ais": ais_mean,
        "ais_z": ais_z_mean,
        "iis": iis.mean,
        "iis_z": iis.z_mean,
    }
    per_sample = {"ais": ais_each, "ais_z": ais_z, "iis": iis.per_sample, "iis_z": iis.z}
    # JSON has no NaN: an undefined z (a model whose images are all alike) is null, the rest still reported
    return {k: (None if np.isnan(v) else float(v)) for k, v in metrics.items()}, per_sample, notes


def score(manifest_dir: str | Path, pred_dir: str | Path, media: str | Path, *, model_name: str,
          fold: int | None = None, split: str | None = None, out: str | Path | None = None,
          config: ScoreConfig | None = None, encoders: dict[str, Encoder] | None = None,
          progress: Progress | None = None) -> ScoreResult | None:
    """Score one model's predictions against a benchmark manifest; writes ``out`` (JSON) and
    ``<out stem>.per_sample.csv`` when given.

    Returns the :class:`ScoreResult` (``None`` on non-main processes under ``accelerate launch``).
    """
    manifest_dir, pred_dir, media = (Path(p).expanduser() for p in (manifest_dir, pred_dir, media))
    csv_path = manifest_csv(manifest_dir)
    job = _Job(None, {"model": model_name, "dataset": None, "fold": fold, "split": split},
               {"manifest": str(csv_path), "predictions": str(pred_dir), "media": str(media)},
               config or ScoreConfig(), (), Path(out).expanduser() if out is not None else None)
    _check(job, [csv_path, csv_path.with_name("stats.json"), pred_dir, media])
    job.pairing = pair_files(manifest_dir, pred_dir, media, fold, job.config.allow_missing, split)
    job.identity["dataset"] = manifest_dataset(csv_path)
    job.inputs = {"manifest": str(csv_path), "manifest_sha256": sha256_file(csv_path),
                  "predictions": str(pred_dir), "media": str(media)}
    return _run(job, encoders, progress)


def score_folders(pred: str | Path, ref: str | Path, audio: str | Path | None = None, *, model_name: str = "pred",
                  out: str | Path | None = None, config: ScoreConfig | None = None,
                  encoders: dict[str, Encoder] | None = None, progress: Progress | None = None) -> ScoreResult | None:
    """Score the images of ``pred`` against those of ``ref``, paired by file stem, without a manifest (like
    clean-fid's ``compute_fid(dir1, dir2)``); AIS needs ``audio`` (clips named like the images), else it is
    undefined (null). The numbers equal :func:`score`'s on the same files."""
    pred, ref = Path(pred).expanduser(), Path(ref).expanduser()
    audio = Path(audio).expanduser() if audio is not None else None
    job = _Job(None, {"model": model_name, "dataset": None, "fold": None, "split": None},
               {"predictions": str(pred), "reference": str(ref), "audio": None if audio is None else str(audio)},
               config or ScoreConfig(), (), Path(out).expanduser() if out is not None else None, benchmark=False)
    _check(job, [p for p in (pred, ref, audio) if p is not None])
    if "coverage" in job.selected:
        raise MacsError("the coverage metrics need each sample's labels: score against a manifest instead")
    job.pairing = pair_folders(pred, ref, audio, job.config.allow_missing)
    return _run(job, encoders, progress)


def _check(job: _Job, inputs: list[Path]) -> None:
    """Checks that need no file read: the options, the output path."""
    check_config(job.config)
    job.selected = parse_metrics(job.config.metrics)
    if job.config.coverage_detector and "coverage" not in job.selected:
        raise MacsError("a coverage detector serves the coverage metrics: add coverage to the metrics")
    if job.out is not None:
        check_out(job.out, inputs)


def _run(job: _Job, encoders: dict[str, Encoder] | None, progress: Progress | None) -> ScoreResult | None:
    """Encode every file each metric needs (cached, sharded across processes), then summarise on the main one."""
    from macs_bench.features.encoders import PAPER_ENCODERS, build_encoders
    from macs_bench.features.extract import content_hash, encode_sets

    started = time.perf_counter()
    config, pairing = job.config, job.pairing
    accelerator = process_group()
    device = accelerator.device if accelerator is not None else resolve_device(config.device)
    with_audio = bool(pairing.audio)
    names = tuple(n for n in (*PAPER_ENCODERS, *needed_encoders(job.selected)) if with_audio or n != "wav2clip")
    if encoders is not None:
        job.config = config = replace(config, preset=encoders_preset(encoders))
        absent = [n for n in names if n not in encoders]
        if absent:
            raise MacsError(f"metrics {','.join(job.selected)}: need the {', '.join(absent)} encoder(s), which were not "
                            "given")
    else:
        missing_weights(config.preset, names, config.weights)
    encoders = dict(encoders or build_encoders(config.preset, {k: Path(v) for k, v in config.weights.items()},
                                               names=names))
    if config.coverage_detector and "detector" not in encoders:
        from macs_bench.features.detector import open_clip_detector

        encoders["detector"] = open_clip_detector(config.coverage_detector, config.preset)
    cache = FeatureCache(Path(config.cache_dir) if config.cache_dir else default_cache_dir())

    timings: dict[str, float] = {}
    t = time.perf_counter()
    hashes = {p: content_hash(p) for p in [*pairing.predictions, *pairing.frames, *pairing.audio]}
    timings["hash"] = time.perf_counter() - t
    features: dict[str, np.ndarray] = {}
    encoded_now: dict[str, int] = {}
    jobs = [("gen_inception", "inception", pairing.predictions), ("gt_inception", "inception", pairing.frames),
            ("gen_clip", "clip", pairing.predictions), ("gt_clip", "clip", pairing.frames),
            *([("audio_wav2clip", "wav2clip", pairing.audio)] if with_audio else []),
            *extra_jobs(job.selected, pairing.predictions, pairing.frames),
            *([("gen_detector", "detector", pairing.predictions), ("gt_detector", "detector", pairing.frames)]
              if "detector" in encoders else [])]
    for role, paths, wanted in _by_file_set(jobs):  # one decode per file for all its encoders
        t = time.perf_counter()
        tick = progress(role, len(paths)) if progress else None
        done = encode_sets(paths, [hashes[p] for p in paths], {key: encoders[name] for key, name in wanted},
                           cache, device=device, batch_size=config.batch_size, num_workers=config.num_workers,
                           accelerator=accelerator, progress=tick)
        for key, (matrix, count) in done.items():
            features[key], encoded_now[key] = matrix, count
        timings[f"encode_{role}"] = time.perf_counter() - t
    if accelerator is not None and not accelerator.is_main_process:
        finish(accelerator)
        return None
    try:
        result = _summarise(job, features, encoders, encoded_now, timings, started, accelerator, device, hashes)
    finally:
        if accelerator is not None:
            finish(accelerator)
    if job.out is not None:
        result.save(job.out)
    return result


def skipped_warnings(skipped: list[str]) -> list[str]:
    """One warning naming every file a folder held that scoring did not read."""
    if not skipped:
        return []
    return [f"{len(skipped)} file(s) skipped (not an image of {', '.join(IMAGE_SUFFIXES)} or an audio clip): "
            + ", ".join(skipped)]


def _by_file_set(jobs: list[tuple[str, str, list[Path]]]) -> list[tuple[str, list[Path], list[tuple[str, str]]]]:
    """The encoder jobs grouped by the files they read (``gen_*``, ``gt_*``, ``audio_*``): ``(role, paths,
    [(feature key, encoder name), ...])``."""
    groups: dict[str, tuple[list[Path], list[tuple[str, str]]]] = {}
    for key, name, paths in jobs:
        role = key.split("_", 1)[0]
        groups.setdefault(role, (paths, []))[1].append((key, name))
    return [(role, paths, wanted) for role, (paths, wanted) in groups.items()]


def _summarise(job: _Job, features, encoders, encoded_now, timings, started, accelerator, device,
               hashes) -> ScoreResult:
    """Metrics and the result record from the encoded features (main process only)."""
    pairing, config, selected = job.pairing, job.config, job.selected
    file_hashes = {"pred_sha256": [hashes[p] for p in pairing.predictions],
                   "frame_sha256": [hashes[p] for p in pairing.frames],
                   "audio_sha256": [hashes[p] for p in pairing.audio] or [""] * len(pairing.sample_ids)}
    t = time.perf_counter()
    metrics, per_sample, notes = compute_metrics(features["gen_inception"], features["gt_inception"],
                                                 features["gen_clip"], features["gt_clip"],
                                                 features.get("audio_wav2clip"), config)
    space = "detector" if "detector" in encoders else "clip"  # coverage's detector: its own, or AIS/IIS's CLIP
    # compute_extras reads coverage's image features under the clip keys (nothing else there reads them)
    seen = {**features, "gen_clip": features[f"gen_{space}"], "gt_clip": features[f"gt_{space}"]}
    extra, breakdown, extra_per_sample = compute_extras(selected, seen, lambda: coverage_inputs(
        encoders[space], pairing))
    intervals = None
    if config.bootstrap:
        functions = interval_functions(selected, features, per_sample, extra_per_sample, config,
                                       metrics["kid"] is not None)
        if not pairing.audio:
            functions = {k: fn for k, fn in functions.items() if k not in ("ais", "ais_z")}
        intervals = resample_intervals(functions, pairing.videos, config.bootstrap, config.bootstrap_seed)
    timings["metrics"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - started
    comparable = job.benchmark and published_weights(encoders) and not pairing.missing
    provenance = {
        **run_provenance("paper", selected, encoders, device, comparable,
                         {"kid": config.kid_seed, **({"bootstrap": config.bootstrap_seed} if config.bootstrap else {})},
                         config, processes=accelerator.num_processes if accelerator is not None else 1),
        "inputs": {**job.inputs,
                   "predictions_sha256": digest_lines(zip(pairing.sample_ids, file_hashes["pred_sha256"])),
                   "media_sha256": digest_lines(zip(pairing.sample_ids, file_hashes["frame_sha256"],
                                                    file_hashes["audio_sha256"])),
                   "left_out_missing": pairing.missing, "left_out_extra": pairing.extra,
                   "skipped_files": pairing.skipped},
        "encoded_now": encoded_now,
        "timings_seconds": {k: round(v, 3) for k, v in timings.items()},
        "warnings": [*notes, *skipped_warnings(pairing.skipped), *scope_warnings(pairing, encoders, job.benchmark),
                     *wide_image_warnings(pairing.predictions, pairing.frames),
                     *small_n_warnings(len(pairing.sample_ids), features, selected, config.kid_subset_size),
                     *(f"{k} is undefined: every generated image is equally similar to some sample's query"
                       for k in ("ais_z", "iis_z") if metrics[k] is None and (pairing.audio or k == "iis_z"))],
    }
    provenance["definitions"] = definitions([*metrics, *extra], provenance["encoders"], provenance["config"])
    if breakdown:
        provenance["breakdown"] = breakdown
    if "coverage" in selected:
        provenance["coverage"] = {**coverage_provenance(pairing.classes, encoders[space]),
                                  **({"detector": f"{encoders[space].id} (independent open_clip detector, zero-shot)"}
                                     if space == "detector" else {}),
                                  "chance_level": float(extra_per_sample["source_coverage_chance"].mean())}
    if intervals is not None:
        provenance["intervals"] = {"methods": METHODS, "unit": _unit(pairing), "n_units": len(set(pairing.videos)),
                                   "level": LEVEL, "rounds": config.bootstrap, "seed": config.bootstrap_seed,
                                   "metrics": intervals}
    shown = {k: v for k, v in extra_per_sample.items() if k == "source_coverage"}
    table = per_sample_frame(pairing.sample_ids, {**per_sample, **shown, **file_hashes, "video_id": pairing.videos})
    return ScoreResult(**job.identity, n=len(pairing.sample_ids), metrics={**metrics, **extra},
                       directions={**DIRECTIONS, **directions(selected)}, provenance=provenance, per_sample=table,
                       features={k: v for k, v in features.items() if k.startswith(("gen_", "gt_"))})


def _unit(pairing: Pairing) -> str:
    return "video (the manifest's ytid)" if pairing.unit == "video" else "sample (no manifest: each file its own)"
