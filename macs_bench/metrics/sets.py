"""Which metrics a score run computes (``--metrics paper|all|name,...``) and the metrics beyond the paper's seven.

The paper's seven (and the KID std) are always computed, exactly as before: the extra metrics only add encoder
jobs and keys, so a run with them off encodes nothing more and gives byte-identical values. Per-source coverage
reuses the CLIP ViT-B/32 image pass; CMMD needs CLIP ViT-L/14-336 and FD-DINOv2 DINOv2 ViT-L/14, one pass per
file each, cached like every other feature.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from macs_bench.errors import MacsError
from macs_bench.metrics.spec import EXTRAS, PRDC_KEYS


# the Frechet distances and the features whose dimension their N should exceed
FEATURE_DIMS = {"fid": "gen_inception", "clip_fid": "gen_clip", "fd_dinov2": "gen_dinov2"}


def parse_metrics(value: str | Sequence[str]) -> tuple[str, ...]:
    """The extras selected by names: ``paper`` (nothing extra), ``all`` (every extra) or extras such as
    ``("coverage", "cmmd")`` (``paper`` may be among them). A comma string (the CLI's form) is split first."""
    if isinstance(value, str):
        names = [part.strip() for part in value.split(",") if part.strip()]
    else:
        names = list(value)
        bad = [n for n in names if not isinstance(n, str)]
        if bad:
            raise MacsError(f"metrics: names must be strings, got {bad[0]!r}")
        names = [n.strip() for n in names if n.strip()]
    if not names:
        raise MacsError("metrics: none given; give paper, all or names such as coverage,cmmd")
    if names == ["all"]:
        return tuple(EXTRAS)
    unknown = [n for n in names if n not in EXTRAS and n != "paper"]
    if unknown:
        raise MacsError(f"metrics: unknown {unknown[0]!r}; choose paper, all or from: {', '.join(EXTRAS)}")
    return tuple(dict.fromkeys(n for n in names if n != "paper"))


def needed_encoders(selected: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(e for name in selected for e in EXTRAS[name].encoders))


def extra_jobs(selected: tuple[str, ...], predictions, frames) -> list[tuple[str, str, list]]:
    """Encoder jobs ``(feature key, encoder, paths)`` the selected extras add to the paper's five."""
    jobs = []
    for enc in needed_encoders(selected):
        jobs += [(f"gen_{enc}", enc, predictions), (f"gt_{enc}", enc, frames)]
    return jobs


def directions(selected: tuple[str, ...]) -> dict[str, str]:
    return {k: v for name in selected for k, v in EXTRAS[name].keys.items()}


def compute_extras(selected: tuple[str, ...], features: dict[str, np.ndarray],
                   coverage_inputs: Callable[[], tuple[np.ndarray, list[list[int]]]] | None
                   ) -> tuple[dict[str, Any], dict[str, Any], dict[str, np.ndarray]]:
    """(metrics, breakdown, per-sample arrays) of the selected extras from the encoded features.

    ``coverage_inputs`` returns (class text embeddings, label index sets), built only when coverage is on."""
    from macs_bench.metrics.cmmd import cmmd, unit_rows
    from macs_bench.metrics.coverage import coverage_report
    from macs_bench.metrics.fid import frechet_distance
    from macs_bench.metrics.prdc import prdc

    metrics: dict[str, Any] = {}
    breakdown: dict[str, Any] = {}
    per_sample: dict[str, np.ndarray] = {}
    if "coverage" in selected:
        class_emb, label_sets = coverage_inputs()
        values, breakdown["source_coverage_by_sources"], per_sample = coverage_report(
            features["gen_clip"], features["gt_clip"], class_emb, label_sets)
        metrics.update(values)
    if "cmmd" in selected:
        gt, gen = unit_rows(features["gt_clip_l336"]), unit_rows(features["gen_clip_l336"])
        metrics["cmmd"], metrics["cmmd_unbiased"] = cmmd(gt, gen), cmmd(gt, gen, unbiased=True)
    if "fd_dinov2" in selected:
        metrics["fd_dinov2"] = frechet_distance(features["gen_dinov2"], features["gt_dinov2"])
    for space in ("inception", "dinov2"):
        if f"prdc_{space}" in selected:
            values = prdc(features[f"gt_{space}"], features[f"gen_{space}"])
            metrics.update({f"{k}_{space}": values[k] for k in PRDC_KEYS})
    return metrics, breakdown, per_sample


def coverage_inputs(clip, pairing) -> tuple[np.ndarray, list[list[int]]]:
    """Class text embeddings of V from CLIP's own text tower, and each scored sample's labels as indices."""
    from macs_bench.features.encoders_extra import text_tower
    from macs_bench.metrics.coverage import class_text_embeddings, label_indices

    return class_text_embeddings(text_tower(clip), pairing.classes), label_indices(pairing.classes, pairing.labels)


def coverage_provenance(classes: list[str], clip) -> dict[str, Any]:
    from macs_bench.metrics.coverage import PROMPTS, PROMPTS_VERSION
    from macs_bench.provenance import digest_lines

    detector = "the caller's text tower (encoders['clip'].text)" if clip.text is not None \
        else f"{clip.id} text tower (zero-shot)"
    return {"detector": detector, "prompts": list(PROMPTS), "prompts_version": PROMPTS_VERSION,
            "n_classes": len(classes), "classes_sha256": digest_lines([[c] for c in classes])}


def small_n_warnings(n: int, features: dict[str, np.ndarray], selected: tuple[str, ...], kid_subset_size: int,
                     prdc_min: int = 1000, cmmd_min: int = 1000) -> list[str]:
    """Warnings for metrics whose estimate is poor at this N: a Frechet distance with N at or below the feature
    dimension (singular covariance), KID whose subsets are the whole set, biased CMMD and precision/recall at
    small N."""
    out = []
    for metric, key in FEATURE_DIMS.items():
        if key in features and n <= features[key].shape[1]:
            out.append(f"{metric}: N = {n} is not above the feature dimension {features[key].shape[1]}, so the "
                       "covariance is singular and the value is strongly biased upwards; compare only runs of "
                       "the same N")
    if "cmmd" in selected and n < cmmd_min:
        out.append(f"cmmd: N = {n} < {cmmd_min}; the reference's biased estimate is inflated at small N (each "
                   "set's self-similarity enters its mean): read cmmd_unbiased, and compare only runs of the same N")
    if n <= kid_subset_size:
        out.append(f"kid: N = {n} is at most the subset size {kid_subset_size}, so every subset is the whole set: "
                   "kid_std is about 0 and the seed has no effect (a bootstrap gives an interval)")
    if any(name.startswith("prdc") for name in selected) and n < prdc_min:
        out.append(f"precision/recall/density/coverage: N = {n} < {prdc_min}; k-NN radii are coarse at small N")
    return out


def set_metric_functions(kid_subsets: int = 100, kid_subset_size: int = 1000, kid_seed: int = 0
                         ) -> dict[str, tuple[str, Callable[[np.ndarray, np.ndarray], float | None]]]:
    """Every set metric as ``{name: (feature space, fn(generated, reference))}``: the one definition the
    score-time intervals and ``compare`` recompute on resampled or swapped rows."""
    from macs_bench.metrics import frechet_distance
    from macs_bench.metrics.cmmd import cmmd, unit_rows
    from macs_bench.metrics.kid import kernel_inception_distance
    from macs_bench.metrics.prdc import prdc

    def kid(gen, ref):
        return kernel_inception_distance(gen, ref, kid_subsets, kid_subset_size, kid_seed)[0]

    out = {"fid": ("inception", frechet_distance), "clip_fid": ("clip", frechet_distance),
           "kid": ("inception", kid), "fd_dinov2": ("dinov2", frechet_distance),
           "cmmd": ("clip_l336", lambda gen, ref: cmmd(unit_rows(ref), unit_rows(gen))),
           "cmmd_unbiased": ("clip_l336", lambda gen, ref: cmmd(unit_rows(ref), unit_rows(gen), unbiased=True))}
    for space in ("inception", "dinov2"):
        for key in PRDC_KEYS:
            out[f"{key}_{space}"] = (space, lambda gen, ref, key=key: prdc(ref, gen)[key])
    return out


def rows_metric_functions(kid_subsets: int = 100, kid_subset_size: int = 1000, kid_seed: int = 0
                          ) -> dict[str, Callable[[np.ndarray, np.ndarray], Callable]]:
    """The set metrics that have a row-index form (``fn(pool, ref)`` -> ``f(pool_rows, ref_rows)``, equal to
    :func:`set_metric_functions`' on those rows): KID from kernels computed once. ``compare`` uses it for its
    paired test, whose swapped sets are rows of the two models' stacked features."""
    from macs_bench.metrics.kid import kid_on_rows

    return {"kid": lambda pool, ref: kid_on_rows(pool, ref, kid_subsets, kid_subset_size, kid_seed)}


def interval_functions(selected: tuple[str, ...], features: dict[str, np.ndarray], paper_per_sample,
                       extra_per_sample, config, kid_ok: bool) -> dict[str, tuple[str, Callable]]:
    """Each reported metric as (``"mean"`` or ``"set"``, a function of row indices), for
    :mod:`macs_bench.metrics.resample`. (kid_std, a spread of its own, has no interval.)"""
    from macs_bench.metrics.kid import kid_resampler
    from macs_bench.metrics.resample import mean_of, on_rows

    f = features
    fns: dict[str, tuple[str, Callable]] = {k: ("mean", mean_of(paper_per_sample[k]))
                                            for k in ("ais", "ais_z", "iis", "iis_z")}
    if "coverage" in selected:
        cov, ceiling = extra_per_sample["source_coverage"], extra_per_sample["source_coverage_gt"]
        fns.update({k: ("mean", mean_of(extra_per_sample[k])) for k in ("source_coverage", "source_coverage_gt",
                                                                          "aic", "aic_gt")})
        fns["source_coverage_rel"] = ("mean", lambda rows: (cov[rows].mean() / ceiling[rows].mean()
                                                            if ceiling[rows].mean() > 0 else None))
    keys = {"fid", "clip_fid", *directions(selected)}
    for name, (space, fn) in set_metric_functions(config.kid_subsets, config.kid_subset_size,
                                                  config.kid_seed).items():
        if name in keys and f"gen_{space}" in f:
            fns[name] = ("set", on_rows(fn, f[f"gen_{space}"], f[f"gt_{space}"]))
    if kid_ok:
        fns["kid"] = ("set", kid_resampler(f["gen_inception"], f["gt_inception"], config.kid_subsets,
                                           config.kid_subset_size, config.kid_seed))
    prdc_memo(fns, selected, f)
    return fns


def prdc_memo(fns: dict[str, tuple[str, Callable]], selected: tuple[str, ...], f: dict[str, np.ndarray]) -> None:
    """PRDC's four values from one k-NN pass per drawn row set (every metric of a kind sees the same draws)."""
    import hashlib

    from macs_bench.metrics.prdc import prdc

    for space in ("inception", "dinov2"):
        if f"prdc_{space}" not in selected:
            continue
        memo: dict[bytes, dict[str, float]] = {}

        def one(rows, key, space=space, memo=memo):
            tag = hashlib.sha1(rows.tobytes()).digest()
            if tag not in memo:
                memo[tag] = prdc(f[f"gt_{space}"][rows], f[f"gen_{space}"][rows])
            return memo[tag][key]

        fns.update({f"{k}_{space}": ("set", lambda rows, k=k, one=one: one(rows, k)) for k in PRDC_KEYS})
