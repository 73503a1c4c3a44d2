"""``AudioToImagePipeline``: the whole MACS model as one diffusers-style object.

``AudioToImagePipeline.from_pretrained(run)`` loads what a ``train generator`` run (or ``import-release``
folder) names: the Stable Diffusion base, the adapter, the stage-1 separator and its CLAP; given the authors'
release folder and a dataset it imports their files first. ``pipe(audio=[...]).images`` turns audio files or
waveforms into PIL images: audio -> centred window -> separator -> CLAP embeddings -> audio tokens -> diffusion. The
fold-wise ``generate`` and the interpolation are loops over the same object.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from macs_bench.device import resolve_device
from macs_bench.errors import MacsError

AudioInput = str | os.PathLike | torch.Tensor


@dataclass
class AudioToImageOutput:
    """What a pipeline call returns, as diffusers' pipelines do: ``.images``, one PIL image per input."""

    images: list[Any]


class AudioToImagePipeline:
    """A trained MACS generator ready to draw: components, adapter tokens, conditioner and settings."""

    def __init__(self, components: Any, config: Any, tokens: Any, conditioner: Any, *, run: Path,
                 run_info: dict[str, Any], device: torch.device, generation_config: Any = None,
                 release_identity: dict[str, str] | None = None):
        self.components, self.config, self.tokens, self.conditioner = components, config, tokens, conditioner
        self.run, self.run_info, self.device = run, run_info, device
        # what an import of the authors' files recorded (sha256 of their MLP and separator, the preset); else None
        self.release_identity = release_identity
        # the run's config with this pipeline's choices (token order) applied; it sets the conditioning
        self.generation_config = generation_config if generation_config is not None else config

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, *, dataset: str | None = None,
                        import_dir: str | os.PathLike | None = None, base: str | os.PathLike | None = None,
                        clap: str | None = None, tokenizer: str | os.PathLike | None = None,
                        device: str = "auto", allow_partial: bool = False, token_order: str | None = None,
                        preset: str = "paper") -> AudioToImagePipeline:
        """From a generator run folder, or (with ``dataset``) from a folder of the authors' release files, which
        are imported once into ``import_dir`` (default: ``<path>/macs-import-<dataset>``)."""
        from macs_model.run_folder import generator_run_info
        from macs_model.generation.conditioning import Conditioner
        from macs_model.generation.config import GeneratorConfig
        from macs_model.generation.pipeline import load_trained

        device = resolve_device(device)
        run = Path(path).expanduser()
        identity = None
        if dataset is not None:
            from macs_model.generation.release_import import import_release

            target = Path(import_dir).expanduser() if import_dir is not None else run / f"macs-import-{dataset}"
            run, identity = import_release(run, dataset, target, base=base, preset=preset)
        info, saved_config = generator_run_info(run)
        try:
            gen_config = GeneratorConfig.from_dict(saved_config)
        except MacsError as exc:
            raise MacsError(f"{run}: {exc} in its config.json (made by an older macs: retrain or re-import it)"
                            ) from None
        if token_order is not None:  # a deliberate departure from the order the adapter trained on, recorded
            gen_config = gen_config.replace(token_order=token_order)
        conditioning = info["conditioning"]
        separator = None if conditioning["no_separation"] else conditioning["separator"]["source"]
        conditioner = Conditioner(separator, clap=clap, tokenizer=tokenizer,
                                  no_separation=conditioning["no_separation"], device=device,
                                  recorded_clap=conditioning.get("clap"), window_seconds=gen_config.audio_seconds,
                                  token_order=gen_config.token_order,  # the import hashed the separator
                                  separator_sha256=identity["separator_sha256"] if identity else None,
                                  mixture_slots=conditioning.get("mixture_slots", 1))
        if info.get("embeddings_key") is not None and conditioner.key != info["embeddings_key"]:
            raise MacsError(f"{run}: the separator or CLAP available now differ from the ones the adapter was "
                            "trained with (see its config.json); pass the same CLAP")
        components, config, tokens = load_trained(run, base=base, allow_partial=allow_partial)
        return cls(components, config, tokens, conditioner, run=run, run_info=info, device=device,
                   generation_config=gen_config, release_identity=identity)

    def check_top_k(self, top_k: int | None, slots: Sequence[int] | None = None) -> None:
        """Refuse a slot choice this adapter cannot take: ``top_k`` (first K) or ``slots`` (numbers from 1)."""
        from macs_model.generation.tokens import chosen_slots

        chosen_slots(self.config.num_tokens, top_k, slots)

    def embed(self, audio: Sequence[AudioInput], names: Sequence[str] | None = None
              ) -> list[tuple[str, torch.Tensor]]:
        """(name, token-order embeddings [K, D]) per input: a file (named by its stem) or a waveform [T] at the
        separator's rate (named by its position unless ``names`` are given)."""
        if names is not None and len(names) != len(audio):
            raise MacsError(f"{len(names)} names for {len(audio)} audio inputs")
        items = []
        for i, clip in enumerate(audio):
            if isinstance(clip, torch.Tensor):
                if clip.dim() != 1 or not clip.is_floating_point():
                    raise MacsError(f"audio input {i}: expected a float waveform [samples], got "
                                    f"{tuple(clip.shape)} {clip.dtype}")
                name, embeddings = f"audio-{i}", self.conditioner.embed(clip.float())
            else:
                file = Path(clip).expanduser()
                if not file.is_file():
                    raise MacsError(f"{file}: audio file not found")
                name, embeddings = file.stem, self.conditioner.embed_file(file)
            items.append((names[i] if names is not None else name, embeddings))
        return items

    def draw(self, items: Sequence[tuple[str, torch.Tensor]], *, top_k: int | None = None,
             slots: Sequence[int] | None = None, seed: int = 0,
             num_inference_steps: int | None = None, guidance_scale: float | None = None, batch_size: int = 4,
             generator: torch.Generator | Sequence[torch.Generator] | None = None) -> list[Any]:
        """PIL images of (name, embeddings) items; each image's noise is seeded by (seed, name), or drawn from
        ``generator`` (one, or one per item) as diffusers does."""
        from macs_model.generation.pipeline import render

        self.check_top_k(top_k, slots)
        config = self._sampling(num_inference_steps, guidance_scale)
        if generator is not None and not isinstance(generator, torch.Generator) and len(generator) != len(items):
            raise MacsError(f"{len(generator)} generators for {len(items)} audio inputs")
        images = []
        for batch in render(self.components, config, self.tokens, list(items), top_k=top_k, slots=slots, batch_size=batch_size,
                            seed=seed, device=self.device, generator=generator):
            images += [image for _, image in batch]
        return images

    def write(self, items: Sequence[tuple[str, torch.Tensor]], out: str | os.PathLike, *, top_k: int | None = None,
              slots: Sequence[int] | None = None, seed: int = 0, batch_size: int = 4, overwrite: bool = False, progress: bool = True) -> list[Path]:
        """``<name>.png`` per item into ``out`` (existing images kept unless ``overwrite``); the files written."""
        from macs_model.generation.pipeline import generate_images

        self.check_top_k(top_k, slots)
        return generate_images(self.components, self.config, self.tokens, items, out, top_k=top_k, slots=slots,
                               batch_size=batch_size, seed=seed, device=self.device, overwrite=overwrite,
                               progress=progress)

    def __call__(self, audio: AudioInput | Sequence[AudioInput], *, names: Sequence[str] | None = None,
                 top_k: int | None = None, slots: Sequence[int] | None = None, seed: int = 0,
                 num_inference_steps: int | None = None, guidance_scale: float | None = None, batch_size: int = 4,
                 generator: torch.Generator | Sequence[torch.Generator] | None = None) -> AudioToImageOutput:
        """An :class:`AudioToImageOutput` whose ``.images`` hold one PIL image per audio input (file paths or
        waveforms [T] at ``self.conditioner.sample_rate``).

        ``top_k``: condition on the first K source slots, or ``slots`` on those named (from 1, Fig. 4); ``num_inference_steps`` / ``guidance_scale`` override
        the adapter's sampling settings; without ``generator``, ``seed`` is mixed with each input's name into its
        noise, so a file gives the image fold-wise ``generate`` gives its sample id."""
        if isinstance(audio, (str, os.PathLike)) or (isinstance(audio, torch.Tensor) and audio.dim() == 1):
            audio = [audio]
        return AudioToImageOutput(images=self.draw(
            self.embed(list(audio), names), top_k=top_k, slots=slots, seed=seed, num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale, batch_size=batch_size, generator=generator))

    def to(self, device: str | torch.device) -> AudioToImagePipeline:
        """Move the diffusion parts, the tokens and the conditioning to ``device`` (as diffusers' ``.to``)."""
        self.device = resolve_device(str(device))
        for part in (self.components.vae, self.components.text_encoder, self.components.unet, self.tokens):
            part.to(self.device)
        conditioner = self.conditioner
        conditioner.device = self.device
        if conditioner.encoder is not None:
            conditioner.encoder.to(self.device)
        if conditioner.loaded is not None:
            conditioner.loaded.model.to(self.device)
        return self

    def save_pretrained(self, folder: str | os.PathLike) -> Path:
        """Write a run folder that :meth:`from_pretrained` loads: ``adapter/`` (through ``save_adapter``) and
        ``config.json`` (the generator config, the base and what conditions it). The base SD, separator and
        CLAP are referenced, not copied."""
        from macs_bench.io import atomic_write_text, dumps_json
        from macs_model.generation.adapter import save_adapter

        folder = Path(folder).expanduser()
        if (folder / "config.json").exists():
            raise MacsError(f"{folder}: already holds a run; save into a new folder")
        source = self.components.source
        base = ({"base": "tiny", "seed": self.config.seed} if self.config.base == "tiny" else
                {k: source[k] for k in ("base", "weights", "repo", "revision") if k in source})
        save_adapter(folder / "adapter", self.components.unet, {"generator_config": self.config.to_dict(),
                                                                 "base": base}, tokens=self.tokens,
                     variant=self.config.audio_variant)
        atomic_write_text(folder / "config.json", dumps_json({
            "generator_config": self.generation_config.to_dict(), "base": base,
            "run_info": {**self.run_info, "saved_from": str(self.run)}}))
        return folder

    def _sampling(self, steps: int | None, guidance_scale: float | None) -> Any:
        """The adapter's sampling settings with this call's overrides."""
        changes = {k: v for k, v in (("inference_steps", steps), ("guidance_scale", guidance_scale)) if v is not None}
        return self.config.replace(**changes) if changes else self.config
