"""AudioToken-style baselines: audio -> a learned embedder -> pseudo-token(s) in SD's text encoder (Yariv et
al., 2023: BEATs features, one token, only the embedder trained with the diffusion loss).

Here the audio features are the CLAP embeddings stage 2 already computes (:class:`Conditioner`): the mixture's
(one token: AudioToken) or each separated source's (one token each: AudioToken w/ MSS). Each token replaces a
placeholder ``*`` of the prompt at the text encoder's input embeddings; SD stays frozen. The BEATs-encoder
original (guyyariv/AudioToken) is not reimplemented here; the world analogues run on the world's CLAP pair and
SD base.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from macs_bench.errors import MacsError
from macs_bench.io import atomic_write_bytes, atomic_write_text, dumps_json
from macs_bench.models.protocol import Item, RowInfo
from macs_model.baselines.drawing import PromptDrawer

PLACEHOLDER = "*"
EMBEDDER_FILE = "embedder.safetensors"


class Embedder(nn.Module):
    """[N, K, D_audio] -> [N, K, D_text]: a shared two-layer MLP plus a learned offset per token slot."""

    def __init__(self, audio_dim: int, text_dim: int, num_tokens: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(audio_dim, 2 * text_dim), nn.GELU(), nn.Linear(2 * text_dim, text_dim))
        self.slot = nn.Parameter(torch.zeros(num_tokens, text_dim))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.mlp(audio) + self.slot


class AudioToken:
    """The token baseline on a frozen SD; ``fit`` trains the embedder on the other folds' clips."""

    def __init__(self, *, separator: str | os.PathLike | None = None, clap: str | None = None,
                 preset: str = "paper", base: str | os.PathLike | None = None, work: str | os.PathLike = "runs/token",
                 steps: int = 300, batch_size: int = 16, lr: float = 1e-3, template: str = "a photo of {tokens}",
                 device: str = "auto", train_seed: int = 0):
        from macs_model.generation.conditioning import Conditioner

        self.drawer = PromptDrawer(preset, base, device)
        self.conditioner = Conditioner(separator, clap=clap, no_separation=separator is None,
                                       device=self.drawer.device)
        self.mss = separator is not None
        self.template, self.work = template, Path(work).expanduser()
        self.steps, self.batch_size, self.lr, self.train_seed = int(steps), int(batch_size), float(lr), train_seed
        text_dim = self.drawer.components.text_encoder.get_input_embeddings().embedding_dim
        torch.manual_seed(train_seed)
        self.embedder = Embedder(self.conditioner.embed_dim, text_dim, self.conditioner.num_tokens)
        self.placeholder = self.drawer.components.tokenizer.convert_tokens_to_ids(PLACEHOLDER + "</w>")
        self.trained: set[str] | None = None  # None until fit or a saved embedder is loaded

    @property
    def name(self) -> str:
        return "AudioToken w/ MSS" + self._suffix() if self.mss else "AudioToken" + self._suffix()

    def _suffix(self) -> str:
        return " (world)" if "world" in str(self.conditioner.provenance["clap"].get("encoder", "")) else ""

    def prompt(self) -> str:
        return self.template.format(tokens=" ".join([PLACEHOLDER] * self.conditioner.num_tokens))

    def states(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Text states [N, L, D] of the prompt with the placeholders replaced by the embedded tokens."""
        tokens = self.embedder(embeddings.to(self.drawer.device))

        def inject(ids: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
            mask = ids == self.placeholder
            if int(mask.sum()) != tokens.shape[0] * tokens.shape[1]:
                raise MacsError("token baseline: the prompt's placeholders do not match the number of tokens")
            output = output.clone()
            output[mask] = tokens.reshape(-1, tokens.shape[-1]).to(output.dtype)
            return output

        prompts = [self.prompt()] * embeddings.shape[0]
        with torch.enable_grad() if self.embedder.training else torch.no_grad():
            return self._encode(prompts, inject)

    def _encode(self, prompts, inject):
        tok, encoder = self.drawer.components.tokenizer, self.drawer.components.text_encoder
        ids = tok(prompts, padding="max_length", max_length=tok.model_max_length, truncation=True,
                  return_tensors="pt").input_ids.to(self.drawer.device)
        handle = encoder.get_input_embeddings().register_forward_hook(lambda m, a, out: inject(a[0], out))
        try:
            return encoder(ids)[0]
        finally:
            handle.remove()

    def _embed(self, waveforms: Sequence[Any], rate: int) -> torch.Tensor:
        rows = []
        for wave in waveforms:
            wave = torch.as_tensor(wave, dtype=torch.float32)
            if rate != self.conditioner.sample_rate:
                import torchaudio.functional as AF

                wave = AF.resample(wave, rate, self.conditioner.sample_rate)
            rows.append(self.conditioner.embed(wave))
        return torch.stack(rows)

    def fit(self, manifest: Path, media: Path, fold: int | None) -> None:
        """Train the embedder with SD's noise-prediction loss on the clips outside ``fold`` (saved in ``work``;
        a saved embedder of the same data and settings is loaded instead)."""
        from safetensors.torch import load_file, save

        from macs_bench.features.inputs import load_audio
        from macs_bench.media.layout import MediaLayout
        from macs_model.generation.api import fold_ids

        layout = MediaLayout(media)
        train = [sid for sid in fold_ids(manifest, fold)[0]
                 if layout.audio(sid).is_file() and layout.frame(sid).is_file()]
        if not train:
            raise MacsError(f"{media}: no training clip of {manifest} (fold {fold}) has audio and a frame")
        identity = {"train_ids": sorted(train), "steps": self.steps, "batch_size": self.batch_size, "lr": self.lr,
                    "seed": self.train_seed, "conditioning": self.conditioner.provenance,
                    "base": self.drawer.components.source, "prompt": self.prompt()}
        record = self.work / "embedder.json"
        if record.is_file() and (self.work / EMBEDDER_FILE).is_file() and \
                json.loads(record.read_text(encoding="utf-8")) == json.loads(dumps_json(identity)):
            self.embedder.load_state_dict(load_file(str(self.work / EMBEDDER_FILE)))
            self.trained = set(train)
            return
        audio = self._embed([load_audio(layout.audio(sid)) for sid in train], 16000)
        latents = self._latents([layout.frame(sid) for sid in train])
        self._train(audio, latents)
        atomic_write_bytes(self.work / EMBEDDER_FILE, save({k: v.detach().cpu().contiguous()
                                                            for k, v in self.embedder.state_dict().items()}))
        atomic_write_text(record, dumps_json(identity))
        self.trained = set(train)

    @torch.no_grad()
    def _latents(self, frames: Sequence[Path]) -> torch.Tensor:
        import numpy as np
        from PIL import Image

        config, vae = self.drawer.config, self.drawer.components.vae
        pixels = []
        for path in frames:
            with Image.open(path) as img:
                img = img.convert("RGB").resize((config.width, config.height), Image.BICUBIC)
                pixels.append(torch.from_numpy(np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 127.5 - 1))
        vae.to(self.drawer.device)
        encoded = vae.encode(torch.stack(pixels).to(self.drawer.device)).latent_dist.mean
        return encoded * vae.config.scaling_factor

    def _train(self, audio: torch.Tensor, latents: torch.Tensor) -> None:
        components, device = self.drawer.components, self.drawer.device
        unet, scheduler = components.unet.to(device), components.scheduler
        components.text_encoder.to(device)
        self.embedder.to(device).train()
        optimiser = torch.optim.AdamW(self.embedder.parameters(), lr=self.lr)
        generator = torch.Generator().manual_seed(self.train_seed)
        for _ in range(self.steps):
            pick = torch.randint(0, len(audio), (min(self.batch_size, len(audio)),), generator=generator)
            clean = latents[pick]
            noise = torch.randn(clean.shape, generator=generator).to(device)
            t = torch.randint(0, scheduler.config.num_train_timesteps, (len(pick),), generator=generator).to(device)
            noisy = scheduler.add_noise(clean, noise, t)
            loss = nn.functional.mse_loss(unet(noisy, t, encoder_hidden_states=self.states(audio[pick])).sample,
                                          noise)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        self.embedder.eval()

    def trained_ids(self) -> set[str] | None:
        if self.trained is None:
            raise MacsError(f"{self.name}: untrained embedder; fit it first (macs-bench run --fit)")
        return self.trained

    def row_info(self) -> RowInfo:
        return RowInfo("model", "computed", False, "one token per separated source" if self.mss else
                       "one token from the mixture")

    def provenance(self) -> dict[str, Any]:
        return {"baseline": self.name, "conditioning": self.conditioner.provenance,
                "base": self.drawer.source, "prompt": self.prompt(), "work": str(self.work),
                "train": {"steps": self.steps, "batch_size": self.batch_size, "lr": self.lr,
                          "seed": self.train_seed, "samples": len(self.trained or ())},
                "licence": "MIT (macs); the base's and CLAP's own licences apply"}

    @torch.no_grad()
    def generate(self, items: Sequence[Item], seed: int) -> list[Any]:
        self.embedder.to(self.drawer.device).eval()
        states = self.states(self._embed([item.waveform for item in items], items[0].sample_rate))
        return self.drawer.draw(states, [item.seed for item in items])


def world_audiotoken(**options: Any) -> AudioToken:
    """AudioToken on the world's CLAP pair and SD base (prompt: the token alone, as the world base reads)."""
    from macs_model.baselines.prompt import world_base

    return AudioToken(clap="world", preset="world", base=options.pop("base", None) or world_base(),
                      template=options.pop("template", "{tokens}"), **options)


def world_audiotoken_mss(*, separator: str | os.PathLike, **options: Any) -> AudioToken:
    """AudioToken w/ MSS in the world: one token per source of a world separator run."""
    return world_audiotoken(separator=separator, **options)
