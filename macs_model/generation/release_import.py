"""Release import, in one place: the authors' files per dataset, their identity (hashed once), and their
stage-2 weights (MLP + UNet k/v) turned into a generator run folder this package loads."""

from __future__ import annotations

import os
from pathlib import Path

from macs_bench.errors import MacsError
from macs_bench.io import atomic_write_text, dumps_json, sha256_file

RELEASE_NAMES = {"llp-multi": "LLP", "audioset-eval": "AudioSet", "landscape": "Landscape"}
SEPARATOR_FILE = "separator_FSD50K_full.pt"
MARKER = "release-import.json"


def release_files(release_dir: Path, dataset: str) -> dict[str, Path]:
    """The three release files for ``dataset``; every missing one is named in one error."""
    if dataset not in RELEASE_NAMES:
        raise MacsError(f"dataset {dataset!r}: the release has stage-2 weights for "
                        f"{', '.join(RELEASE_NAMES)} only")
    name = RELEASE_NAMES[dataset]
    release_dir = Path(release_dir)
    files = {"separator": release_dir / SEPARATOR_FILE, "mlp": release_dir / f"{name}_mlp.pt",
             "unet": release_dir / f"{name}_unet.pt"}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise MacsError(f"{release_dir}: missing {', '.join(missing)} (the authors' files, Hugging Face alxzzz/MACS)")
    return files


def import_release(release_dir: str | os.PathLike, dataset: str, run: str | os.PathLike, *,
                   base: str | os.PathLike | None = None, preset: str = "paper") -> tuple[Path, dict[str, str]]:
    """The run folder of the authors' files for ``dataset`` in ``run``, imported on first use: kept when its
    ``release-import.json`` records the same files (sha256 of the MLP and the separator, each hashed once here)
    and preset, refused when it records others, redone when an import stopped before its marker."""
    files = release_files(Path(release_dir), dataset)
    run = Path(run).expanduser()
    identity = {"mlp_sha256": sha256_file(files["mlp"]), "separator_sha256": sha256_file(files["separator"]),
                "preset": preset}
    marker = run / MARKER
    if marker.is_file():
        import json

        if json.loads(marker.read_text(encoding="utf-8")) != identity:
            raise MacsError(f"{run}: holds an import of other release files or another preset ({marker.name}); "
                            "use another output folder")
        return run, identity
    if run.exists():
        import shutil

        shutil.rmtree(run)  # an import that stopped before its marker: redo it
    import_release_generator(files["mlp"], files["unet"], files["separator"], run, base=base, preset=preset,
                             hashes={"mlp": identity["mlp_sha256"], "separator": identity["separator_sha256"]})
    atomic_write_text(marker, dumps_json(identity))
    return run, identity


def import_release_generator(mlp: str | os.PathLike, unet: str | os.PathLike, separator: str | os.PathLike,
                             out: str | os.PathLike, *, base: str | os.PathLike | None = None,
                             preset: str = "paper", hashes: dict[str, str] | None = None) -> Path:
    """Turn the authors' ``<dataset>_mlp.pt`` + ``<dataset>_unet.pt`` into a run folder ``generate`` takes.

    Only the tokens and the audio k/v are kept. The rest of the 3.4 GB UNet must be SD v1.4's frozen weights:
    every key is checked against the base (``release_unet``: a key that maps nowhere, a missing base weight or a
    sampled tensor that differs is refused). The run records ``separator`` (the authors'
    ``separator_FSD50K_full.pt``, whose CLAP makes the embeddings) and the ``preset``'s generator settings
    (``tiny``: the tiny random SD, for tests). Files are read with ``torch.load(weights_only=True, mmap=True)``.
    ``hashes``: the sha256 of the ``mlp`` and ``separator`` files when the caller has them (not hashed again).
    """
    import torch
    from safetensors.torch import save

    from macs_bench.io import atomic_write_bytes
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
    hashes = hashes or {}
    source = {"release_mlp": str(mlp), "release_unet": str(unet),
              "release_mlp_sha256": hashes.get("mlp") or sha256_file(mlp),
              "base_check": {"base": base_name, **checked}}
    base_info = ({"base": str(base)} if base is not None else {"weights": "stable-diffusion-v1-4"}
                 if config.base == "sd" else {"base": "tiny", "seed": config.seed})
    atomic_write_bytes(folder / ADAPTER_FILE, save({k: v.contiguous() for k, v in state.items()},
                                                   metadata={"decoupled": "True"}))
    atomic_write_text(folder / ADAPTER_CONFIG, dumps_json({
        "generator_config": config.to_dict(), "base": base_info, "cross_attention_dim": cross_dim, "decoupled": True,
        "parameters": sum(v.numel() for v in state.values()), "imported": source}))
    conditioning = {"no_separation": False, "clap": None,
                    "separator": {"source": str(separator),
                                  "sha256": hashes.get("separator") or sha256_file(separator)}}
    atomic_write_text(out / "config.json", dumps_json({
        "generator_config": config.to_dict(), "base": base_info,
        "run_info": {"imported": source, "conditioning": conditioning, "embeddings_key": None}}))
    return out
