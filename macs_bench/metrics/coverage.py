"""Per-source coverage: does *each* sound source of a multi-source clip appear in the generated image?

For sample i with label set Y_i (a subset of the dataset's classes V), a zero-shot detector scores every class
c in V on the image: s_ic = cosine(image embedding_i, class text embedding_c). With T_i the |Y_i| classes of
highest score (ties go to the class listed first in V),

    coverage_i = |T_i ∩ Y_i| / |Y_i|        AIC_i = [argmax_c s_ic ∈ Y_i]

(AIC is AudioToken's audio-image consistency: the top-1 class is one of the clip's labels). Coverage and AIC
are reported as means over samples, and coverage also per number of sources |Y|. The same numbers on the
ground-truth frames are the detector's ceiling on this data; ``coverage_rel`` = coverage / ceiling. The chance
level |Y_i| / |V| (:func:`chance_level`, a detector that ranks without looking) is reported beside them.

Everything here is a pure function of (image embeddings, class text embeddings, label sets), so any joint
image-text space can be plugged in; :func:`class_text_embeddings` builds the class embeddings from any text
tower with the prompt set :data:`PROMPTS`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from macs_bench.errors import MacsError
from macs_bench.metrics.fid import as_feature_matrix, check_same_dim, unit_rows
from macs_bench.metrics.similarity import cosine_matrix

# CLIP-style zero-shot prompts (Radford et al. 2021 average several templates per class): each class embedding
# is the renormalised mean of the unit-norm embeddings of these sentences with the class name filled in
PROMPTS = ("a photo of {}.", "a photo of the {}.", "a picture of {}.", "an image showing {}.")
PROMPTS_VERSION = "coverage-prompts-v1"


@dataclass(frozen=True)
class CoverageScores:
    """Per-sample coverage and AIC (0/1), the number of sources per sample, and the means."""

    per_sample: np.ndarray
    aic: np.ndarray
    n_sources: np.ndarray
    mean: float
    aic_mean: float

    def by_sources(self) -> dict[int, dict[str, float]]:
        """``{|Y|: {"n": count, "coverage": mean, "aic": mean}}`` for every number of sources present."""
        out = {}
        for k in sorted(set(self.n_sources.tolist())):
            rows = self.n_sources == k
            out[int(k)] = {"n": int(rows.sum()), "coverage": float(self.per_sample[rows].mean()),
                           "aic": float(self.aic[rows].mean())}
        return out


def _label_rows(label_sets: Sequence[Sequence[int]], n: int, n_classes: int) -> list[np.ndarray]:
    if len(label_sets) != n:
        raise MacsError(f"{len(label_sets)} label sets for {n} images: they must be paired")
    rows = []
    for i, labels in enumerate(label_sets):
        array = np.asarray(list(labels))
        if array.size == 0:
            raise MacsError(f"sample {i}: empty label set; coverage needs at least one source")
        if array.dtype.kind not in "iu" or array.min() < 0 or array.max() >= n_classes:
            raise MacsError(f"sample {i}: labels must be class indices in [0, {n_classes}), got {list(labels)}")
        if np.unique(array).size != array.size:
            raise MacsError(f"sample {i}: a class appears twice in its label set {list(labels)}")
        rows.append(array)
    return rows


def ranked_classes(scores: np.ndarray) -> np.ndarray:
    """Each row's class indices by decreasing score; ties keep the class order of V (a stable sort)."""
    return np.argsort(-scores, axis=1, kind="stable")


def source_coverage(image_emb, class_emb, label_sets: Sequence[Sequence[int]]) -> CoverageScores:
    """Coverage and AIC of N images (``N x d``) against |V| class embeddings (``|V| x d``) and N label sets
    (class indices into the rows of ``class_emb``)."""
    images = as_feature_matrix(image_emb, "image_emb", min_rows=1)
    classes = as_feature_matrix(class_emb, "class_emb", min_rows=1)
    check_same_dim(images, classes, "image_emb", "class_emb")
    rows = _label_rows(label_sets, images.shape[0], classes.shape[0])
    order = ranked_classes(cosine_matrix(images, classes))
    per_sample = np.empty(len(rows))
    aic = np.empty(len(rows))
    for i, labels in enumerate(rows):
        per_sample[i] = np.isin(order[i, : labels.size], labels).sum() / labels.size
        aic[i] = float(order[i, 0] in labels)
    return CoverageScores(per_sample, aic, np.array([r.size for r in rows]), float(per_sample.mean()),
                          float(aic.mean()))


def chance_level(label_sets: Sequence[Sequence[int]], n_classes: int) -> np.ndarray:
    """Each sample's coverage (and AIC) under a detector that ranks classes without looking: |Y_i| / |V|. For any
    ranking, a label set of size k drawn at random from V overlaps its top k in k^2 / |V| classes on average."""
    if n_classes < 1:
        raise MacsError("coverage needs at least one class")
    return np.array([len(labels) / n_classes for labels in label_sets], dtype=np.float64)


def class_text_embeddings(encode_text: Callable[[list[str]], np.ndarray], classes: Sequence[str],
                          prompts: Sequence[str] = PROMPTS) -> np.ndarray:
    """``|V| x d`` class embeddings: per class, the renormalised mean of its unit-norm prompt embeddings."""
    if not classes:
        raise MacsError("coverage needs at least one class name")
    sentences = [p.format(c) for c in classes for p in prompts]
    emb = as_feature_matrix(encode_text(sentences), "text embeddings")
    if emb.shape[0] != len(sentences):
        raise MacsError(f"the text tower returned {emb.shape[0]} embeddings for {len(sentences)} prompts")
    emb = unit_rows(emb, "text embeddings")
    return unit_rows(emb.reshape(len(classes), len(prompts), -1).mean(axis=1), "class embeddings")


def coverage_report(gen_emb, gt_emb, class_emb, label_sets) -> tuple[dict[str, float | None], dict,
                                                                      dict[str, np.ndarray]]:
    """The result's coverage numbers (generated, ground-truth ceiling, relative, AIC of both), the breakdown
    by number of sources, and the per-sample values behind them."""
    gen = source_coverage(gen_emb, class_emb, label_sets)
    gt = source_coverage(gt_emb, class_emb, label_sets)
    metrics = {"source_coverage": gen.mean, "source_coverage_gt": gt.mean,
               "source_coverage_rel": gen.mean / gt.mean if gt.mean > 0 else None,
               "aic": gen.aic_mean, "aic_gt": gt.aic_mean}
    ceiling = gt.by_sources()
    chance = chance_level(label_sets, np.asarray(class_emb).shape[0])
    breakdown = {str(k): {"n": v["n"], "coverage": v["coverage"], "coverage_gt": ceiling[k]["coverage"],
                          "aic": v["aic"], "aic_gt": ceiling[k]["aic"],
                          "chance": float(chance[gen.n_sources == k].mean())}
                 for k, v in gen.by_sources().items()}
    per_sample = {"source_coverage": gen.per_sample, "source_coverage_gt": gt.per_sample, "aic": gen.aic,
                  "aic_gt": gt.aic, "source_coverage_chance": chance}
    return metrics, breakdown, per_sample


def label_indices(classes: Sequence[str], labels: Sequence[Sequence[str]]) -> list[list[int]]:
    """Each sample's label names as indices into ``classes`` (V: the dataset's classes, e.g. every label of
    the whole manifest, not only of the scored fold)."""
    index = {name: i for i, name in enumerate(classes)}
    out = []
    for row in labels:
        unknown = [name for name in row if name not in index]
        if unknown:
            raise MacsError(f"label {unknown[0]!r} is not among the {len(classes)} classes")
        out.append([index[name] for name in dict.fromkeys(row)])
    return out
