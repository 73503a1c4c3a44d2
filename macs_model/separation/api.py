"""Stage 1 for users: train a separator on a manifest + MEDIA, and separate audio files with a trained one.

``train_separator`` puts the pieces together (data, separator preset, frozen CLAP, alignment losses, training
loop) and records what it used; ``separate`` writes each input's M stems ordered by significance, i.e. by their
CLAP similarity to the input (slot order is what the ranking loss trains, similarity is what it measures), with
the similarities in ``separation.json``. The ``macs-model`` CLI is a thin layer over these functions.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from macs_bench import __version__
from macs_bench.device import resolve_device
from macs_bench.errors import MacsError
from macs_bench.io import atomic_write_bytes, atomic_write_text, dumps_json, sha256_file
from macs_model.results import Separation, TrainSummary
from macs_model.separation.config import SeparatorConfig
from macs_model.separation.separator import build_separator

KINDS = {"stft-unet": "", "waveform": "-waveform"}  # separator kind -> suffix of its preset name
TINY_CLAP = "tiny"  # --clap value for the random stand-in encoder (tests and smoke runs only)
WORLD_CLAP = "world"  # --clap value for the synthetic world's trained CLAP-like pair (the demo's)
SEPARATION_JSON = "separation.json"


def separator_preset(preset: str, kind: str = "stft-unet") -> SeparatorConfig:
    """The separator config of a stage-1 preset ("paper" | "tiny") and kind ("stft-unet" | "waveform")."""
    if kind not in KINDS:
        raise MacsError(f"unknown separator kind {kind!r} (known: {', '.join(KINDS)})")
    return SeparatorConfig.preset(preset + KINDS[kind])


def open_encoder(clap: str | os.PathLike | None, tokenizer: str | os.PathLike | None, sample_rate: int):
    """The CLAP for stage 1: the weights registry's (None), a local laion-clap checkpoint, ``"tiny"`` (random) or
    a name plug-ins registered (``macs_model.registry``: ``"world"``, the synthetic world's)."""
    from macs_model.separation.clap import TinyClap, load_clap

    if clap is not None and str(clap) == TINY_CLAP:
        return TinyClap(input_rate=sample_rate)
    if clap is not None:
        from macs_model.registry import clap_factory

        factory = clap_factory(str(clap))
        if factory is not None:  # a registered name (the world's "world")
            return factory(sample_rate)
    return load_clap(clap, tokenizer, input_rate=sample_rate)


def train_separator(data: str, media: str | os.PathLike, out: str | os.PathLike, *, preset: str = "paper",
                    kind: str = "stft-unet", contrastive: bool = True, ranking: bool = True,
                    clap: str | os.PathLike | None = None, tokenizer: str | os.PathLike | None = None,
                    steps: int | None = None, epochs: int | None = None, seed: int | None = None,
                    checkpoint_every: int | None = None, ramp: bool | None = None, resume: bool = True,
                    device: str = "auto", progress: bool = True) -> TrainSummary:
    """Train a stage-1 separator; returns its :class:`TrainSummary` (steps, clips used, latest checkpoint).

    ``data``: "fsd50k" or a built manifest folder; ``media``: the folder ``macs-bench datasets fetch`` filled.
    ``contrastive`` / ``ranking`` False are the paper's ablations (both False: MixIT only, no CLAP loaded).
    ``steps`` / ``epochs`` / ``seed`` / ``checkpoint_every`` override the preset's length, seed and cadence;
    ``ramp`` its reconstruction-to-alignment loss ramp over the epochs (the paper's; the ``tiny`` preset's is off).
    """
    from macs_model.separation.alignment import ClapAlignment
    from macs_model.separation.data import open_clips
    from macs_model.separation.train_config import TrainConfig
    from macs_model.separation.training import train

    sep_config = separator_preset(preset, kind)
    overrides: dict[str, Any] = {}
    if steps is not None:
        overrides.update(steps=steps, epochs=None)
    elif epochs is not None:
        overrides.update(epochs=epochs, steps=None)
    if seed is not None:
        overrides["seed"] = seed
    if checkpoint_every is not None:
        overrides["checkpoint_every"] = checkpoint_every
    if ramp is not None:
        overrides["ramp"] = ramp
    if not contrastive:  # an ablated term weighs 0 in the config, the log and the resume check
        overrides["mu"] = 0.0
    if not ranking:
        overrides["gamma"] = 0.0
    train_config = TrainConfig.preset(preset, **overrides)
    out = Path(out)
    dataset = open_clips(data, media, sep_config.sample_rate, sep_config.clip_samples, work_dir=out / "data")
    alignment = None
    if contrastive or ranking:
        encoder = open_encoder(clap, tokenizer, sep_config.sample_rate)
        alignment = ClapAlignment(encoder, sep_config.num_sources, contrastive=contrastive, ranking=ranking,
                                  prompts=train_config.prompts)
    torch.manual_seed(train_config.seed)  # the separator's initial weights
    model = build_separator(sep_config)
    run_info = {
        "preset": preset,
        "data": {"source": str(data), "media": str(media), "clips": len(dataset), "missing_audio": dataset.missing},
        "alignment": {
            "contrastive": contrastive, "ranking": ranking,
            "clap": clap_identity(alignment.encoder.provenance()) if alignment is not None else None,
        },
        "clap": alignment.encoder.provenance() if alignment is not None else None,
    }
    summary = train(model, dataset, train_config, out, align_loss=alignment, resume=resume, device=device,
                    progress=progress, extra_parameters=alignment.trainable() if alignment is not None else (),
                    after_step=alignment.after_step if alignment is not None else None, run_info=run_info)
    record = {**summary, "clips": len(dataset), "missing_audio": dataset.missing}
    return TrainSummary(out, summary["step"], summary["total_steps"], summary["last_metrics"], len(dataset),
                        dataset.missing, checkpoint=summary["checkpoint"], record=record)


def clap_identity(provenance: dict[str, Any]) -> dict[str, Any]:
    """The parts of an encoder's provenance that change training (weights, not where they lie)."""
    return {k: v for k, v in provenance.items() if k not in ("checkpoint", "tokenizer")}


def separator_encoder(loaded: "LoadedSeparator", separator: str | os.PathLike | None,
                      clap: str | os.PathLike | None, tokenizer: str | os.PathLike | None, *,
                      recorded: dict[str, Any] | None = None, sample_rate: int = 16000):
    """The CLAP that goes with a separator: ``clap`` if given; else a release file's own CLAP; else the tiny
    stand-in when the separator's run (or ``recorded``, a run's CLAP provenance) used it; else the registry's."""
    if clap is None and loaded is not None and loaded.release_clap is not None:
        from macs_model.separation.clap import ClapEncoder, build_clap_model, load_clap_weights, load_tokenizer

        tok, tok_source = load_tokenizer(tokenizer)
        model = build_clap_model()
        load_clap_weights(model, loaded.release_clap, loaded.source)
        return ClapEncoder(model, tok, input_rate=loaded.config.sample_rate,
                           source={"checkpoint": loaded.source, "sha256": loaded.sha256, "tokenizer": tok_source})
    if clap is None:
        recorded = recorded or (_recorded_clap(Path(separator)) if separator is not None else None)
        if recorded and "not CLAP" in str(recorded.get("encoder", "")):
            clap = WORLD_CLAP if str(recorded.get("encoder", "")).startswith("world") else TINY_CLAP
    rate = loaded.config.sample_rate if loaded is not None else sample_rate
    return open_encoder(clap, tokenizer, rate)


def _recorded_clap(run: Path) -> dict[str, Any] | None:
    """The CLAP provenance a stage-1 run folder (or one of its checkpoints) recorded."""
    from macs_model.run_folder import run_records

    for record in run_records(run):
        info = record.get("run_info", {})
        if isinstance(info, dict):
            return info.get("clap")
    return None


@dataclass
class LoadedSeparator:
    """A separator ready for inference and where it came from."""

    model: torch.nn.Module
    config: SeparatorConfig
    source: str
    sha256: str
    release_clap: dict[str, torch.Tensor] | None = None


def load_separator(checkpoint: str | os.PathLike, *, sha256: str | None = None) -> LoadedSeparator:
    """A trained separator from a run folder (its ``latest`` checkpoint), a ``checkpoint-<step>`` folder, or the
    authors' ``separator_FSD50K_full.pt`` (whose CLAP weights come along). ``sha256``: the release file's digest
    when the caller hashed it for this load already (the release import), so it is not hashed again."""
    from macs_model.run_folder import CONFIG, MODEL_FILE, STATE_FILE, latest_checkpoint, load_model_weights

    path = Path(checkpoint)
    if path.is_file():
        from macs_model.separation.release import load_release_separator

        release = load_release_separator(path)
        release.separator.eval()
        return LoadedSeparator(release.separator, release.separator.config, str(path), sha256 or sha256_file(path),
                               release.clap_state)
    if not path.is_dir():
        raise MacsError(f"{path}: no such run folder, checkpoint folder or checkpoint file")
    folder = path if (path / MODEL_FILE).is_file() else latest_checkpoint(path)
    if folder is None:
        raise MacsError(f"{path}: no checkpoint yet (no 'latest' pointer and no {MODEL_FILE})")
    config_file = folder / STATE_FILE if (folder / STATE_FILE).is_file() else folder.parent / CONFIG
    try:
        config = SeparatorConfig.from_dict(json.loads(config_file.read_text(encoding="utf-8"))["separator_config"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MacsError(f"{config_file}: cannot read the separator config ({exc})") from exc
    model = build_separator(config)
    load_model_weights(model, folder)
    model.eval()
    return LoadedSeparator(model, config, str(folder), sha256_file(folder / MODEL_FILE))


def separate(files: Sequence[str | os.PathLike], checkpoint: str | os.PathLike, out: str | os.PathLike, *,
             clap: str | os.PathLike | None = None, tokenizer: str | os.PathLike | None = None,
             device: str = "auto", overwrite: bool = False, progress: bool = True) -> list[Separation]:
    """Separate each audio file into M stems under ``out/<file stem>/``; returns each file's record.

    Per input: ``source-1.wav`` ... ``source-M.wav`` (1 = highest CLAP similarity to the input) at the
    separator's rate, and ``separation.json`` (input sha256, each stem's slot and similarity, the checkpoint's
    and the CLAP's provenance). An input whose record already names the same input and checkpoint hashes is
    skipped (same CLAP too, stems all present), so an interrupted call resumes. The CLAP is
    :func:`separator_encoder`'s choice.
    """
    from macs_model.audio_inputs import audio_inputs
    from macs_model.run_loop import progress_bar

    device = resolve_device(device)
    files = audio_inputs(files, "separate", "outputs")
    loaded = load_separator(checkpoint)
    encoder = separator_encoder(loaded, checkpoint, clap, tokenizer)
    model, encoder = loaded.model.to(device), encoder.to(device)
    out = Path(out)
    records = []

    with progress_bar(progress) as bar:
        task = bar.add_task("separating", total=len(files)) if bar is not None else None
        for path in files:
            target = out / path.stem
            digest = sha256_file(path)
            previous = _read_record(target / SEPARATION_JSON)
            if (not overwrite and previous is not None and previous.get("input_sha256") == digest
                    and previous.get("checkpoint", {}).get("sha256") == loaded.sha256
                    and previous.get("clap") == encoder.provenance()
                    and all((target / stem["file"]).is_file() for stem in previous.get("stems", []))):
                records.append(Separation.from_record(previous, target))
            else:
                records.append(Separation.from_record(
                    _separate_one(path, digest, target, model, encoder, loaded, device), target))
            if bar is not None:
                bar.update(task, advance=1)
    return records


@torch.no_grad()
def ranked_sources(model: torch.nn.Module, encoder: Any, audio: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, list[int], torch.Tensor]:
    """Separate one clip [T]: (sources [M, T], CLAP similarity to the clip per slot [M], slots from most to least
    significant, the sources' CLAP embeddings in that order [M, D]) - what stage 2 conditions on."""
    sources = model(audio[None])[0]
    embeddings = encoder.embed_audio(sources)
    similarity = (embeddings @ encoder.embed_audio(audio[None])[0]).cpu()
    order = torch.argsort(similarity, descending=True, stable=True).tolist()
    return sources, similarity, order, embeddings[order].cpu()


def _read_record(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@torch.no_grad()
def _separate_one(path: Path, digest: str, target: Path, model: torch.nn.Module, encoder: Any,
                  loaded: LoadedSeparator, device: torch.device) -> dict[str, Any]:
    """Separate one file into ``target`` and return its record."""
    import soundfile as sf

    from macs_bench.provenance import package_versions
    from macs_model.separation.data import load_audio

    config = loaded.config
    audio = load_audio(path, config.sample_rate)
    if audio.numel() < config.n_fft:
        raise MacsError(f"{path}: too short to separate ({audio.numel()} samples at {config.sample_rate} Hz)")
    sources, similarity, order, _ = ranked_sources(model, encoder, audio.to(device))
    target.mkdir(parents=True, exist_ok=True)
    stems = []
    for rank, slot in enumerate(order, start=1):
        name = f"source-{rank}.wav"
        buffer = io.BytesIO()
        sf.write(buffer, sources[slot].cpu().numpy(), config.sample_rate, format="WAV", subtype="FLOAT")
        atomic_write_bytes(target / name, buffer.getvalue())
        stems.append({"file": name, "rank": rank, "slot": slot, "clap_similarity": round(float(similarity[slot]), 6)})
    record = {
        "input": str(path), "input_sha256": digest, "sample_rate": config.sample_rate,
        "samples": int(audio.numel()), "stems": stems,
        "checkpoint": {"source": loaded.source, "sha256": loaded.sha256},
        "separator_config": config.to_dict(), "clap": encoder.provenance(),
        "versions": {"macs": __version__, **package_versions("torch", "torchaudio", "laion_clap", "transformers")},
    }
    atomic_write_text(target / SEPARATION_JSON, dumps_json(record))
    return record
