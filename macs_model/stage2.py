"""Stage 2 for users: train the generator on one fold of a benchmark, and generate that fold's images for scoring.

The model path reads audio -> separator -> ranked CLAP embeddings -> audio tokens -> diffusion -> image. Stage 1
is frozen, so each clip's ranked embeddings [M, 512] are computed once and cached as one safetensors file per
clip under ``<run>/embeddings/<key>/``, where the key hashes the separator checkpoint and the CLAP that made
them. ``no_separation`` is the paper's "without MSS" baseline: the mixture's CLAP embedding as a single token.

Folds: with ``fold=K`` the samples of fold K are generated and the other folds train; without a fold, the
manifest's ``train`` / ``test`` split column decides (Landscape).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from macs_bench.datasets.manifest import read_manifest
from macs_bench.errors import MacsError
from macs_bench.io import atomic_write_bytes, dumps_json

EMBEDDINGS = "embeddings"
LATENTS = "latents"  # the frames' VAE latents (macs_model.latent_cache)


def fold_ids(manifest: str | os.PathLike, fold: int | None) -> tuple[list[str], list[str]]:
    """(train ids, test ids) of a built manifest for fold K, or by its split column without a fold."""
    rows = read_manifest(manifest)
    if fold is not None:
        folds = sorted({r["fold"] for r in rows if r.get("fold")})
        if str(fold) not in folds:
            raise MacsError(f"{manifest}: no fold {fold} (folds: {', '.join(folds) or 'none'})")
        return ([r["sample_id"] for r in rows if r["fold"] != str(fold)],
                [r["sample_id"] for r in rows if r["fold"] == str(fold)])
    train = [r["sample_id"] for r in rows if r.get("split") == "train"]
    test = [r["sample_id"] for r in rows if r.get("split") == "test"]
    if not train or not test:
        raise MacsError(f"{manifest}: no train/test split column; pass --fold K")
    return train, test


class Conditioner:
    """Ranked CLAP embeddings of audio clips from a frozen separator (or of the mixture alone), cached per clip."""

    def __init__(self, separator: str | os.PathLike | None, *, clap: str | None = None,
                 tokenizer: str | os.PathLike | None = None, no_separation: bool = False,
                 device: str | torch.device | None = None, recorded_clap: dict[str, Any] | None = None):
        from macs_model.stage1 import clap_identity, load_separator, separator_encoder

        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.no_separation = no_separation
        if separator is None and not no_separation:
            raise MacsError("stage 2 needs --separator RUN (a stage-1 run) or --no-separation")
        self.loaded = load_separator(separator) if separator is not None else None
        self.sample_rate = self.loaded.config.sample_rate if self.loaded else 16000
        self.encoder = separator_encoder(self.loaded, separator, clap, tokenizer,
                                         recorded=recorded_clap).to(self.device)
        if self.loaded is not None:
            self.loaded.model.to(self.device)
        self.num_tokens = 1 if no_separation else self.loaded.config.num_sources
        self._embed_dim = int(self.encoder.embed_dim)
        identity = {"separator": None if no_separation else self.loaded.sha256,
                    "clap": clap_identity(self.encoder.provenance())}
        self.key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
        self.provenance = {"no_separation": no_separation, "clap": self.encoder.provenance(),
                           "separator": None if self.loaded is None else
                           {"source": self.loaded.source, "sha256": self.loaded.sha256}}

    def release(self) -> None:
        """Free the separator and CLAP (stage 2 trains from the cached embeddings)."""
        self.loaded = self.encoder = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    @property
    def embed_dim(self) -> int:
        return self._embed_dim

    @torch.no_grad()
    def embed(self, audio: torch.Tensor) -> torch.Tensor:
        """[K, D] ranked embeddings of one clip [T] at the separator's rate."""
        from macs_model.stage1 import ranked_sources

        audio = audio.to(self.device)
        if self.no_separation:
            return self.encoder.embed_audio(audio[None]).cpu()
        return ranked_sources(self.loaded.model, self.encoder, audio)[3]

    def embed_file(self, path: Path) -> torch.Tensor:
        from macs_model.data import load_audio

        return self.embed(load_audio(path, self.sample_rate))

    def clips(self, ids: Sequence[str], media: str | os.PathLike, cache: str | os.PathLike, *,
              progress: bool = True) -> dict[str, torch.Tensor]:
        """Embeddings of ``MEDIA/audio/<id>.wav`` for each id, read from or added to ``cache/<key>/<id>.safetensors``.

        A cached entry is used only while the audio file's sha256 is the one it was made from; an unreadable or
        stale entry is computed again.
        """
        from safetensors import SafetensorError, safe_open
        from safetensors.torch import save

        from macs_bench.io import sha256_file

        from macs_model.data import audio_path
        from macs_model.training import progress_bar

        folder = Path(cache) / self.key
        folder.mkdir(parents=True, exist_ok=True)
        out = {}
        with progress_bar(progress) as bar:
            task = bar.add_task("audio embeddings", total=len(ids)) if bar is not None else None
            for sid in ids:
                file, audio = folder / f"{sid}.safetensors", audio_path(media, sid)
                digest = sha256_file(audio)
                try:
                    with safe_open(str(file), framework="pt") as cached:
                        if (cached.metadata() or {}).get("audio_sha256") == digest:
                            out[sid] = cached.get_tensor("embeddings")
                except (OSError, SafetensorError, KeyError):
                    pass
                if sid not in out:
                    if self.encoder is None:
                        raise MacsError(f"{file}: embedding missing from the cache and the encoders are released")
                    out[sid] = self.embed_file(audio).contiguous()
                    atomic_write_bytes(file, save({"embeddings": out[sid]}, metadata={"audio_sha256": digest}))
                if bar is not None:
                    bar.update(task, advance=1)
        return out


def _present(ids: Sequence[str], media: Path, need_frames: bool) -> tuple[list[str], int]:
    """The ids whose audio (and frame, with ``need_frames``) ``datasets fetch`` wrote, and how many lack it."""
    from macs_model.data import audio_path

    kept = [sid for sid in ids if audio_path(media, sid).is_file()
            and (not need_frames or (media / "frames" / f"{sid}.jpg").is_file())]
    return kept, len(ids) - len(kept)


def train_generator(manifest: str | os.PathLike, media: str | os.PathLike, out: str | os.PathLike, *,
                    fold: int | None = None, separator: str | os.PathLike | None = None,
                    base: str | os.PathLike | None = None, preset: str = "paper", no_separation: bool = False,
                    decoupled: bool = True, prompt: str = "", clap: str | None = None,
                    tokenizer: str | os.PathLike | None = None, steps: int | None = None,
                    resume: bool = True, progress: bool = True, cache_latents: bool = True) -> dict[str, Any]:
    """Train the audio adapter on the training samples of ``fold``; the run folder holds ``adapter/``.

    Under ``accelerate launch`` the main process computes the missing clip embeddings on its device while the
    others wait, then every process reads them from the cache; the separator and CLAP are freed before training.
    """
    from macs_model.generator import GeneratorConfig, TrainItem, load_components, make_accelerator, train_adapter

    if no_separation and separator is not None:
        raise MacsError("--no-separation conditions on the mixture alone: drop --separator")
    media, out = Path(media), Path(out)
    train_ids, _ = fold_ids(manifest, fold)
    ids, skipped = _present(train_ids, media, need_frames=True)
    if not ids:
        raise MacsError(f"{media}: none of the {len(train_ids)} training samples has both audio and a frame; "
                        f"run 'macs-bench datasets fetch {manifest} --root {media}'")
    accelerator = make_accelerator(GeneratorConfig.preset(preset))
    conditioner = Conditioner(separator, clap=clap, tokenizer=tokenizer, no_separation=no_separation,
                              device=accelerator.device)
    overrides: dict[str, Any] = {"decoupled": decoupled, "prompt": prompt, "num_tokens": conditioner.num_tokens,
                                 "clap_dim": conditioner.embed_dim}
    if steps is not None:
        overrides.update(steps=steps, epochs=None)
    config = GeneratorConfig.preset(preset, **overrides)
    main = accelerator.is_main_process
    embeddings = conditioner.clips(ids, media, out / EMBEDDINGS, progress=progress) if main else None
    accelerator.wait_for_everyone()
    if not main:
        embeddings = conditioner.clips(ids, media, out / EMBEDDINGS, progress=False)  # all cached by now
    run_info = {"manifest": str(manifest), "fold": fold, "media": str(media), "train_samples": len(ids),
                "skipped_without_media": skipped, "conditioning": conditioner.provenance,
                "embeddings_key": conditioner.key}
    conditioner.release()
    items = [TrainItem(sid, media / "frames" / f"{sid}.jpg", embeddings[sid]) for sid in ids]
    components = load_components(config, base)
    summary = train_adapter(components, items, config, out, resume=resume, progress=progress, run_info=run_info,
                            accelerator=accelerator, latent_dir=out / LATENTS if cache_latents else None)
    return {**summary, "train_samples": len(ids), "skipped_without_media": skipped}


def _run_info(adapter_run: Path) -> dict[str, Any]:
    for candidate in (adapter_run / "config.json", adapter_run.parent / "config.json"):
        try:
            info = json.loads(candidate.read_text(encoding="utf-8"))["run_info"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if isinstance(info, dict) and "conditioning" in info:
            return info
    raise MacsError(f"{adapter_run}: not a 'macs-model train generator' run folder (no config.json with run_info)")


def generate(manifest: str | os.PathLike, media: str | os.PathLike, adapter: str | os.PathLike,
             out: str | os.PathLike, *, fold: int | None = None, base: str | os.PathLike | None = None,
             top_k: int | None = None, batch_size: int = 4, seed: int = 0, clap: str | None = None,
             tokenizer: str | os.PathLike | None = None, overwrite: bool = False,
             interpolate: tuple[str | os.PathLike, str | os.PathLike] | None = None,
             alphas: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0), device: str | None = None,
             allow_partial: bool = False, progress: bool = True) -> dict[str, Any]:
    """Write ``<sample_id>.png`` for the test samples of ``fold`` (ready for ``macs-bench score``), or, with
    ``interpolate=(A, B)``, one image per alpha of (1 - alpha) E_A + alpha E_B (paper Fig. 5).

    Each call records what made its images in ``generation-fold<K>.json`` (``generation-test.json`` without a
    fold; ``interpolation.json``). Existing images are kept only when that record names the same adapter (by
    hash), seed, top-k and settings; otherwise the call is refused unless ``overwrite``.
    """
    from macs_model.generator import generate_images, load_trained
    from macs_model.training import run_versions

    adapter, out, media = Path(adapter), Path(out), Path(media)
    info = _run_info(adapter)
    conditioning = info["conditioning"]
    separator = None if conditioning["no_separation"] else conditioning["separator"]["source"]
    conditioner = Conditioner(separator, clap=clap, tokenizer=tokenizer,
                              no_separation=conditioning["no_separation"], device=device,
                              recorded_clap=conditioning.get("clap"))
    if info.get("embeddings_key") is not None and conditioner.key != info["embeddings_key"]:
        raise MacsError(f"{adapter}: the separator or CLAP available now differ from the ones the adapter was "
                        "trained with (see its config.json); pass the same --clap")
    components, config, tokens = load_trained(adapter, base=base, allow_partial=allow_partial)
    if top_k is not None and not 1 <= top_k <= config.num_tokens:
        raise MacsError(f"--top-k must be between 1 and {config.num_tokens}, got {top_k}")
    if interpolate is not None:
        first, second = (conditioner.embed_file(Path(p)) for p in interpolate)
        names = [f"interp-{Path(interpolate[0]).stem}-{Path(interpolate[1]).stem}-{a:.2f}" for a in alphas]
        items = [(name, (1 - a) * first + a * second) for name, a in zip(names, alphas)]
        identity = _generation_identity(components, config, top_k, seed, {"interpolate": [str(p) for p in interpolate],
                                                                "alphas": list(alphas)})
        _check_record(out / "interpolation.json", identity, overwrite)
        written = generate_images(components, config, tokens, items, out, top_k=top_k, batch_size=batch_size,
                                  seed=seed, device=device, overwrite=overwrite, progress=progress)
        record = {**identity, "written": len(written), "images": [str(out / f"{n}.png") for n in names],
                  "conditioning": conditioning, "versions": run_versions()}
        atomic_write_bytes(out / "interpolation.json", dumps_json(record).encode())
        return record
    _, test_ids = fold_ids(manifest, fold)
    ids, skipped = _present(test_ids, media, need_frames=False)
    if not ids:
        raise MacsError(f"{media}: none of the {len(test_ids)} test samples has audio")
    identity = _generation_identity(components, config, top_k, seed, {"manifest": str(manifest), "fold": fold})
    record_file = out / (f"generation-fold{fold}.json" if fold is not None else "generation-test.json")
    _check_record(record_file, identity, overwrite)
    embeddings = conditioner.clips(ids, media, adapter / EMBEDDINGS, progress=progress)
    written = generate_images(components, config, tokens, [(sid, embeddings[sid]) for sid in ids], out,
                              top_k=top_k, batch_size=batch_size, seed=seed, device=device, overwrite=overwrite,
                              progress=progress)
    record = {**identity, "adapter_run": str(adapter), "samples": len(ids), "skipped_without_audio": skipped,
              "written_now": len(written), "conditioning": conditioning, "versions": run_versions()}
    atomic_write_bytes(record_file, dumps_json(record).encode())
    return record


def _generation_identity(components, config, top_k, seed, extra: dict[str, Any]) -> dict[str, Any]:
    """What decides the images of a generate call (the adapter by hash, not by path)."""
    return {"adapter": components.source.get("adapter"), "adapter_sha256": components.source.get("adapter_sha256"),
            "base": {k: v for k, v in components.source.items() if k not in ("adapter", "adapter_sha256")},
            "generator_config": config.to_dict(), "top_k": top_k, "seed": seed, **extra}


def _check_record(path: Path, identity: dict[str, Any], overwrite: bool) -> None:
    """Refuse to mix images of another adapter or setting into ``path``'s folder (unless ``overwrite``)."""
    if overwrite or not path.is_file():
        return
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    keys = ("adapter_sha256", "generator_config", "top_k", "seed", "manifest", "fold", "interpolate", "alphas")
    differ = [k for k in keys if k in identity and json.loads(dumps_json(identity[k])) != previous.get(k)]
    if differ:
        raise MacsError(f"{path.parent}: holds images made with another {', '.join(differ)} ({path.name}); "
                        "use another --out, or --overwrite to replace them")


def import_release_generator(mlp: str | os.PathLike, unet: str | os.PathLike, separator: str | os.PathLike,
                             out: str | os.PathLike, *, base: str | os.PathLike | None = None) -> Path:
    """Turn the authors' ``<dataset>_mlp.pt`` + ``<dataset>_unet.pt`` into a run folder ``generate`` takes.

    Only the tokens and the audio k/v are kept (the rest of the 3.4 GB UNet is SD v1.4's frozen weights); the run
    records ``separator`` (the authors' ``separator_FSD50K_full.pt``, whose CLAP makes the embeddings) and the
    ``paper`` generator settings. Files are read with ``torch.load(weights_only=True, mmap=True)``.
    """
    from safetensors.torch import save

    from macs_bench.io import atomic_write_text, sha256_file
    from macs_model.adapter import ADAPTER_CONFIG, ADAPTER_FILE, release_adapter_state
    from macs_model.generator import GeneratorConfig

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
    state = release_adapter_state(states[0], states[1], f"{mlp} + {unet}")
    if not Path(separator).is_file():
        raise MacsError(f"{separator}: release separator checkpoint not found")
    num_tokens, clap_dim = (int(d) for d in state["encoder_hid_proj.image_projection_layers.0.pe"].shape)
    config = GeneratorConfig.preset("paper", num_tokens=num_tokens, clap_dim=clap_dim)
    folder = out / "adapter"
    source = {"release_mlp": str(mlp), "release_unet": str(unet), "release_mlp_sha256": sha256_file(mlp)}
    base_info = {"base": str(base)} if base is not None else {"weights": "stable-diffusion-v1-4"}
    atomic_write_bytes(folder / ADAPTER_FILE, save({k: v.contiguous() for k, v in state.items()},
                                                   metadata={"decoupled": "True"}))
    atomic_write_text(folder / ADAPTER_CONFIG, dumps_json({
        "generator_config": config.to_dict(), "base": base_info, "cross_attention_dim": 768, "decoupled": True,
        "parameters": sum(v.numel() for v in state.values()), "imported": source}))
    conditioning = {"no_separation": False, "clap": None,
                    "separator": {"source": str(separator), "sha256": sha256_file(separator)}}
    atomic_write_text(out / "config.json", dumps_json({
        "generator_config": config.to_dict(), "base": base_info,
        "run_info": {"imported": source, "conditioning": conditioning, "embeddings_key": None}}))
    return out
