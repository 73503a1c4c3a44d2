"""Stage 2 for users: train the generator on one fold of a benchmark, and generate that fold's images for scoring.

The model path reads audio -> 8 s window -> separator -> CLAP embeddings -> audio tokens -> diffusion -> image;
``conditioning`` computes and caches the embeddings of each (clip, window). Generation records the windows and
refuses samples the adapter trained on; ``import_release_generator`` turns the authors' files into a run.

Folds: with ``fold=K`` the samples of fold K are generated and the other folds train; without a fold, the
manifest's ``train`` / ``test`` split column decides (Landscape).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from macs_bench.datasets.manifest import fold_samples
from macs_bench.device import resolve_device
from macs_bench.errors import MacsError
from macs_bench.io import atomic_write_bytes, dumps_json
from macs_model.generation.conditioning import EMBEDDINGS, Conditioner, training_windows
from macs_model.results import TrainSummary
from macs_model.run_folder import generator_run_info as _run_info

LATENTS = "latents"  # the frames' VAE latents (macs_model.generation.latent_cache)


def fold_ids(manifest: str | os.PathLike, fold: int | None) -> tuple[list[str], list[str]]:
    """(train ids, test ids) of a built manifest for fold K, or by its split column without a fold
    (:func:`macs_bench.datasets.manifest.fold_samples`)."""
    try:
        samples = fold_samples(manifest, fold, None if fold is not None else "test")
    except MacsError as exc:
        if fold is not None:
            raise
        raise MacsError(f"{manifest}: no train/test split column; choose a fold") from exc
    if not samples.train:
        raise MacsError(f"{manifest}: no train/test split column; choose a fold")
    return samples.train, samples.ids


def _present(ids: Sequence[str], media: Path, need_frames: bool) -> tuple[list[str], int]:
    """The ids whose audio (and frame, with ``need_frames``) ``datasets fetch`` wrote, and how many lack it."""
    from macs_model.separation.data import audio_path

    kept = [sid for sid in ids if audio_path(media, sid).is_file()
            and (not need_frames or (media / "frames" / f"{sid}.jpg").is_file())]
    return kept, len(ids) - len(kept)


def train_generator(manifest: str | os.PathLike, media: str | os.PathLike, out: str | os.PathLike, *,
                    fold: int | None = None, separator: str | os.PathLike | None = None,
                    base: str | os.PathLike | None = None, preset: str = "paper", no_separation: bool = False,
                    decoupled: bool = True, prompt: str = "", clap: str | None = None,
                    tokenizer: str | os.PathLike | None = None, steps: int | None = None, mixture_slots: int = 1,
                    token_order: str | None = None, resume: bool = True, progress: bool = True,
                    cache_latents: bool = True, device: str = "auto") -> TrainSummary:
    """Train the audio adapter on the training samples of ``fold``; the run folder holds ``adapter/``.

    ``mixture_slots`` M (with ``no_separation``): the mixture's embedding repeated into M slots, the
    separator's capacity without its information. Under ``accelerate launch`` the main process computes the missing clip embeddings on its device while the
    others wait, then every process reads them from the cache; the separator and CLAP are freed before training.
    """
    from macs_model.generation.components import load_components
    from macs_model.generation.config import GeneratorConfig
    from macs_model.generation.training import TrainItem, train_adapter
    from macs_model.run_loop import make_accelerator

    if no_separation and separator is not None:
        raise MacsError("no-separation conditions on the mixture alone: give no separator")
    media, out = Path(media), Path(out)
    train_ids, _ = fold_ids(manifest, fold)
    ids, skipped = _present(train_ids, media, need_frames=True)
    if not ids:
        raise MacsError(f"{media}: none of the {len(train_ids)} training samples has both audio and a frame; "
                        f"run 'macs-bench datasets fetch --manifest {manifest} --media {media}'")
    preset_config = GeneratorConfig.preset(preset, **({} if token_order is None else {"token_order": token_order}))
    accelerator = make_accelerator(preset_config.mixed_precision, device)
    conditioner = Conditioner(separator, clap=clap, tokenizer=tokenizer, no_separation=no_separation,
                              device=accelerator.device, window_seconds=preset_config.audio_seconds,
                              token_order=preset_config.token_order, mixture_slots=mixture_slots)
    overrides: dict[str, Any] = {"decoupled": decoupled, "prompt": prompt, "num_tokens": conditioner.num_tokens,
                                 "clap_dim": conditioner.embed_dim, "token_order": preset_config.token_order}
    if steps is not None:
        overrides.update(steps=steps, epochs=None)
    config = GeneratorConfig.preset(preset, **overrides)
    starts = training_windows(config, len(ids), conditioner.window, accelerator.num_processes)
    main = accelerator.is_main_process
    embeddings = conditioner.clips(ids, media, out / EMBEDDINGS, starts=starts, progress=progress) if main else None
    accelerator.wait_for_everyone()
    if not main:  # all cached by now
        embeddings = conditioner.clips(ids, media, out / EMBEDDINGS, starts=starts, progress=False)
    run_info = {"manifest": str(manifest), "fold": fold, "media": str(media), "train_samples": len(ids),
                "skipped_without_media": skipped, "conditioning": conditioner.provenance,
                "embeddings_key": conditioner.key,
                "audio_window": {"seconds": config.audio_seconds, "mode": "random", "seed": config.seed,
                                 "windows_per_clip": None if starts is None else len(starts("", 0))},
                "token_order": config.token_order}
    conditioner.release()
    items = [TrainItem(sid, media / "frames" / f"{sid}.jpg", embeddings[sid]) for sid in ids]
    components = load_components(config, base)
    summary = train_adapter(components, items, config, out, resume=resume, progress=progress, run_info=run_info,
                            accelerator=accelerator, latent_dir=out / LATENTS if cache_latents else None)
    return TrainSummary(out, summary["step"], summary["total_steps"], summary["last_metrics"], len(ids), skipped,
                        adapter=summary["adapter"], record={**summary, "train_samples": len(ids),
                                                             "skipped_without_media": skipped})


def generate(manifest: str | os.PathLike | None, media: str | os.PathLike | None, adapter: str | os.PathLike,
             out: str | os.PathLike, *, fold: int | None = None, base: str | os.PathLike | None = None,
             top_k: int | None = None, slots: Sequence[int] | None = None, batch_size: int = 4, seed: int = 0,
             clap: str | None = None, tokenizer: str | os.PathLike | None = None, overwrite: bool = False,
             interpolate: tuple[str | os.PathLike, str | os.PathLike] | None = None,
             alphas: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0), device: str = "auto",
             allow_partial: bool = False, token_order: str | None = None, progress: bool = True,
             pipeline: Any = None) -> dict[str, Any]:
    """Write ``<sample_id>.png`` for the test samples of ``fold`` (ready for ``macs-bench score``), or, with
    ``interpolate=(A, B)``, one image per alpha of (1 - alpha) E_A + alpha E_B (paper Fig. 5).

    ``manifest``, ``media`` and ``fold`` default to the adapter run's (its held-out fold, or its test split); a
    fold or split whose samples the adapter trained on is refused. Each clip is heard in its centred window.
    Each call records what made its images in ``generation-fold<K>.json`` (``generation-test.json`` without a
    fold; ``interpolation.json``). Existing images are kept only when that record names the same adapter (by
    hash), seed, top-k and settings; otherwise the call is refused unless ``overwrite``. ``pipeline``: an
    ``AudioToImagePipeline`` already loaded from ``adapter`` (``reproduce`` draws every fold with one load).
    """
    from macs_model.generation.audio_to_image import AudioToImagePipeline
    from macs_model.run_folder import run_versions

    device = resolve_device(device)
    adapter, out = Path(adapter), Path(out)
    info, _ = _run_info(adapter)
    if interpolate is None:
        manifest, media, fold = _data_of_run(adapter, info, manifest, media, fold)
    media = Path(media) if media is not None else None
    if pipeline is not None and Path(pipeline.run).resolve() != adapter.resolve():
        raise MacsError(f"generate: the pipeline was loaded from {pipeline.run}, not from {adapter}")
    pipe = pipeline or AudioToImagePipeline.from_pretrained(adapter, base=base, clap=clap, tokenizer=tokenizer,
                                                            device=device, allow_partial=allow_partial,
                                                            token_order=token_order)
    pipe.check_top_k(top_k, slots)
    components, config, conditioner = pipe.components, pipe.config, pipe.conditioner
    gen_config, conditioning = pipe.generation_config, info["conditioning"]
    if interpolate is not None:
        first, second = (conditioner.embed_file(Path(p)) for p in interpolate)
        names = [f"interp-{Path(interpolate[0]).stem}-{Path(interpolate[1]).stem}-{a:.2f}" for a in alphas]
        items = [(name, (1 - a) * first + a * second) for name, a in zip(names, alphas)]
        identity = _generation_identity(components, config, top_k, seed, slots, {"interpolate": [str(p) for p in interpolate],
                                                                "alphas": list(alphas)})
        _check_record(out / "interpolation.json", identity, overwrite)
        written = pipe.write(items, out, top_k=top_k, slots=slots, batch_size=batch_size, seed=seed, overwrite=overwrite,
                             progress=progress)
        record = {**identity, "written": len(written), "images": [str(out / f"{n}.png") for n in names],
                  "conditioning": conditioning, "versions": run_versions()}
        atomic_write_bytes(out / "interpolation.json", dumps_json(record).encode())
        return record
    _, test_ids = fold_ids(manifest, fold)
    check_no_leak(adapter, info, manifest, fold, test_ids)
    ids, skipped = _present(test_ids, media, need_frames=False)
    if not ids:
        raise MacsError(f"{media}: none of the {len(test_ids)} test samples has audio")
    identity = _generation_identity(components, config, top_k, seed, slots, {"manifest": str(manifest), "fold": fold,
                                                                      "token_order": gen_config.token_order})
    record_file = out / (f"generation-fold{fold}.json" if fold is not None else "generation-test.json")
    _check_record(record_file, identity, overwrite)
    embeddings = conditioner.clips(ids, media, adapter / EMBEDDINGS, progress=progress)
    written = pipe.write([(sid, embeddings[sid]) for sid in ids], out, top_k=top_k, slots=slots, batch_size=batch_size,
                         seed=seed, overwrite=overwrite, progress=progress)
    record = {**identity, "adapter_run": str(adapter), "samples": len(ids), "skipped_without_audio": skipped,
              "written_now": len(written), "conditioning": conditioning, "versions": run_versions(),
              "audio_window": {"seconds": gen_config.audio_seconds, "mode": "centre",
                               "starts": {sid: conditioner.windows.get(sid, [None])[0] for sid in ids}},
              "token_order": gen_config.token_order,
              "adapter_training": {k: info.get(k) for k in ("manifest", "fold", "imported")}}
    atomic_write_bytes(record_file, dumps_json(record).encode())
    return record


def generate_audio(files: Sequence[str | os.PathLike], adapter: str | os.PathLike, out: str | os.PathLike, *,
                   top_k: int | None = None, slots: Sequence[int] | None = None, batch_size: int = 4,
                   seed: int = 0, clap: str | None = None, tokenizer: str | os.PathLike | None = None, base: str | os.PathLike | None = None,
                   device: str = "auto", overwrite: bool = False, allow_partial: bool = False,
                   token_order: str | None = None, progress: bool = True) -> dict[str, Any]:
    """One ``<file stem>.png`` per audio file, no manifest needed; ``generation-audio.json`` records the inputs
    (by sha256) and what made the images. A file's image is the one fold-wise :func:`generate` draws for the
    sample id equal to its stem (same adapter, seed and settings)."""
    from macs_bench.io import sha256_file
    from macs_model.generation.audio_to_image import AudioToImagePipeline
    from macs_model.audio_inputs import audio_inputs
    from macs_model.run_folder import run_versions

    device = resolve_device(device)
    files = audio_inputs(files, "generate", "images")
    out = Path(out).expanduser()
    pipe = AudioToImagePipeline.from_pretrained(adapter, base=base, clap=clap, tokenizer=tokenizer, device=device,
                                                allow_partial=allow_partial, token_order=token_order)
    pipe.check_top_k(top_k, slots)
    identity = _generation_identity(pipe.components, pipe.config, top_k, seed, slots, {
        "audio": {str(f): sha256_file(f) for f in files}, "token_order": pipe.generation_config.token_order})
    record_file = out / "generation-audio.json"
    _check_record(record_file, identity, overwrite)
    written = pipe.write(pipe.embed(files), out, top_k=top_k, slots=slots, batch_size=batch_size, seed=seed, overwrite=overwrite,
                         progress=progress)
    record = {**identity, "adapter_run": str(adapter), "written_now": len(written),
              "images": [str(out / f"{f.stem}.png") for f in files], "conditioning": pipe.run_info["conditioning"],
              "audio_window": {"seconds": pipe.generation_config.audio_seconds, "mode": "centre"},
              "versions": run_versions()}
    atomic_write_bytes(record_file, dumps_json(record).encode())
    return record


def _data_of_run(adapter: Path, info: dict[str, Any], manifest, media, fold):
    """(manifest, media, fold) for generate: what was given, else what the adapter run recorded."""
    manifest = manifest if manifest is not None else info.get("manifest")
    media = media if media is not None else info.get("media")
    if manifest is None or media is None:
        raise MacsError(f"{adapter}: the run records no manifest / media (an imported release run); "
                        "give the manifest and the media folder")
    if fold is None and info.get("manifest") is not None:
        fold = info.get("fold")
    return manifest, media, fold


def check_no_leak(adapter: Path, info: dict[str, Any], manifest, fold: int | None, test_ids: Sequence[str]) -> None:
    """Refuse to generate samples the adapter trained on (by sample id, so another build of the same benchmark
    is caught too). Imported release runs record no training data and pass."""
    if info.get("manifest") is None:
        return
    trained_fold = info.get("fold")
    where = f"fold {fold}" if fold is not None else "the test split"
    trained = (f"every fold but {trained_fold}" if trained_fold is not None else "the train split")
    try:
        train_ids = set(fold_ids(info["manifest"], trained_fold)[0])
    except MacsError:  # the training manifest is gone: judge by the fold alone
        if fold != trained_fold:
            raise MacsError(f"{adapter}: trained on {trained} of {info['manifest']}; refusing to generate {where} "
                            f"of {manifest}; use fold {trained_fold} or an adapter that held it out") from None
        return
    overlap = sorted(train_ids.intersection(test_ids))
    if overlap:
        raise MacsError(f"{adapter}: trained on {trained} of {info['manifest']}, which holds {len(overlap)} of the "
                        f"{len(test_ids)} samples of {where} of {manifest} (e.g. {overlap[0]}); generate its "
                        "held-out samples or use an adapter that held these out")


def _generation_identity(components, config, top_k, seed, slots, extra: dict[str, Any]) -> dict[str, Any]:
    """What decides the images of a generate call (the adapter by hash, not by path)."""
    return {"adapter": components.source.get("adapter"), "adapter_sha256": components.source.get("adapter_sha256"),
            "base": {k: v for k, v in components.source.items() if k not in ("adapter", "adapter_sha256")},
            "generator_config": config.to_dict(), "top_k": top_k, "seed": seed,
            **({"slots": list(slots)} if slots is not None else {}), **extra}


def _check_record(path: Path, identity: dict[str, Any], overwrite: bool) -> None:
    """Refuse to mix images of another adapter or setting into ``path``'s folder (unless ``overwrite``)."""
    if overwrite or not path.is_file():
        return
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    keys = ("adapter_sha256", "generator_config", "top_k", "slots", "seed", "manifest", "fold", "interpolate", "alphas",
            "token_order", "audio")
    differ = [k for k in keys if k in identity and json.loads(dumps_json(identity[k])) != previous.get(k)]
    if differ:
        raise MacsError(f"{path.parent}: holds images made with another {', '.join(differ)} ({path.name}); "
                        "use another output folder, or overwrite to replace them")
