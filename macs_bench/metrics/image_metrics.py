"""FID, KID, FD-DINOv2 and PRDC as ``torchmetrics.Metric`` classes on images, as torchmetrics' own
``FrechetInceptionDistance`` is used: ``update(images, real=True|False)``, ``compute()``, ``reset()``.

Images are ``uint8`` tensors ``N x 3 x H x W``; each runs through the scoring encoder's own resize (clean-fid's
for Inception, dgm-eval's for DINOv2: :class:`~macs_bench.features.encoders.ImageFile`'s ``transform``) and
network, so the features equal ``macs-bench score``'s, and ``compute`` calls the same functional code. With
``reset_real_features=False`` a ``reset()`` keeps the reference features (evaluate many checkpoints against one
reference set, as torchmetrics allows). States are lists reduced by concatenation, so ``dist_sync`` gathers every
process's rows.
"""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from macs_bench.metrics.fid import frechet_distance
from macs_bench.metrics.kid import kernel_inception_distance
from macs_bench.metrics.prdc import K, prdc


def _default_encoder(name: str):
    from macs_bench.features.encoders import build_encoders

    return build_encoders("paper", names=[name])[name]


class _ImageFeatures(Metric):
    """Gathers encoder features of real and generated images."""

    full_state_update = False
    higher_is_better = False
    encoder_name = "inception"

    def __init__(self, encoder=None, reset_real_features: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder if encoder is not None else _default_encoder(self.encoder_name)
        if not hasattr(self.encoder.preprocess, "transform"):
            raise ValueError(f"{self.encoder.id}: not an image encoder with an array transform")
        self.network = self.encoder.model  # a submodule, so Metric.to(device) moves it
        self.reset_real_features = reset_real_features
        self.add_state("real", default=[], dist_reduce_fx="cat")
        self.add_state("fake", default=[], dist_reduce_fx="cat")

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The encoder's features of ``uint8`` images ``N x 3 x H x W`` (float32, on the images' device)."""
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be uint8 N x 3 x H x W, got {images.dtype} {tuple(images.shape)}")
        arrays = images.permute(0, 2, 3, 1).cpu().numpy()
        inputs = [self.encoder.preprocess.transform(np.ascontiguousarray(a)) for a in arrays]
        device = next(self.network.parameters()).device
        return torch.from_numpy(self.encoder.encode(inputs, device)).to(images.device)

    def update(self, images: torch.Tensor, real: bool) -> None:
        (self.real if real else self.fake).append(self.features(images))

    def reset(self) -> None:
        kept = list(self.real) if not self.reset_real_features else None
        super().reset()
        if kept is not None:
            self.real = kept

    def _sets(self) -> tuple[np.ndarray, np.ndarray]:
        return (dim_zero_cat(self.real).double().cpu().numpy(), dim_zero_cat(self.fake).double().cpu().numpy())


class FID(_ImageFeatures):
    """FID (Inception pool features; clean-fid's 'clean' resize). ``encoder``: default the paper's Inception."""

    def compute(self) -> torch.Tensor:
        real, fake = self._sets()
        return torch.tensor(frechet_distance(fake, real), dtype=torch.float64)


class FDDINOv2(FID):
    """FD-DINOv2 (dgm-eval): the Frechet distance on DINOv2 ViT-L/14 CLS features."""

    encoder_name = "dinov2"


class KID(_ImageFeatures):
    """KID (mean, std) over random subsets, with :func:`kernel_inception_distance`'s sampling and seed."""

    def __init__(self, encoder=None, subsets: int = 100, subset_size: int = 1000, seed: int = 0, **kwargs):
        super().__init__(encoder, **kwargs)
        self.subsets, self.subset_size, self.seed = subsets, subset_size, seed

    def compute(self) -> tuple[torch.Tensor, torch.Tensor]:
        real, fake = self._sets()
        mean, std = kernel_inception_distance(fake, real, num_subsets=self.subsets,
                                              max_subset_size=self.subset_size, seed=self.seed)
        return torch.tensor(mean, dtype=torch.float64), torch.tensor(std, dtype=torch.float64)


class PRDC(_ImageFeatures):
    """Precision, recall, density and coverage (Naeem et al. 2020, k-NN radii of the real set);
    ``encoder``: Inception by default, or DINOv2 for the dgm-eval variant."""

    higher_is_better = True

    def __init__(self, encoder=None, k: int = K, **kwargs):
        super().__init__(encoder, **kwargs)
        self.k = k

    def compute(self) -> dict[str, torch.Tensor]:
        real, fake = self._sets()
        return {key: torch.tensor(v, dtype=torch.float64) for key, v in prdc(real, fake, self.k).items()}
