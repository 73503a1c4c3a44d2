"""ImageBind + Stable unCLIP: the mixture's ImageBind audio embedding (1024-d, trained into the frozen OpenCLIP
ViT-H image space) drawn by Stable unCLIP 2.1 through its image-embedding input, no training (Girdhar et al.,
2023, generate with an unCLIP decoder from audio embeddings; the MACS paper's ImageBind row).

ImageBind was pre-trained on AudioSet (the MACS paper: LLP-multi and AudioSet-Eval clips are in its data), so its
training ids are unknown and its rows are stamped "may have seen the test clips" unless ``held_out`` lists ids
known to be outside that data (e.g. a Landscape fold). Non-commercial: ImageBind's weights are CC-BY-NC(-SA) 4.0.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from macs_bench.device import resolve_device
from macs_bench.errors import MacsError
from macs_bench.models.protocol import Item, RowInfo
from macs_model.baselines.imagebind_unclip import UnCLIPConfig, draw, image_embed_dim, load_unclip, tiny_unclip

PRETRAINING_NOTE = "ImageBind was pre-trained on AudioSet: may have seen the test clips"


class ImageBindUnCLIP:
    """``generate``: ImageBind audio embedding of each item -> (optionally rescaled) -> Stable unCLIP.

    ``preset`` "paper" (ImageBind huge from ``imagebind`` or the registry's ``imagebind-huge``; Stable unCLIP 2.1
    from ``unclip`` or the registry's ``sd-2-1-unclip``) or "tiny" (random small parts, tests only); ``steps``,
    ``guidance_scale``, ``noise_level``, ``embed_norm``, ``height``/``width`` override the preset."""

    name = "ImageBind + unCLIP"

    def __init__(self, *, preset: str = "paper", imagebind: str | os.PathLike | None = None,
                 imagebind_sha256: str | None = None, unclip: str | os.PathLike | None = None, device: str = "auto",
                 held_out: Sequence[str] | None = None, **overrides: Any):
        from macs_model.encoders.imagebind_audio import ImageBindAudio, ImageBindAudioConfig, load_imagebind_audio

        renamed = {"steps": "inference_steps"}
        self.config = UnCLIPConfig.preset(preset, **{renamed.get(k, k): v for k, v in overrides.items()
                                                     if v is not None})
        self.device = resolve_device(device)
        dtype = self.config.torch_dtype(self.device)
        encoder_config = ImageBindAudioConfig.preset(self.config.encoder)
        if self.config.base == "tiny":
            self.encoder = ImageBindAudio(encoder_config.replace(seed=self.config.seed)).eval()
            self.pipe, self.unclip_source = tiny_unclip(encoder_config.out_dim, self.config.seed)
        else:
            _check_cached(imagebind, unclip)
            self.encoder = load_imagebind_audio(imagebind, sha256=imagebind_sha256, config=encoder_config)
            self.pipe, self.unclip_source = load_unclip(unclip, dtype)
        if image_embed_dim(self.pipe) != encoder_config.out_dim:
            raise MacsError(f"imagebind-unclip: the unCLIP pipeline takes {image_embed_dim(self.pipe)}-d image "
                            f"embeddings, ImageBind's audio tower gives {encoder_config.out_dim}-d")
        self.encoder.to(self.device)
        self.pipe.to(self.device)
        self.pipe.set_progress_bar_config(disable=True)
        self.held_out = set(held_out) if held_out is not None else None
        self.evaluated_held_out = False

    def prepare(self, manifest: Path, media: Path, fold: int | None) -> None:
        """Whether every evaluated id is known to be outside ImageBind's pre-training data (``held_out``)."""
        from macs_bench.models.runner import fold_samples

        ids = fold_samples(manifest, fold, None if fold is not None else "test").ids
        self.evaluated_held_out = self.held_out is not None and set(ids) <= self.held_out

    def trained_ids(self) -> set[str] | None:
        return set() if self.config.base == "tiny" else None  # random tiny weights saw nothing

    def row_info(self) -> RowInfo:
        if self.config.base != "tiny" and not self.evaluated_held_out:
            return RowInfo("model", "computed", True, PRETRAINING_NOTE)
        return RowInfo("model", "computed", False, "evaluated ids known to be outside ImageBind's pre-training"
                       if self.config.base != "tiny" else "tiny random weights (tests)")

    def provenance(self) -> dict[str, Any]:
        return {"baseline": self.name, "config": self.config.to_dict(), "imagebind": self.encoder.source,
                "encoder_config": self.encoder.config.to_dict(), "unclip": self.unclip_source,
                "embedding": "ImageBind audio output (unit vector x 20 per 2 s clip, mean of 3 clips)"
                             + (f", rescaled to norm {self.config.embed_norm}" if self.config.embed_norm else ""),
                "licence": "ImageBind: CC-BY-NC-SA 4.0 (non-commercial); Stable unCLIP 2.1: CreativeML Open "
                           "RAIL++-M"}

    def embeddings(self, items: Sequence[Item]) -> torch.Tensor:
        """[N, 1024] image embeddings fed to unCLIP: ImageBind's audio embeddings, rescaled if ``embed_norm``."""
        rates = {item.sample_rate for item in items}
        if len(rates) != 1:
            raise MacsError(f"imagebind-unclip: one sample rate per batch, got {sorted(rates)}")
        embeds = self.encoder.embed([item.waveform for item in items], rates.pop())
        if self.config.embed_norm is not None:
            embeds = torch.nn.functional.normalize(embeds, dim=-1) * self.config.embed_norm
        return embeds

    def draw_embeddings(self, embeds: torch.Tensor, seeds: Sequence[int]) -> list[Any]:
        """Stable unCLIP's images of image embeddings [N, D], image i's noise from ``seeds[i]``."""
        return draw(self.pipe, embeds, list(seeds), self.config)

    def generate(self, items: Sequence[Item], seed: int) -> list[Any]:
        return self.draw_embeddings(self.embeddings(items), [item.seed for item in items])



def _check_cached(imagebind: str | os.PathLike | None, unclip: str | os.PathLike | None) -> None:
    """Before loading anything: one error naming every registry entry the default path needs and lacks."""
    from macs_bench import weights
    from macs_model.baselines.imagebind_unclip import UNCLIP_WEIGHTS
    from macs_model.encoders.imagebind_audio import WEIGHTS_NAME

    needed = [name for name, given in ((WEIGHTS_NAME, imagebind), (UNCLIP_WEIGHTS, unclip)) if given is None]
    missing = [name for name in needed if not weights.local_path(name).exists()]
    if missing:
        raise MacsError(f"{weights.cache_dir()}: missing weights {', '.join(missing)} for imagebind-unclip; fetch "
                        f"them with: macs-bench weights fetch {' '.join(missing)} (or give imagebind=/unclip= paths)")
