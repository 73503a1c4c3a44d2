"""Checks on the authors' ``<dataset>_unet.pt`` before its audio k/v are imported.

The file is the whole diffusers UNet state dict the release trained: Stable Diffusion v1.4's frozen weights plus,
on every cross-attention layer, ``<layer>.attn2.processor.to_{k,v}_ip.weight``. Every key must map somewhere:
onto an audio k/v slot of one of the base's ``attn2`` layers (shape of that layer's text ``to_k``), or onto a
weight of the base UNet (same name, same shape). A key that maps nowhere is refused, never dropped. The frozen
weights must be the base's: every base key present, and a fixed sample of tensors (``SAMPLED`` of them evenly
spread over the sorted names, plus ``conv_in`` / ``conv_out``) equal to the pinned SD v1.4 snapshot's
(``macs-bench weights fetch stable-diffusion-v1-4``), so an adapter trained on another base is refused.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch

from macs_bench.errors import MacsError

SAMPLED = 32
ALWAYS = ("conv_in.weight", "conv_out.weight")
UNET_FILES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors",
              "diffusion_pytorch_model.bin")
KV_KEY = re.compile(r"(.+\.attn2)\.processor\.(to_k_ip|to_v_ip)\.weight")


class SafetensorsState(Mapping):
    """A safetensors file as a read-only mapping that reads each tensor only when asked."""

    def __init__(self, path: Path):
        from safetensors import safe_open

        self.path = path
        self._handle = safe_open(str(path), framework="pt")
        self._keys = list(self._handle.keys())

    def __getitem__(self, key: str) -> torch.Tensor:
        if key not in self._keys:
            raise KeyError(key)
        return self._handle.get_tensor(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(self._handle.get_slice(key).get_shape())


def _shape(state: Mapping, key: str) -> tuple[int, ...]:
    return state.shape(key) if isinstance(state, SafetensorsState) else tuple(state[key].shape)


def base_unet_state(base: str | os.PathLike | None, *, tiny_seed: int | None = None
                    ) -> tuple[Mapping[str, torch.Tensor], str]:
    """(state, name) of the base UNet the release file is checked against: the registry's SD v1.4 (``base``
    None), a local diffusers folder, or with ``tiny_seed`` the tiny random SD of the ``tiny`` preset."""
    if tiny_seed is not None:
        from macs_model.generation.components import tiny_components

        return tiny_components(tiny_seed).unet.state_dict(), f"the tiny random SD (seed {tiny_seed})"
    from macs_bench import weights
    from macs_model.generation.components import SD_WEIGHTS

    folder = weights.path(SD_WEIGHTS) if base is None else Path(base)
    name = f"Stable Diffusion v1.4 ({folder})" if base is None else str(folder)
    if not folder.is_dir():
        raise MacsError(f"{folder}: the base must be a local diffusers folder to check the release UNet against "
                        "(macs-bench weights fetch stable-diffusion-v1-4)")
    for filename in UNET_FILES:
        path = folder / "unet" / filename
        if path.is_file():
            if path.suffix == ".safetensors":
                return SafetensorsState(path), name
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True), name
    raise MacsError(f"{folder / 'unet'}: no UNet weights ({UNET_FILES[0]}); "
                    "fetch them with: macs-bench weights fetch stable-diffusion-v1-4")


def release_kv(unet: Mapping[str, torch.Tensor], base: Mapping[str, torch.Tensor], base_name: str, where: str
               ) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
    """The release file's audio k/v (release key names), after checking every key against ``base``; and what
    was checked (keys, sampled tensors)."""
    base_keys = set(base)
    kv, frozen, unmapped, misshapen = {}, [], [], []
    for key, value in unet.items():
        match = KV_KEY.fullmatch(key)
        target = f"{match[1]}.to_k.weight" if match else key
        if target not in base_keys:
            unmapped.append(key)
        elif tuple(value.shape) != _shape(base, target):
            misshapen.append(f"{key} {list(value.shape)} (the base's {target} is {list(_shape(base, target))})")
        elif match:
            kv[key] = value
        else:
            frozen.append(key)
    if unmapped:
        raise MacsError(f"{where}: {len(unmapped)} key(s) map to nothing in {base_name}'s UNet or the audio "
                        f"adapter (e.g. {sorted(unmapped)[0]}); refusing rather than dropping them")
    if misshapen:
        raise MacsError(f"{where}: {len(misshapen)} key(s) have another shape than {base_name}'s: {misshapen[0]}")
    layers = sorted(k[: -len(".to_k.weight")] for k in base_keys if re.fullmatch(r".+\.attn2\.to_k\.weight", k))
    without = [layer for layer in layers if not all(f"{layer}.processor.{kind}.weight" in kv
                                                     for kind in ("to_k_ip", "to_v_ip"))]
    if without and kv:
        raise MacsError(f"{where}: {len(without)} of the base's {len(layers)} cross-attention layers have no audio "
                        f"k/v (e.g. {without[0]})")
    absent = sorted(base_keys - set(frozen))
    if absent:
        raise MacsError(f"{where}: lacks {len(absent)} of {base_name}'s UNet weights (e.g. {absent[0]}); "
                        "not a whole SD UNet state dict")
    names = sorted(frozen)
    sample = sorted(set(names[:: max(1, len(names) // SAMPLED)] + [k for k in ALWAYS if k in base_keys]))
    differ = [k for k in sample if not torch.equal(unet[k].to(base[k].dtype), base[k])]
    if differ:
        raise MacsError(f"{where}: its frozen UNet weights are not {base_name}'s ({len(differ)} of {len(sample)} "
                        f"sampled tensors differ, e.g. {differ[0]}); the adapter was trained on another base")
    return kv, {"frozen_keys": len(frozen), "audio_kv_keys": len(kv), "sampled_tensors_equal": len(sample)}
