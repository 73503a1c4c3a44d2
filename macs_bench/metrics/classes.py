"""The scoring metrics as ``torchmetrics.Metric`` classes, for Lightning and torchmetrics training loops.

Each class only gathers embeddings (list states reduced by concatenation, so ``dist_sync`` collects every
process's rows) and computes with the same functional code as ``macs-bench score``: a class and its function
give the same numbers on the same rows. Embeddings come from the caller's encoders.
"""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from macs_bench.metrics.cmmd import cmmd, unit_rows
from macs_bench.metrics.coverage import source_coverage
from macs_bench.metrics.similarity import paired_scores


def _rows(state) -> np.ndarray:
    return dim_zero_cat(state).double().cpu().numpy()


class PairedSimilarity(Metric):
    """AIS (queries: audio embeddings) or IIS (queries: ground-truth image embeddings) against generated image
    embeddings, with the z-score of each pair against the other generated images; compute() returns
    ``{"mean": AIS or IIS, "z_mean": AIS-z or IIS-z}`` (``z_mean`` NaN when undefined)."""

    full_state_update = False
    higher_is_better = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_state("queries", default=[], dist_reduce_fx="cat")
        self.add_state("generated", default=[], dist_reduce_fx="cat")

    def update(self, queries: torch.Tensor, generated: torch.Tensor) -> None:
        if queries.shape[0] != generated.shape[0]:
            raise ValueError(f"{queries.shape[0]} queries but {generated.shape[0]} generated rows: they must pair")
        self.queries.append(queries.detach())
        self.generated.append(generated.detach())

    def compute(self) -> dict[str, torch.Tensor]:
        scores = paired_scores(_rows(self.queries), _rows(self.generated), undefined_z="nan")
        return {"mean": torch.tensor(scores.mean, dtype=torch.float64),
                "z_mean": torch.tensor(scores.z_mean, dtype=torch.float64)}


class SourceCoverage(Metric):
    """Per-source coverage and AIC of image embeddings against fixed class text embeddings; label sets come as
    multi-hot rows (``N x |V|``). compute() returns ``{"coverage", "aic"}``."""

    full_state_update = False
    higher_is_better = True

    def __init__(self, class_embeddings: torch.Tensor, **kwargs):
        super().__init__(**kwargs)
        self.register_buffer("class_embeddings", torch.as_tensor(class_embeddings).detach().clone())
        self.add_state("images", default=[], dist_reduce_fx="cat")
        self.add_state("labels", default=[], dist_reduce_fx="cat")

    def update(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if labels.shape != (images.shape[0], self.class_embeddings.shape[0]):
            raise ValueError(f"labels must be multi-hot rows of shape ({images.shape[0]}, "
                             f"{self.class_embeddings.shape[0]}), got {tuple(labels.shape)}")
        self.images.append(images.detach())
        self.labels.append(labels.detach().bool())

    def compute(self) -> dict[str, torch.Tensor]:
        label_sets = [np.flatnonzero(row).tolist() for row in dim_zero_cat(self.labels).cpu().numpy()]
        scores = source_coverage(_rows(self.images), self.class_embeddings.double().cpu().numpy(), label_sets)
        return {"coverage": torch.tensor(scores.mean, dtype=torch.float64),
                "aic": torch.tensor(scores.aic_mean, dtype=torch.float64)}


class CMMD(Metric):
    """CMMD (sigma 10, x1000, biased estimator) between real and generated CLIP ViT-L/14-336 embeddings;
    ``update(embeddings, real=True|False)`` as torchmetrics' FID does."""

    full_state_update = False
    higher_is_better = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_state("real", default=[], dist_reduce_fx="cat")
        self.add_state("fake", default=[], dist_reduce_fx="cat")

    def update(self, embeddings: torch.Tensor, real: bool) -> None:
        (self.real if real else self.fake).append(embeddings.detach())

    def compute(self) -> torch.Tensor:
        return torch.tensor(cmmd(unit_rows(_rows(self.real)), unit_rows(_rows(self.fake))), dtype=torch.float64)
