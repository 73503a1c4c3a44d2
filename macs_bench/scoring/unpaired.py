"""Unpaired distribution mode: FID, CLIP-FID, KID (and CMMD, FD-DINOv2, PRDC when selected) between two image
sets of any sizes, as clean-fid's ``compute_fid(dir1, dir2)`` and torch-fidelity compute them, with reference
statistics saved once and reused (as clean-fid's ``make_custom_stats``).

A statistics file (``.npz``, no pickles) holds the reference set's features per encoder, the encoder ids (network,
weights hash, resize and preprocessing version, implementation), the digest of the reference files' hashes and
the tool version. Features rather than mean and covariance, because KID, CMMD and PRDC need the rows. A run whose
encoders differ from those that made the statistics is refused in one line.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from macs_bench import __version__
from macs_bench.errors import MacsError
from macs_bench.io import atomic_write_bytes, sha256_file

STATS_FORMAT = "macs-reference-stats-v1"
# the paper's distribution metrics and the encoder each needs; AIS/IIS need pairs and have no unpaired form
PAPER_DISTRIBUTION = {"fid": "inception", "clip_fid": "clip", "kid": "inception"}
MIN_IMAGES = 2


@dataclass
class ReferenceStats:
    """A reference set's features per encoder name, with what made them."""

    features: dict[str, np.ndarray]
    encoder_ids: dict[str, str]
    files_sha256: str  # digest of the reference files' content hashes, in order
    n: int
    made_by: dict[str, Any]
    source: str = "<memory>"
    sha256: str | None = None  # of the statistics file, once saved or loaded

    def check_encoders(self, encoders: dict) -> None:
        """Refuse encoders that are not those the statistics were made with (other weights, resize, code)."""
        for name, enc in encoders.items():
            if name not in self.encoder_ids:
                raise MacsError(f"{self.source}: reference statistics have no {name} features (made for "
                                f"{', '.join(self.encoder_ids)}); make them again with the metrics you score")
            if self.encoder_ids[name] != enc.id:
                raise MacsError(f"{self.source}: reference statistics were made with {self.encoder_ids[name]}, "
                                f"this run's {name} is {enc.id}; make them again with these encoders")

    def save(self, out: str | Path) -> None:
        meta = {"format": STATS_FORMAT, "encoder_ids": self.encoder_ids, "files_sha256": self.files_sha256,
                "n": self.n, "made_by": self.made_by}
        buf = io.BytesIO()
        np.savez(buf, meta=np.array(json.dumps(meta, sort_keys=True)),
                 **{f"features__{name}": f.astype(np.float32) for name, f in self.features.items()})
        atomic_write_bytes(Path(out), buf.getvalue())
        self.source, self.sha256 = str(out), sha256_file(Path(out))


def load_reference_stats(path: str | Path) -> ReferenceStats:
    """Read a statistics file written by :meth:`ReferenceStats.save`; a bad one is one line naming it."""
    path = Path(path).expanduser()
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            features = {k.split("__", 1)[1]: data[k] for k in data.files if k.startswith("features__")}
    except (OSError, ValueError, KeyError) as exc:
        raise MacsError(f"{path}: not a reference statistics file ({exc})") from None
    if meta.get("format") != STATS_FORMAT:
        raise MacsError(f"{path}: reference statistics format {meta.get('format')!r}, expected {STATS_FORMAT}")
    if set(features) != set(meta["encoder_ids"]) or any(len(f) != meta["n"] for f in features.values()):
        raise MacsError(f"{path}: reference statistics are inconsistent (features do not match their record)")
    return ReferenceStats(features, meta["encoder_ids"], meta["files_sha256"], meta["n"], meta["made_by"],
                          str(path), sha256_file(path))


def image_files(folder: Path, what: str) -> tuple[list[Path], list[str]]:
    """(the images of ``folder`` in name order, the files skipped); fewer than two images is an error."""
    from macs_bench.metric_spec import IMAGE_SUFFIXES
    from macs_bench.scoring.pairing import find_files, skipped_files

    found = find_files(folder, IMAGE_SUFFIXES, what)
    if len(found) < MIN_IMAGES:
        raise MacsError(f"{folder}: {len(found)} {what}s; the distribution metrics need at least {MIN_IMAGES}")
    return [found[s] for s in sorted(found)], skipped_files(folder, IMAGE_SUFFIXES)


def fold_frames(manifest_dir: str | Path, media: str | Path, fold: int | None = None,
                split: str | None = None) -> list[Path]:
    """The ground-truth frames of a benchmark's samples (one fold and/or split): a fold's reference set."""
    from macs_bench.datasets.manifest import manifest_rows
    from macs_bench.media.layout import MediaLayout

    rows = manifest_rows(Path(manifest_dir))
    rows = [r for r in rows if (fold is None or r["fold"] == str(fold)) and (split is None or r["split"] == split)]
    if not rows:
        raise MacsError(f"{manifest_dir}: no sample with fold {fold} and split {split}")
    frames = [MediaLayout(Path(media)).frame(r["sample_id"]) for r in rows]
    absent = [p for p in frames if not p.is_file()]
    if absent:
        raise MacsError(f"{absent[0]}: ground-truth frame missing ({len(absent)} in all); fetch media with "
                        "'macs-bench datasets fetch'")
    return frames


def selected_encoders(selected: tuple[str, ...]) -> tuple[str, ...]:
    """The encoders the unpaired metrics need: Inception and CLIP (FID, CLIP-FID, KID) and the extras'."""
    from macs_bench.metric_sets import needed_encoders

    if "coverage" in selected:
        raise MacsError("coverage needs each sample's labels: it has no unpaired form; score against a manifest")
    return tuple(dict.fromkeys(("inception", "clip", *needed_encoders(selected))))


def _encode(paths: list[Path], names: tuple[str, ...], encoders: dict, config, device, progress, role: str):
    from macs_bench.features.cache import FeatureCache
    from macs_bench.features.extract import content_hash, encode_sets
    from macs_bench.provenance import digest_lines
    from macs_bench.scoring.provenance import default_cache_dir

    cache = FeatureCache(Path(config.cache_dir) if config.cache_dir else default_cache_dir())
    hashes = [content_hash(p) for p in paths]
    done = encode_sets(paths, hashes, {n: encoders[n] for n in names}, cache, device=device,
                       batch_size=config.batch_size, num_workers=config.num_workers,
                       progress=progress(role, len(paths)) if progress else None)
    return {n: f for n, (f, _) in done.items()}, hashes, digest_lines([[h] for h in hashes])


def _encoders(config, names, encoders):
    from macs_bench.device import resolve_device
    from macs_bench.features.encoders import build_encoders
    from macs_bench.scoring.provenance import encoders_preset, missing_weights

    if encoders is not None:
        absent = [n for n in names if n not in encoders]
        if absent:
            raise MacsError(f"metrics {config.metrics}: need the {', '.join(absent)} encoder(s), which were not given")
        return replace(config, preset=encoders_preset(encoders)), {n: encoders[n] for n in names}, \
            resolve_device(config.device)
    missing_weights(config.preset, names, config.weights)
    built = build_encoders(config.preset, {k: Path(v) for k, v in config.weights.items()}, names=names)
    return config, built, resolve_device(config.device)


def make_reference_stats(ref: str | Path | list[Path], out: str | Path | None = None, *, config=None,
                         encoders: dict | None = None, progress=None) -> ReferenceStats:
    """Encode a reference set once (a folder of images, or the paths :func:`fold_frames` lists for a benchmark
    fold) for every encoder ``config.metrics`` needs; save it to ``out`` when given."""
    from macs_bench.metric_sets import parse_metrics
    from macs_bench.scoring.core import ScoreConfig

    config = config or ScoreConfig()
    names = selected_encoders(parse_metrics(config.metrics))
    paths = list(ref) if isinstance(ref, list) else image_files(Path(ref).expanduser(), "reference image")[0]
    config, built, device = _encoders(config, names, encoders)
    features, _, digest = _encode(paths, names, built, config, device, progress, "reference")
    stats = ReferenceStats(features, {n: built[n].id for n in names}, digest, len(paths),
                           {"tool": "macs-bench", "version": __version__, "device": device.type,
                            "source": str(ref) if not isinstance(ref, list) else f"{len(ref)} listed files"})
    if out is not None:
        stats.save(out)
    return stats


def score_unpaired(gen: str | Path, ref: str | Path | ReferenceStats, *, model_name: str = "pred",
                   out: str | Path | None = None, config=None, encoders: dict | None = None, progress=None,
                   save_ref_stats: str | Path | None = None):
    """The distribution metrics of the images in ``gen`` against a reference: a folder of images (any number,
    e.g. 10k against 50k) or saved statistics (a file from :func:`make_reference_stats`, or the object).
    Returns a :class:`~macs_bench.results.ScoreResult` whose ``n`` is the generated set's size."""
    from macs_bench.metric_sets import compute_extras, directions, parse_metrics
    from macs_bench.metric_spec import DIRECTIONS
    from macs_bench.metrics import frechet_distance, kernel_inception_distance
    from macs_bench.results import ScoreResult, per_sample_frame
    from macs_bench.scoring.checks import check_config, check_out
    from macs_bench.scoring.core import ScoreConfig, skipped_warnings
    from macs_bench.scoring.provenance import run_provenance

    started = time.perf_counter()
    config = config or ScoreConfig()
    check_config(config)
    if config.bootstrap:
        raise MacsError("bootstrap intervals resample paired samples: unpaired mode has none; drop --bootstrap")
    selected = parse_metrics(config.metrics)
    names = selected_encoders(selected)
    gen = Path(gen).expanduser()
    out = Path(out).expanduser() if out is not None else None
    if out is not None:
        check_out(out, [gen, *([Path(ref)] if isinstance(ref, (str, Path)) else [])])
    stats = ref if isinstance(ref, ReferenceStats) else None
    ref_path = Path(ref).expanduser() if stats is None else None
    if ref_path is not None and ref_path.is_file():
        stats = load_reference_stats(ref_path)
    gen_paths, skipped = image_files(gen, "generated image")
    config, built, device = _encoders(config, names, encoders)
    if stats is not None:
        stats.check_encoders(built)
    else:
        stats = make_reference_stats(ref_path, save_ref_stats, config=config, encoders=built, progress=progress)
        skipped += image_files(ref_path, "reference image")[1]
    gen_features, gen_hashes, gen_digest = _encode(gen_paths, names, built, config, device, progress, "gen")
    features = {**{f"gen_{n}": f for n, f in gen_features.items()},
                **{f"gt_{n}": stats.features[n] for n in names}}
    n_gen, n_ref = len(gen_paths), stats.n
    kid_ok = min(n_gen, n_ref) >= 2
    kid, kid_std = kernel_inception_distance(features["gen_inception"], features["gt_inception"],
                                             num_subsets=config.kid_subsets, max_subset_size=config.kid_subset_size,
                                             seed=config.kid_seed) if kid_ok else (None, None)
    metrics: dict[str, Any] = {"fid": frechet_distance(features["gen_inception"], features["gt_inception"]),
                               "clip_fid": frechet_distance(features["gen_clip"], features["gt_clip"]),
                               "kid": kid, "kid_std": kid_std,
                               # the paired similarities have no unpaired form: null, as the record requires them
                               "ais": None, "ais_z": None, "iis": None, "iis_z": None}
    extra, _, _ = compute_extras(selected, features, None)
    metrics.update(extra)
    metrics = {k: None if v is None or np.isnan(v) else float(v) for k, v in metrics.items()}
    warnings = [*skipped_warnings(skipped),
                "unpaired distribution mode: not comparable with the paper, which scores a benchmark's paired samples",
                "ais, ais_z, iis and iis_z are undefined: they compare paired samples"]
    for key, name in (("fid", "inception"), ("clip_fid", "clip"), *([("fd_dinov2", "dinov2")]
                                                                     if "fd_dinov2" in selected else [])):
        if min(n_gen, n_ref) <= built[name].dim:
            warnings.append(f"{key}: the smaller set (N = {min(n_gen, n_ref)}) is not above the feature dimension "
                            f"{built[name].dim}: the value is strongly biased upwards")
    provenance = {
        "mode": "unpaired",
        **run_provenance("paper-distribution", selected, built, device, False, {"kid": config.kid_seed}, config),
        "inputs": {"predictions": str(gen), "predictions_sha256": gen_digest, "n_reference": n_ref,
                   "reference": stats.source if ref_path is None or ref_path.is_file() else str(ref_path),
                   "reference_files_sha256": stats.files_sha256, "reference_stats_sha256": stats.sha256,
                   "reference_made_by": stats.made_by, "skipped_files": skipped},
        "timings_seconds": {"total": round(time.perf_counter() - started, 3)},
        "warnings": warnings,
    }
    table = per_sample_frame([p.stem for p in gen_paths], {"pred_sha256": gen_hashes})
    result = ScoreResult(model=model_name, dataset=None, fold=None, split=None, n=n_gen, metrics=metrics,
                         directions={k: v for k, v in {**DIRECTIONS, **directions(selected)}.items() if k in metrics},
                         provenance=provenance, per_sample=table)
    if out is not None:
        result.save(out)
    return result
