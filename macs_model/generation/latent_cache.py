"""Stage-2 latent cache: the VAE posterior of each training frame, computed once per clip and image variant.

Stage 2 trains on VAE latents of the clips' frames. The VAE is frozen and its encoder deterministic, so a frame
gives one diagonal Gaussian (mean, log-variance) per view of the frame: a bucket view (height, width, horizontal
flip) or the centre crop (``image_buckets``). Encoding it at every step repeats the same work; this
cache keeps those moments on disk, one safetensors file per (sample id, view) under ``<folder>/<key>/``. The key hashes the VAE's weights, the dtype it runs
in and the preprocessing version, so another VAE (or precision) reads and writes elsewhere; an entry is used only
while the frame file's sha256 is the one it was made from, else it is computed again.

Training draws the latents from the cached moments as the VAE's ``latent_dist.sample()`` does, with the same
random numbers, so a step's loss is the one it has without the cache (to the rounding of batched encoding).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from macs_bench.io import atomic_write_bytes, sha256_file
from macs_model.generation.image_buckets import load_view, view_name

PREPROCESSING_VERSION = 2  # bump when image_buckets.load_view changes the pixels of a view


def vae_identity(vae: torch.nn.Module) -> str:
    """16 hex digits naming the VAE's weights (names, dtypes, shapes, bytes) and this cache's preprocessing."""
    digest = hashlib.sha256(f"latent-cache-v{PREPROCESSING_VERSION}".encode())
    for name, tensor in sorted(vae.state_dict().items()):
        tensor = tensor.detach().contiguous().cpu()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def _frames(items: Sequence[Any], views: Sequence[Any], height: int, width: int) -> torch.Tensor:
    """[B, 3, H, W] in [-1, 1]: each item's frame in its view, as stage 2 preprocesses it."""
    return torch.stack([load_view(item.image, view, height, width) for item, view in zip(items, views)])


def sample_latents(vae: Any, moments: torch.Tensor) -> torch.Tensor:
    """Scaled float32 latents drawn from VAE posterior moments [B, 2C, h, w], as ``latent_dist.sample()`` draws.

    The result is contiguous whatever the moments' layout (the VAE's convolutions may return channels-last), so
    that the noise ``randn_like`` draws for it next does not depend on where the moments came from.
    """
    from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

    latents = DiagonalGaussianDistribution(moments).sample() * vae.config.scaling_factor
    return latents.float().contiguous()


@torch.no_grad()
def encode_moments(vae: Any, items: Sequence[Any], views: Sequence[Any], height: int, width: int) -> torch.Tensor:
    """VAE posterior moments [B, 2C, h, w] of the items' frames in their views (``None``: the centre crop at
    ``height`` x ``width``), on the VAE's device and in its dtype."""
    parameter = next(vae.parameters())
    images = _frames(items, views, height, width).to(parameter.device, parameter.dtype)
    return vae.encode(images).latent_dist.parameters


def frame_latents(vae: Any, items: Sequence[Any], views: Sequence[Any], height: int, width: int,
                  cache: "LatentCache | None" = None) -> torch.Tensor:
    """Training latents of the items' frames in their views: from ``cache`` when given, else encoded now (same
    draw either way)."""
    if cache is not None:
        moments = cache.moments(items, views, height, width)
    else:
        moments = encode_moments(vae, items, views, height, width)
    return sample_latents(vae, moments)


class LatentCache:
    """VAE posterior moments of training frames on disk, keyed by (sample id, view) and the VAE."""

    def __init__(self, folder: str | os.PathLike, vae: Any):
        self.vae = vae
        self.key = vae_identity(vae)
        self.folder = Path(folder) / self.key
        self.hits = self.misses = 0
        self._digests: dict[Path, str] = {}

    def path(self, sample_id: str, view: Any, height: int, width: int) -> Path:
        return self.folder / f"{sample_id}-{view_name(view, height, width)}.safetensors"

    def _digest(self, frame: Path) -> str:
        """The frame's sha256, read once per cache object (frames do not change during a run)."""
        if frame not in self._digests:
            self._digests[frame] = sha256_file(frame)
        return self._digests[frame]

    def _read(self, file: Path, digest: str) -> torch.Tensor | None:
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(file), framework="pt") as cached:
                if (cached.metadata() or {}).get("frame_sha256") == digest:
                    return cached.get_tensor("moments")
        except (OSError, SafetensorError, KeyError):
            pass
        return None

    def moments(self, items: Sequence[Any], views: Sequence[Any], height: int, width: int) -> torch.Tensor:
        """Moments [B, 2C, h, w] of the items' frames (``TrainItem``s), read from disk or encoded and stored."""
        from safetensors.torch import save

        parameter = next(self.vae.parameters())
        found: list[torch.Tensor | None] = []
        for item, view in zip(items, views):
            found.append(self._read(self.path(item.sample_id, view, height, width), self._digest(Path(item.image))))
        missing = [i for i, m in enumerate(found) if m is None]
        self.hits += len(items) - len(missing)
        self.misses += len(missing)
        if missing:
            self.folder.mkdir(parents=True, exist_ok=True)
            fresh = encode_moments(self.vae, [items[i] for i in missing], [views[i] for i in missing], height, width)
            for i, moments in zip(missing, fresh):
                found[i] = moments
                item = items[i]
                metadata = {"frame_sha256": self._digest(Path(item.image)), "sample_id": item.sample_id,
                            "view": view_name(views[i], height, width), "vae": self.key}
                atomic_write_bytes(self.path(item.sample_id, views[i], height, width),
                                   save({"moments": moments.detach().cpu().contiguous()}, metadata=metadata))
        return torch.stack([m.to(parameter.device, parameter.dtype) for m in found])
