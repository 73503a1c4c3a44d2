"""Score any audio-to-image model: FID, CLIP-FID, KID, AIS/AIS-z and IIS/IIS-z from one encoder pass per file.

Inputs: a built manifest (optionally one fold), a folder with one generated image per sample id, and the MEDIA
folder of ``datasets fetch`` (ground-truth frames and audio). Each file goes through each encoder it needs once:
the CLIP embeddings of the generated images serve CLIP-FID, IIS and AIS alike, and every feature is cached by
content hash, so scoring a second model against the same ground truth encodes only its images.
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from macs_bench import __version__
from macs_bench.datasets.manifest import manifest_dataset, read_manifest
from macs_bench.errors import MacsError
from macs_bench.features.cache import FeatureCache
from macs_bench.features.encoders import PAPER_ENCODERS, Encoder, build_encoders
from macs_bench.features.extract import content_hash, encode_files
from macs_bench.io import atomic_write_text, dumps_json, sha256_file
from macs_bench.metric_sets import (VERSIONS, compute_extras, coverage_inputs, coverage_provenance, directions,
                                    extra_jobs, interval_functions, needed_encoders, parse_metrics, small_n_warnings)
from macs_bench.metrics import frechet_distance, kernel_inception_distance, paired_scores
from macs_bench.metrics.bootstrap import LEVEL, bootstrap_intervals
from macs_bench.provenance import SCORE_LIBRARIES, digest_lines, package_versions, source_commit
from macs_bench.score_checks import check_config, check_out, feature_notes, resolve_device, wide_image_warnings

METRIC_VERSION = "macs-metrics-v1"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# direction of each metric: lower is better for the distances, higher for the similarities
DIRECTIONS = {"fid": "lower", "clip_fid": "lower", "kid": "lower", "ais": "higher", "ais_z": "higher",
              "iis": "higher", "iis_z": "higher"}


@dataclass
class ScoreConfig:
    preset: str = "paper"  # encoder weights: paper | random | tiny (only paper is comparable with the paper)
    weights: dict[str, str] = field(default_factory=dict)  # explicit weight files per encoder name
    batch_size: int = 32
    num_workers: int = 0
    device: str = "auto"
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    kid_seed: int = 0
    allow_missing: bool = False
    cache_dir: str | None = None  # default: $MACS_HOME/features
    metrics: str = "paper"  # paper | all | comma list of extras (see macs_bench.metric_sets.EXTRAS)
    bootstrap: int = 0  # rounds of the bootstrap confidence intervals (0: none)
    bootstrap_seed: int = 0


@dataclass
class Pairing:
    sample_ids: list[str]
    predictions: list[Path]
    frames: list[Path]
    audio: list[Path]
    missing: list[str]
    extra: list[str]
    labels: list[list[str]] = field(default_factory=list)  # each scored sample's label names
    classes: list[str] = field(default_factory=list)  # V: every label in the whole manifest, sorted


def pair_files(manifest_dir: Path, pred_dir: Path, media: Path, fold: int | None, allow_missing: bool,
               split: str | None = None) -> Pairing:
    """Match manifest samples with predictions and ground truth; missing or extra predictions are an error
    listing them, unless ``allow_missing`` (then the intersection is scored and the rest recorded)."""
    rows = read_manifest(manifest_dir)
    by_id = {r["sample_id"]: [x for x in r["labels"].split(";") if x] for r in rows}
    counts = Counter(r["sample_id"] for r in rows)
    twice = [sid for sid, k in counts.items() if k > 1]
    if twice:
        csv_path = Path(manifest_dir) / "manifest.csv" if Path(manifest_dir).is_dir() else Path(manifest_dir)
        raise MacsError(f"{csv_path}: sample_id {twice[0]} appears {counts[twice[0]]} times ({len(twice)} "
                        "duplicated ids); each sample must be listed once")
    all_ids = set(counts)  # predictions of other folds/splits are expected, not extra
    for column, value in (("fold", fold), ("split", split)):
        if value is not None:
            rows = [r for r in rows if r[column] == str(value)]
            if not rows:
                raise MacsError(f"{manifest_dir}: no sample with {column} {value}")
    wanted = [r["sample_id"] for r in rows]
    if not Path(pred_dir).is_dir():
        raise MacsError(f"{pred_dir}: prediction folder does not exist or is not a folder")
    found: dict[str, Path] = {}
    for path in sorted(Path(pred_dir).iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if not path.is_file():
            raise MacsError(f"{path}: a prediction must be an image file")
        if path.stem in found:
            raise MacsError(f"{pred_dir}: two predictions for {path.stem} ({found[path.stem].name}, {path.name})")
        found[path.stem] = path
    missing = [sid for sid in wanted if sid not in found]
    extra = sorted(set(found) - all_ids)
    if (missing or extra) and not allow_missing:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:5])})")
        if extra:
            parts.append(f"{len(extra)} not in the manifest (e.g. {', '.join(extra[:5])})")
        raise MacsError(f"{pred_dir}: predictions do not match the samples: {'; '.join(parts)}; "
                        "pass --allow-missing to score the intersection")
    ids = [sid for sid in wanted if sid in found]
    frames = [Path(media) / "frames" / f"{sid}.jpg" for sid in ids]
    audio = [Path(media) / "audio" / f"{sid}.wav" for sid in ids]
    for kind, paths in (("ground-truth frame", frames), ("audio", audio)):
        absent = [p for p in paths if not p.is_file()]
        if absent:
            raise MacsError(f"{absent[0]}: {kind} missing ({len(absent)} in all); fetch media with "
                            "'macs-bench datasets fetch'")
    if len(ids) < 3:
        raise MacsError(f"{pred_dir}: {len(ids)} scorable samples; the metrics need at least 3")
    classes = sorted({x for labels in by_id.values() for x in labels})
    return Pairing(ids, [found[sid] for sid in ids], frames, audio, missing, extra, [by_id[s] for s in ids],
                   classes)


def compute_metrics(gen_incep: np.ndarray, gt_incep: np.ndarray, gen_clip: np.ndarray, gt_clip: np.ndarray,
                    audio_emb: np.ndarray, config: ScoreConfig
                    ) -> tuple[dict[str, Any], dict[str, np.ndarray], list[str]]:
    """The seven numbers, the per-sample AIS/IIS arrays and notes on values that cannot be trusted."""
    kid_ok, notes = feature_notes(gen_incep, gt_incep)
    kid_mean, kid_std = kernel_inception_distance(gen_incep, gt_incep, num_subsets=config.kid_subsets,
                                                  max_subset_size=config.kid_subset_size,
                                                  seed=config.kid_seed) if kid_ok else (np.nan, np.nan)
    ais = paired_scores(audio_emb, gen_clip, undefined_z="nan")
    iis = paired_scores(gt_clip, gen_clip, undefined_z="nan")
    metrics = {
        "fid": frechet_distance(gen_incep, gt_incep),
        "clip_fid": frechet_distance(gen_clip, gt_clip),
        "kid": kid_mean,
        "kid_std": kid_std,
        "ais": ais.mean,
        "ais_z": ais.z_mean,
        "iis": iis.mean,
        "iis_z": iis.z_mean,
    }
    per_sample = {"ais": ais.per_sample, "ais_z": ais.z, "iis": iis.per_sample, "iis_z": iis.z}
    # JSON has no NaN: an undefined z (a model whose images are all alike) is null, the rest still reported
    return {k: (None if np.isnan(v) else float(v)) for k, v in metrics.items()}, per_sample, notes


def score(manifest_dir: str | Path, pred_dir: str | Path, media: str | Path, *, model_name: str,
          fold: int | None = None, split: str | None = None, out: str | Path | None = None,
          config: ScoreConfig | None = None,
          encoders: dict[str, Encoder] | None = None,
          progress: Callable[[str, int], Callable[[int], None]] | None = None) -> dict[str, Any] | None:
    """Score one model's predictions; writes ``out`` (JSON) and ``<out stem>.per_sample.csv`` when given.

    Returns the result (``None`` on non-main processes under ``accelerate launch``).
    """
    config = config or ScoreConfig()
    started = time.perf_counter()
    check_config(config)
    selected = parse_metrics(config.metrics)
    if out is not None:
        manifest_csv = Path(manifest_dir) / "manifest.csv" if Path(manifest_dir).is_dir() else Path(manifest_dir)
        check_out(Path(out), [manifest_csv, manifest_csv.with_name("stats.json"), Path(pred_dir), Path(media)])
    accelerator = _accelerator()
    device = accelerator.device if accelerator is not None else resolve_device(config.device)
    pairing = pair_files(Path(manifest_dir), Path(pred_dir), Path(media), fold, config.allow_missing, split)
    names = (*PAPER_ENCODERS, *needed_encoders(selected))
    if encoders is not None:
        config = replace(config, preset=encoders_preset(encoders))
        absent = [n for n in names if n not in encoders]
        if absent:
            raise MacsError(f"--metrics {config.metrics}: needs the {absent[0]} encoder, which was not given")
    encoders = encoders or build_encoders(config.preset, {k: Path(v) for k, v in config.weights.items()},
                                          names=names)
    cache = FeatureCache(Path(config.cache_dir) if config.cache_dir else default_cache_dir())

    timings: dict[str, float] = {}
    t = time.perf_counter()
    hashes = {p: content_hash(p) for p in [*pairing.predictions, *pairing.frames, *pairing.audio]}
    timings["hash"] = time.perf_counter() - t
    features: dict[str, np.ndarray] = {}
    encoded_now: dict[str, int] = {}
    jobs = [("gen_inception", "inception", pairing.predictions), ("gt_inception", "inception", pairing.frames),
            ("gen_clip", "clip", pairing.predictions), ("gt_clip", "clip", pairing.frames),
            ("audio_wav2clip", "wav2clip", pairing.audio),
            *extra_jobs(selected, pairing.predictions, pairing.frames)]
    for key, name, paths in jobs:
        t = time.perf_counter()
        tick = progress(key, len(paths)) if progress else None
        features[key], encoded_now[key] = encode_files(
            paths, [hashes[p] for p in paths], encoders[name], cache, device=device, batch_size=config.batch_size,
            num_workers=config.num_workers, accelerator=accelerator, progress=tick)
        timings[f"encode_{key}"] = time.perf_counter() - t
    if accelerator is not None and not accelerator.is_main_process:
        _finish(accelerator)
        return None
    try:
        return _summarise(features, pairing, encoders, encoded_now, timings, started, config, accelerator, device,
                          manifest_dir, pred_dir, media, model_name, fold, split, out, hashes, selected)
    finally:
        if accelerator is not None:
            _finish(accelerator)


def _finish(accelerator) -> None:
    """Wait for every process; then take down a process group this module made (under torchrun on CPU): a
    process that exits with gloo's threads still running aborts ('terminate called without an active
    exception'). accelerate's own group stays up for its owner, who may score again."""
    accelerator.wait_for_everyone()
    if isinstance(accelerator, _TorchDistributed) and accelerator.dist.is_initialized():
        accelerator.dist.destroy_process_group()


def _summarise(features, pairing, encoders, encoded_now, timings, started, config, accelerator, device,
               manifest_dir, pred_dir, media, model_name, fold, split, out, hashes, selected) -> dict[str, Any]:
    """Metrics and the result record from the encoded features (main process only)."""
    file_hashes = {"pred_sha256": [hashes[p] for p in pairing.predictions],
                   "frame_sha256": [hashes[p] for p in pairing.frames],
                   "audio_sha256": [hashes[p] for p in pairing.audio]}
    t = time.perf_counter()
    metrics, per_sample, notes = compute_metrics(features["gen_inception"], features["gt_inception"],
                                                 features["gen_clip"], features["gt_clip"],
                                                 features["audio_wav2clip"], config)
    extra, breakdown, extra_per_sample = compute_extras(selected, features, lambda: coverage_inputs(
        encoders["clip"], pairing))
    intervals = None
    if config.bootstrap:
        intervals = bootstrap_intervals(interval_functions(
            selected, features, per_sample, extra_per_sample, config, metrics["kid"] is not None),
            len(pairing.sample_ids), config.bootstrap, config.bootstrap_seed)
    timings["metrics"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - started
    manifest_csv = Path(manifest_dir) / "manifest.csv" if Path(manifest_dir).is_dir() else Path(manifest_dir)
    result = {
        "model": model_name,
        "dataset": manifest_dataset(manifest_csv),
        "fold": fold,
        "split": split,
        "n": len(pairing.sample_ids),
        "metrics": {**metrics, **extra},
        "directions": {**DIRECTIONS, **directions(selected)},
        "metrics_selected": ["paper", *selected],
        "metric_version": METRIC_VERSION,
        "extra_metric_versions": {name: VERSIONS[name] for name in selected},
        "encoders": {name: {"id": enc.id, "weights": enc.weights} for name, enc in encoders.items()},
        "device": device.type,
        "comparable_with_paper": published_weights(encoders) and not pairing.missing,
        "seeds": {"kid": config.kid_seed, **({"bootstrap": config.bootstrap_seed} if config.bootstrap else {})},
        "config": {k: v for k, v in asdict(config).items() if k != "cache_dir"},
        "tool": {"name": "macs-bench", "version": __version__, "source_commit": source_commit(),
                 "libraries": package_versions(*SCORE_LIBRARIES),
                 "processes": accelerator.num_processes if accelerator is not None else 1},
        "inputs": {"manifest": str(manifest_csv), "manifest_sha256": sha256_file(manifest_csv),
                   "predictions": str(pred_dir), "media": str(media),
                   "predictions_sha256": digest_lines(zip(pairing.sample_ids, file_hashes["pred_sha256"])),
                   "media_sha256": digest_lines(zip(pairing.sample_ids, file_hashes["frame_sha256"],
                                                    file_hashes["audio_sha256"])),
                   "left_out_missing": pairing.missing, "left_out_extra": pairing.extra},
        "encoded_now": encoded_now,
        "timings_seconds": {k: round(v, 3) for k, v in timings.items()},
        "warnings": [*notes, *scope_warnings(pairing, encoders),
                     *wide_image_warnings(pairing.predictions, pairing.frames),
                     *small_n_warnings(len(pairing.sample_ids), features, selected, config.kid_subset_size),
                     *(f"{k} is undefined: every generated image is equally similar to some sample's query"
                       for k in ("ais_z", "iis_z") if metrics[k] is None)],
    }
    if breakdown:
        result["breakdown"] = breakdown
    if "coverage" in selected:
        result["coverage"] = coverage_provenance(pairing.classes, encoders["clip"])
    if intervals is not None:
        result["intervals"] = {"method": "percentile bootstrap over samples", "level": LEVEL,
                               "rounds": config.bootstrap, "seed": config.bootstrap_seed, "metrics": intervals}
    if out is not None:
        shown = {k: v for k, v in extra_per_sample.items() if k == "source_coverage"}
        write_result(Path(out), result, pairing.sample_ids, {**per_sample, **shown, **file_hashes})
    return result


def write_result(out: Path, result: dict[str, Any], sample_ids: list[str], per_sample: dict[str, np.ndarray]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["sample_id", *per_sample])
    for i, sid in enumerate(sample_ids):
        writer.writerow([sid, *(_cell(per_sample[k][i]) for k in per_sample)])
    try:
        atomic_write_text(per_sample_path(out), buf.getvalue())
        atomic_write_text(out, dumps_json(result))
    except OSError as exc:
        raise MacsError(f"{exc.filename or out}: cannot write the result ({exc.strerror})") from None


def _cell(value) -> str:
    """A per-sample CSV cell: a hash as is, a number to 8 digits, an undefined number empty (JSON's null)."""
    if isinstance(value, str):
        return value
    return "" if np.isnan(value) else f"{value:.8g}"


def scope_warnings(pairing: Pairing, encoders: dict[str, Encoder]) -> list[str]:
    """Why a result is not comparable with the paper although its numbers are right."""
    out = []
    if pairing.missing:
        total = len(pairing.sample_ids) + len(pairing.missing)
        out.append(f"scored {len(pairing.sample_ids)} of {total} samples (--allow-missing): not comparable with "
                   "the paper, which scores every sample")
    from macs_bench.features.encoders import published_hash

    unpinned = [name for name, enc in encoders.items()
                if name in PAPER_ENCODERS and published_hash(name) is None and enc.weights.startswith("sha256:")]
    if unpinned:
        out.append(f"{', '.join(unpinned)}: no published checksum exists for these weights, so they cannot be "
                   "verified as the paper's: not comparable with the paper")
    return out


def encoders_preset(encoders: dict[str, Encoder]) -> str:
    """The preset that built ``encoders`` when a caller passes them in: tiny, random, paper, else custom."""
    weights = [enc.weights for enc in encoders.values()]
    if all(w.startswith("tiny-random") for w in weights):
        return "tiny"
    if all(w.startswith("random:") for w in weights):
        return "random"
    return "paper" if published_weights(encoders) else "custom"


def published_weights(encoders: dict[str, Encoder]) -> bool:
    """Whether every encoder runs the published weights (the registry's pinned sha256; a hash recorded on first
    use proves nothing about where a file came from): only then are the numbers comparable with the paper's."""
    from macs_bench.features import encoders as registry

    return all(registry.published_hash(name) is not None and enc.weights == registry.published_hash(name)
               for name, enc in encoders.items() if name in PAPER_ENCODERS)


def per_sample_path(out: Path) -> Path:
    return out.with_name(out.stem + ".per_sample.csv")


def default_cache_dir() -> Path:
    from macs_bench.weights import cache_dir

    return cache_dir().parent / "features"


class _TorchDistributed:
    """The process-group facts the encoder sharding needs, when accelerate does not manage the group (e.g. a
    CPU run under torchrun, where accelerate needs MPI)."""

    def __init__(self):
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group(backend="gloo")
        self.dist = dist
        self.process_index = dist.get_rank()
        self.num_processes = dist.get_world_size()
        self.is_main_process = self.process_index == 0
        self.device = torch.device("cpu")

    def wait_for_everyone(self) -> None:
        self.dist.barrier()


def _accelerator():
    """The process group under ``accelerate launch`` (or torchrun) with several processes, else ``None``."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    from accelerate import PartialState

    state = PartialState()
    if state.num_processes > 1:
        return state
    return _TorchDistributed()
