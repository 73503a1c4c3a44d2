"""Import the release's stage-2 weights (MLP + UNet k/v) as an adapter folder this package loads."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from macs_bench.errors import MacsError
from macs_bench.io import atomic_write_bytes, dumps_json


def import_release_generator(mlp: str | os.PathLike, unet: str | os.PathLike, separator: str | os.PathLike,
                             out: str | os.PathLike, *, base: str | os.PathLike | None = None,
                             preset: str = "paper") -> Path:
    """Turn the authors' ``<dataset>_mlp.pt`` + ``<dataset>_unet.pt`` into a run folder ``generate`` takes.

    Only the tokens and the audio k/v are kept. The rest of the 3.4 GB UNet must be SD v1.4's frozen weights:
    every key is checked against the base (``release_unet``: a key that maps nowhere, a missing base weight or a
    sampled tensor that differs is refused). The run records ``separator`` (the authors'
    ``separator_FSD50K_full.pt``, whose CLAP makes the embeddings) and the ``preset``'s generator settings
    (``tiny``: the tiny random SD, for tests). Files are read with ``torch.load(weights_only=True, mmap=True)``.
    """
    from safetensors.torch import save

    from macs_bench.io import atomic_write_text, sha256_file
    from macs_model.generation.adapter import ADAPTER_CONFIG, ADAPTER_FILE, release_adapter_state
    from macs_model.generation.config import GeneratorConfig
    from macs_model.generation.release_unet import base_unet_state, release_kv

    states = []
    for path in (Path(mlp), Path(unet)):
        if not path.is_file():
            raise MacsError(f"{path}: release checkpoint not found")
        try:
            states.append(torch.load(path, map_location="cpu", weights_only=True, mmap=True))
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user-facing problem
            raise MacsError(f"{path}: cannot read the release checkpoint ({type(exc).__name__}: {exc})") from exc
        if not isinstance(states[-1], dict):
            raise MacsError(f"{path}: not a state dict")
    out = Path(out)
    if (out / "config.json").exists() or (out / "adapter").exists():
        raise MacsError(f"{out}: already holds a generator run; import into a new folder")
    if not Path(separator).is_file():
        raise MacsError(f"{separator}: release separator checkpoint not found")
    preset_config = GeneratorConfig.preset(preset)
    base_state, base_name = base_unet_state(base, tiny_seed=preset_config.seed if preset_config.base == "tiny"
                                            else None)
    kv, checked = release_kv(states[1], base_state, base_name, str(unet))
    state = release_adapter_state(states[0], kv, f"{mlp} + {unet}")
    num_tokens, clap_dim = (int(d) for d in state["encoder_hid_proj.image_projection_layers.0.pe"].shape)
    cross_dim = next(int(v.shape[1]) for k, v in state.items() if ".to_k_ip." in k)  # the UNet's text width
    config = GeneratorConfig.preset(preset, num_tokens=num_tokens, clap_dim=clap_dim)
    folder = out / "adapter"
    source = {"release_mlp": str(mlp), "release_unet": str(unet), "release_mlp_sha256": sha256_file(mlp),
              "base_check": {"base": base_name, **checked}}
    base_info = ({"base": str(base)} if base is not None else {"weights": "stable-diffusion-v1-4"}
                 if config.base == "sd" else {"base": "tiny", "seed": config.seed})
    atomic_write_bytes(folder / ADAPTER_FILE, save({k: v.contiguous() for k, v in state.items()},
                                                   metadata={"decoupled": "True"}))
    atomic_write_text(folder / ADAPTER_CONFIG, dumps_json({
        "generator_config": config.to_dict(), "base": base_info, "cross_attention_dim": cross_dim, "decoupled": True,
        "parameters": sum(v.numel() for v in state.values()), "imported": source}))
    conditioning = {"no_separation": False, "clap": None,
                    "separator": {"source": str(separator), "sha256": sha256_file(separator)}}
    atomic_write_text(out / "config.json", dumps_json({
        "generator_config": config.to_dict(), "base": base_info,
        "run_info": {"imported": source, "conditioning": conditioning, "embeddings_key": None}}))
    return out
