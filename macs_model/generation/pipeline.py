"""Stage-2 generation: a trained adapter on diffusers' ``StableDiffusionPipeline``.

How the audio reaches the UNet is the config's conditioning class (``GeneratorConfig.audio_variant``, from
:mod:`macs_model.generation.adapter`): ``DecoupledAudio`` (the paper's: the embeddings go in as
``ip_adapter_image_embeds`` through the adapter's own k/v, zero audio for the unconditional branch) or
``AppendedAudio`` (the "w/o DC" ablation: the audio tokens appended to the text tokens through the frozen text
k/v). DPM-Solver, and a seed derived from each sample id; images already written are skipped.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch

from macs_bench.device import resolve_device
from macs_bench.errors import MacsError
from macs_bench.io import atomic_write_bytes
from macs_model.generation.audio_window import sample_seed
from macs_model.generation.adapter import ADAPTER_CONFIG, ADAPTER_FILE, load_adapter_state, read_adapter
from macs_model.generation.components import Components, build_adapter, encode_prompt, load_components
from macs_model.generation.config import GeneratorConfig
from macs_model.generation.tokens import AudioTokens, chosen_slots
from macs_model.run_folder import latest_checkpoint
from macs_model.run_loop import progress_bar


def load_trained(folder: str | os.PathLike, components: Components | None = None,
                 base: str | os.PathLike | None = None, *, allow_partial: bool = False
                 ) -> tuple[Components, GeneratorConfig, AudioTokens]:
    """Components with a saved adapter installed, from an adapter folder, a run folder's final ``adapter/`` or
    (``allow_partial``) an unfinished run's latest checkpoint; the base is loaded from the adapter's config unless
    ``components`` are given. ``components.source`` records the adapter folder and its sha256."""
    from macs_bench.io import sha256_file

    folder = Path(folder)
    if not (folder / ADAPTER_FILE).is_file():
        if (folder / "adapter" / ADAPTER_FILE).is_file():
            folder = folder / "adapter"
        else:
            candidate = latest_checkpoint(folder)
            if candidate is None:
                raise MacsError(f"{folder}: no adapter ({ADAPTER_FILE}) and no checkpoint")
            if not allow_partial:
                raise MacsError(f"{folder}: training has not finished (latest: {candidate.name}); finish it, or "
                                "allow a partial run to generate with that checkpoint")
            folder = candidate
    state, saved = read_adapter(folder)
    try:
        config = GeneratorConfig.from_dict(saved["generator_config"])
    except KeyError:
        raise MacsError(f"{folder / ADAPTER_CONFIG}: no generator_config") from None
    if base is None and config.base == "sd":
        base = (saved.get("base") or {}).get("base")  # the SD the adapter was trained on or imported for
    components = components or load_components(config, base)
    _, tokens = build_adapter(components, config)
    load_adapter_state(components.unet, state, str(folder), tokens=tokens, variant=config.audio_variant)
    components.unet.eval()
    tokens.eval()
    components.source = {**components.source, "adapter": str(folder),
                         "adapter_sha256": sha256_file(folder / ADAPTER_FILE)}
    return components, config, tokens


def pipeline(components: Components):
    """diffusers' ``StableDiffusionPipeline`` over the components, with DPM-Solver and no safety checker.

    One method differs from the stock pipeline: ``ip_adapter_image_embeds`` are taken as one row per prompt
    ([negatives; positives] under guidance). The stock method assumes one embedding shared by the whole batch
    and repeats it batch-size times, which would let every image attend to the audio of all its batch-mates.
    """
    from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline

    class PerSamplePipeline(StableDiffusionPipeline):
        def prepare_ip_adapter_image_embeds(self, ip_adapter_image, ip_adapter_image_embeds, device,
                                            num_images_per_prompt, do_classifier_free_guidance):
            if ip_adapter_image_embeds is None:
                raise MacsError("the audio pipeline needs ip_adapter_image_embeds (the sources' audio embeddings)")
            return [embeds.to(device) for embeds in ip_adapter_image_embeds]

    return PerSamplePipeline(
        vae=components.vae, text_encoder=components.text_encoder, tokenizer=components.tokenizer,
        unet=components.unet, scheduler=DPMSolverMultistepScheduler.from_config(components.scheduler.config),
        safety_checker=None, feature_extractor=None, image_encoder=None, requires_safety_checker=False)


@torch.no_grad()
def render(components: Components, config: GeneratorConfig, tokens: AudioTokens,
           items: Sequence[tuple[str, torch.Tensor]], *, top_k: int | None = None,
           slots: Sequence[int] | None = None, batch_size: int = 4, seed: int = 0, device: str | torch.device = "auto", generator=None
           ) -> Iterator[list[tuple[str, object]]]:
    """Batches of (sample_id, PIL image) for (sample_id, audio embeddings [K, clap_dim] in token order).

    ``top_k`` keeps the first K embeddings, ``slots`` the slots named (counted from 1, paper Fig. 4), each
    with its own positional row. Each image's noise comes from
    ``sample_seed(sample_id, seed)``, so an image does not depend on its batch or position; or, given
    ``generator`` (one ``torch.Generator`` for all, or one per item), from it as diffusers draws latents."""
    device = resolve_device(device)
    dtype = torch.float16 if device.type == "cuda" and config.mixed_precision == "fp16" else torch.float32
    pipe = pipeline(components).to(device) if dtype == torch.float32 else pipeline(components).to(device, dtype)
    tokens.to(device, dtype)
    pipe.set_progress_bar_config(disable=True)
    components.unet.eval()
    tokens.eval()  # no dropout in the tokens' MLP at inference
    variant = config.audio_variant
    guided = config.guidance_scale > 1
    text = encode_prompt(components, config.prompt, device).to(dtype)
    selection = chosen_slots(tokens.num_tokens, top_k, slots)
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        audio = torch.stack([emb if selection is None else emb[selection] for _, emb in chunk]).to(device, dtype)
        prompt = text.expand(len(chunk), -1, -1)
        if generator is None:
            generators = [torch.Generator(device="cpu").manual_seed(sample_seed(sid, seed)) for sid, _ in chunk]
        elif isinstance(generator, torch.Generator):
            generators = [generator] * len(chunk)
        else:
            generators = list(generator[start:start + batch_size])
        latents = torch.stack([torch.randn(pipe.unet.config.in_channels, config.height // pipe.vae_scale_factor,
                                           config.width // pipe.vae_scale_factor, generator=g, device=g.device)
                               for g in generators]).to(device, dtype)
        with tokens.at_slots(selection):
            images = pipe(num_inference_steps=config.inference_steps, guidance_scale=config.guidance_scale,
                          height=config.height, width=config.width, latents=latents, output_type="pil",
                          **variant.call_kwargs(prompt, audio, tokens, guided)).images
        yield [(sid, image) for (sid, _), image in zip(chunk, images)]


def generate_images(components: Components, config: GeneratorConfig, tokens: AudioTokens,
                    items: Sequence[tuple[str, torch.Tensor]], out_dir: str | os.PathLike, *, top_k: int | None = None,
                    slots: Sequence[int] | None = None, batch_size: int = 4, seed: int = 0, device: str | torch.device = "auto",
                    overwrite: bool = False, progress: bool = True) -> list[Path]:
    """Write ``<sample_id>.png`` for each (sample_id, audio embeddings [K, clap_dim] in token order) as
    :func:`render` draws them; returns the files written. Existing images are skipped (so an interrupted run
    resumes) unless ``overwrite``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    todo = [(sid, emb) for sid, emb in items if overwrite or not (out_dir / f"{sid}.png").is_file()]
    written = []
    with progress_bar(progress) as bar:
        task = bar.add_task("generating", total=len(todo)) if bar is not None else None
        for batch in render(components, config, tokens, todo, top_k=top_k, slots=slots, batch_size=batch_size, seed=seed,
                            device=device):
            for sid, image in batch:
                buffer = io.BytesIO()
                image.save(buffer, format="PNG")
                atomic_write_bytes(out_dir / f"{sid}.png", buffer.getvalue())
                written.append(out_dir / f"{sid}.png")
            if bar is not None:
                bar.update(task, advance=len(batch))
    return written
