"""Label-prompt baselines: labels -> a text prompt -> Stable Diffusion.

- :class:`GroundTruthPrompt`: the manifest's own labels (an upper reference, never ranked: it reads the answer);
- :class:`ZeroShotPrompt`: the CLAP zero-shot labels of the mixture among the benchmark's label vocabulary
  (LAION-CLAP "The sound of <label>" prompts, the top ``top_k`` by cosine similarity). Simple and strong, and
  reported by no one; ``top_k`` is fixed up front (2), never tuned on a fold.

In the synthetic world (``world=True``) the same code runs on the world's CLAP-like pair and SD base, with the
world base's own prompt form (lower-case names joined by commas).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from macs_bench.models.protocol import Item, RowInfo
from macs_model.baselines.drawing import PromptDrawer

PAPER_TEMPLATE = "a photo of {labels}"


def world_base() -> Path:
    """The world's SD base folder (``macs_bench.world``'s public layout)."""
    from macs_bench.world import SD_DIR, WORLD_DIR

    return WORLD_DIR / SD_DIR


def label_prompt(labels: Sequence[str], template: str) -> str:
    """``template`` with ``{labels}`` filled: the labels in lower case joined by ', '."""
    return template.format(labels=", ".join(label.lower() for label in labels))


class _PromptModel:
    uses_labels = False

    def __init__(self, *, preset: str = "paper", base: str | os.PathLike | None = None, template: str | None = None,
                 device: str = "auto", steps: int | None = None, guidance_scale: float | None = None,
                 world: bool = False):
        if world:
            preset, base = "world", base or world_base()
        self.world = world
        self.template = template or ("{labels}" if world else PAPER_TEMPLATE)
        self.drawer = PromptDrawer(preset, base, device, steps, guidance_scale)
        self.prompts: dict[str, str] = {}  # the last batch's prompt per sample id (for inspection)

    def trained_ids(self) -> set[str]:
        return set()  # nothing here is trained on a benchmark's clips

    def draw_labels(self, items: Sequence[Item], labels: Sequence[Sequence[str]]) -> list[Any]:
        prompts = [label_prompt(x, self.template) for x in labels]
        self.prompts = {item.sample_id: p for item, p in zip(items, prompts)}
        return self.drawer.draw(self.drawer.text_states(prompts), [item.seed for item in items])


class GroundTruthPrompt(_PromptModel):
    """Ground-truth labels -> prompt -> SD: the upper reference row."""

    uses_labels = True

    @property
    def name(self) -> str:
        return "GT labels -> SD" + (" (world)" if self.world else "")

    def row_info(self) -> RowInfo:
        return RowInfo("control", "computed", False, "upper reference: prompted with the ground-truth labels")

    def provenance(self) -> dict[str, Any]:
        return {"baseline": "ground-truth label prompt", "template": self.template, "base": self.drawer.source,
                "licence": "CreativeML OpenRAIL-M (Stable Diffusion v1.4)" if not self.world else "world (MIT)"}

    def generate(self, items: Sequence[Item], seed: int) -> list[Any]:
        return self.draw_labels(items, [item.labels for item in items])


class ZeroShotPrompt(_PromptModel):
    """CLAP zero-shot labels of the mixture -> prompt -> SD."""

    def __init__(self, *, clap: str | None = None, tokenizer: str | os.PathLike | None = None, top_k: int = 2,
                 classes: Sequence[str] | None = None, **options: Any):
        super().__init__(**options)
        from macs_model.separation.api import WORLD_CLAP, open_encoder

        self.top_k = int(top_k)
        self.encoder = open_encoder(WORLD_CLAP if self.world and clap is None else clap, tokenizer, 16000)
        self.encoder.to(self.drawer.device)
        self.classes = list(classes) if classes is not None else None

    @property
    def name(self) -> str:
        return "CLAP zero-shot -> SD" + (" (world)" if self.world else "")

    def prepare(self, manifest: Path, media: Path, fold: int | None) -> None:
        """The benchmark's label vocabulary (every label of the manifest; no sample's own labels)."""
        if self.classes is None:
            from macs_bench.models.runner import fold_samples

            self.classes = sorted({x for labels in fold_samples(manifest, None, None).labels.values()
                                   for x in labels})

    def row_info(self) -> RowInfo:
        return RowInfo("model", "computed", False, f"CLAP zero-shot top-{self.top_k} labels as the prompt")

    def provenance(self) -> dict[str, Any]:
        return {"baseline": "CLAP zero-shot label prompt", "template": self.template, "top_k": self.top_k,
                "classes": self.classes, "clap": self.encoder.provenance(), "base": self.drawer.source,
                "licence": "world (MIT)" if self.world else
                "CLAP: Apache-2.0 (LAION-CLAP); SD v1.4: CreativeML OpenRAIL-M"}

    @torch.no_grad()
    def labels_of(self, items: Sequence[Item]) -> list[list[str]]:
        """The top-k classes of each item's mixture by CLAP audio/text cosine similarity."""
        from macs_bench.errors import MacsError

        if not self.classes:
            raise MacsError("zero-shot prompt: no label vocabulary (give classes, or run it through the harness)")
        text = self.encoder.embed_text([f"The sound of {c.lower()}" for c in self.classes])
        audio = torch.cat([self.encoder.embed_audio(torch.as_tensor(item.waveform, dtype=torch.float32)[None]
                                                    .to(self.drawer.device)) for item in items])
        similarity = audio @ text.T
        k = min(self.top_k, len(self.classes))
        return [[self.classes[i] for i in row.topk(k).indices.tolist()] for row in similarity]

    def generate(self, items: Sequence[Item], seed: int) -> list[Any]:
        return self.draw_labels(items, self.labels_of(items))
