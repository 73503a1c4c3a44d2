"""Paired comparison of models scored on the same samples: ``macs_bench.compare`` and ``macs-bench compare``.

Each result brings its per-sample table (AIS, IIS, their z-scores, source coverage, each sample's video id) and,
for the set metrics, the per-sample features of its sidecar ``<stem>.features.npz`` (``ScoreResult.save``
writes it and records its sha256 in ``features_file``). Results of one model on several folds are strata: the
difference is the mean over folds of each fold's difference, as a leaderboard row averages its folds. Every
pair of models gets, per metric, the difference, its interval and a paired permutation p-value
(:mod:`macs_bench.metrics.paired`), and Holm's correction over all the pairs and metrics of the comparison.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np

from macs_bench.errors import MacsError
from macs_bench.metrics.paired import Difference, difference, holm, mean_difference, set_difference
from macs_bench.metrics.resample import LEVEL
from macs_bench.results import ScoreResult, per_sample_path, read_per_sample

MEAN_METRICS = ("ais", "ais_z", "iis", "iis_z", "source_coverage")  # per-sample columns of the table
ALPHA = 0.05


@dataclass
class Comparison:
    """Per metric and pair of models: the paired difference, its interval, p-value and Holm-adjusted p."""

    models: list[str]
    metrics: list[str]
    differences: list[Difference]
    directions: dict[str, str]
    n: int
    units: int
    unit: str
    folds: list[int | None]
    level: float = LEVEL
    rounds: int = 1000
    seed: int = 0
    correction: str = "holm"
    left_out: dict[str, int] = field(default_factory=dict)  # per model, samples outside the intersection

    def get(self, metric: str, a: str, b: str) -> Difference:
        for d in self.differences:
            if d.metric == metric and (d.a, d.b) == (a, b):
                return d
        raise KeyError((metric, a, b))

    def better(self, d: Difference, alpha: float = ALPHA) -> str | None:
        """The model whose lead in ``d`` is significant after the correction, else None."""
        if d.p_adjusted is None or d.p_adjusted >= alpha or not d.value:
            return None
        a_lower = d.value < 0
        return d.a if a_lower == (self.directions.get(d.metric, "lower") == "lower") else d.b

    def to_dict(self) -> dict[str, Any]:
        return {"models": self.models, "metrics": self.metrics, "n": self.n, "units": self.units,
                "unit": self.unit, "folds": self.folds, "level": self.level, "rounds": self.rounds,
                "seed": self.seed, "correction": self.correction, "left_out": self.left_out,
                "differences": [{**d.to_dict(), "better": self.better(d)} for d in self.differences]}

    def table(self) -> str:
        """A plain-text table, one line per metric and pair."""
        pct = f"{round(self.level * 100)}%"
        pair = max([len(d.a + " - " + d.b) + 1 for d in self.differences] + [28])  # whole names, never cut
        lines = [f"{len(self.models)} models on the same {self.n} samples ({self.units} {self.unit}s), "
                 f"{self.rounds} rounds, seed {self.seed}; p: paired permutation, Holm-corrected",
                 f"{'metric':<22}{'A - B':<{pair}}{'difference':>12}  {pct + ' interval':<26}{'p':>8}{'p (Holm)':>10}"]
        for d in self.differences:
            ci = "undefined" if d.low is None else f"[{d.low:.4g}, {d.high:.4g}]"
            value = "undefined" if d.value is None else f"{d.value:.4g}"
            p = "—" if d.p is None else f"{d.p:.3g}"
            q = "—" if d.p_adjusted is None else f"{d.p_adjusted:.3g}"
            lines.append(f"{d.metric:<22}{d.a + ' - ' + d.b:<{pair}}{value:>12}  {ci:<26}{p:>8}{q:>10}")
        return "\n".join(lines)

    __str__ = table


def _load(item: ScoreResult | str | os.PathLike) -> ScoreResult:
    result = item if isinstance(item, ScoreResult) else ScoreResult.from_json(item)
    if result.per_sample is None and not result.source.startswith("<"):
        table = per_sample_path(result.source)
        if table.is_file():
            result.per_sample = read_per_sample(table)
    if result.per_sample is None:
        raise MacsError(f"{result.source}: no per-sample table beside it; compare needs each sample's values")
    return result


def _strata(results: list[ScoreResult]) -> tuple[list[str], list[int | None], dict[tuple[str, Any], ScoreResult]]:
    by: dict[tuple[str, Any], ScoreResult] = {}
    for r in results:
        if (r.model, r.fold) in by:
            raise MacsError(f"{by[r.model, r.fold].source} and {r.source}: two results for model {r.model!r}, "
                            f"fold {r.fold}")
        by[r.model, r.fold] = r
    models = list(dict.fromkeys(r.model for r in results))
    if len(models) < 2:
        raise MacsError(f"compare needs results of at least two models, got only {models[0]!r}")
    folds = [f for f in dict.fromkeys(r.fold for r in results)]
    for m in models:
        for f in folds:
            if (m, f) not in by:
                raise MacsError(f"model {m!r} has no result for fold {f} (the others have); compare the same folds")
    first = results[0]
    for r in results[1:]:
        if r.dataset != first.dataset or r.split != first.split:
            raise MacsError(f"{first.source} and {r.source}: different dataset or split; compare one benchmark")
        if r.signature_fields != first.signature_fields:
            key = next(k for k in {**first.signature_fields, **r.signature_fields}
                       if first.signature_fields.get(k) != r.signature_fields.get(k))
            raise MacsError(f"{first.source} and {r.source} were measured differently ({key}); never compared")
    return models, folds, by


def _common_ids(group: list[ScoreResult], intersect: bool) -> list[str]:
    ids = [list(r.per_sample.index) for r in group]
    common = set(ids[0]).intersection(*ids[1:])
    for r, own in zip(group[1:], ids[1:]):
        if set(own) != set(ids[0]) and not intersect:
            only_a, only_b = len(set(ids[0]) - set(own)), len(set(own) - set(ids[0]))
            raise MacsError(f"{group[0].source} and {r.source}: scored on different samples ({only_a} only in "
                            f"the first, {only_b} only in the second); pass --intersect (intersect=True) to "
                            f"compare on the {len(common)} common samples")
    return [s for s in ids[0] if s in common]


def _check_same_truth(group: list[ScoreResult], ids: list[str]) -> None:
    if "frame_sha256" not in group[0].per_sample:
        return
    truth = group[0].per_sample.loc[ids, "frame_sha256"]
    for r in group[1:]:
        if "frame_sha256" in r.per_sample and not (r.per_sample.loc[ids, "frame_sha256"] == truth).all():
            raise MacsError(f"{group[0].source} and {r.source}: the ground-truth frames differ for some samples")


def _units(result: ScoreResult, ids: list[str]) -> tuple[list[str], str]:
    if "video_id" in result.per_sample:
        return [str(v) for v in result.per_sample.loc[ids, "video_id"]], "video"
    return list(ids), "sample"


def _features(result: ScoreResult, ids: list[str]) -> dict[str, np.ndarray] | None:
    data = result.load_features()
    if data is None:
        return None
    where = {s: i for i, s in enumerate(data["sample_ids"].tolist())} if "sample_ids" in data else {}
    absent = [s for s in ids if s not in where]
    if absent:
        raise MacsError(f"{result.source}: its features file lacks {len(absent)} scored samples (e.g. "
                        f"{absent[0]}); score again to rewrite it")
    rows = np.array([where[s] for s in ids])
    return {k: v[rows] for k, v in data.items() if k != "sample_ids"}


def _available(results: list[ScoreResult], set_fns: dict, with_features: bool) -> list[str]:
    names = [m for m in MEAN_METRICS if all(m in r.per_sample and r.metrics.get(m) is not None for r in results)]
    if with_features:
        keys = set.intersection(*(set((r.provenance.get("features_file") or {}).get("keys", [])) for r in results))
        names += [m for m, (space, _) in set_fns.items()
                  if f"gen_{space}" in keys and all(r.metrics.get(m) is not None for r in results)]
    return names


def compare(results: Sequence[ScoreResult | str | os.PathLike], *, metrics: Sequence[str] | None = None,
            rounds: int = 1000, seed: int = 0, intersect: bool = False, level: float = LEVEL,
            intervals: bool = True) -> Comparison:
    """Compare the models of ``results`` (result files or :class:`ScoreResult`s, one per model and fold) on the
    same samples: per metric and pair, difference, interval, permutation p-value and Holm's correction.

    ``metrics``: names (default: every metric all results can recompute); results scored on different samples
    are refused unless ``intersect``; ``intervals=False`` computes the p-values only (faster)."""
    from macs_bench.metrics.sets import rows_metric_functions, set_metric_functions

    loaded = [_load(r) for r in results]
    models, folds, by = _strata(loaded)
    config = loaded[0].provenance.get("config") or {}
    kid_options = (config.get("kid_subsets", 100), config.get("kid_subset_size", 1000), config.get("kid_seed", 0))
    set_fns, rows_fns = set_metric_functions(*kid_options), rows_metric_functions(*kid_options)
    with_features = all(r.provenance.get("features_file") or r.features for r in loaded)
    available = _available(loaded, set_fns, with_features)
    if metrics is None:
        metrics = available
    else:
        metrics = list(metrics)
        missing = [m for m in metrics if m not in available]
        if missing:
            raise MacsError(f"compare: {missing[0]!r} cannot be recomputed from these results (available: "
                            f"{', '.join(available) or 'none'}; set metrics need each result's features file)")
    strata = []
    left_out = {m: 0 for m in models}
    for f in folds:
        group = [by[m, f] for m in models]
        ids = _common_ids(group, intersect)
        if len(ids) < 3:
            raise MacsError(f"fold {f}: {len(ids)} common samples; a comparison needs at least 3")
        _check_same_truth(group, ids)
        for m, r in zip(models, group):
            left_out[m] += len(r.per_sample) - len(ids)
        units, unit = _units(group[0], ids)
        need_features = any(m not in MEAN_METRICS for m in metrics)
        feats = [_features(r, ids) for r in group] if need_features else None
        strata.append((group, ids, units, unit, feats))
    directions = {m: loaded[0].directions.get(m, "lower") for m in metrics}
    diffs = []
    for metric in metrics:
        for i, j in combinations(range(len(models)), 2):
            stats = []
            for group, ids, units, unit, feats in strata:
                if metric in MEAN_METRICS:
                    a = group[i].per_sample.loc[ids, metric].to_numpy(np.float64)
                    b = group[j].per_sample.loc[ids, metric].to_numpy(np.float64)
                    stats.append(mean_difference(a, b))
                else:
                    space, fn = set_fns[metric]
                    stats.append(set_difference(fn, feats[i][f"gen_{space}"], feats[j][f"gen_{space}"],
                                                feats[0][f"gt_{space}"], rows_fns.get(metric)))
            diffs.append(difference(stats, [s[2] for s in strata], "mean" if metric in MEAN_METRICS else "set",
                                    metric=metric, a=models[i], b=models[j], rounds=rounds, seed=seed,
                                    level=level, with_interval=intervals))
    adjusted = holm([d.p for d in diffs])
    diffs = [Difference(**{**d.to_dict(), "p_adjusted": q}) for d, q in zip(diffs, adjusted)]
    return Comparison(models=models, metrics=list(metrics), differences=diffs, directions=directions,
                      n=sum(len(s[1]) for s in strata), units=sum(len(set(s[2])) for s in strata),
                      unit=strata[0][3], folds=folds, level=level, rounds=rounds, seed=seed, left_out=left_out)
