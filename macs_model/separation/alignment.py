"""Stage-1 alignment losses from a frozen CLAP (paper §3.2): the ``align_loss`` callback of ``training.train``.

Per mixture of mixtures it embeds the M separated sources (with gradients, to reach the separator) and the
mixture once (without: the mixture does not depend on the separator): M + 1 CLAP audio passes per mixture,
where the release makes 2M (it re-embeds the mixture beside every source). Text prompts go through CLAP's text
branch once per distinct prompt (:class:`~macs_model.separation.clap.ClapEncoder` caches them).

Labels of a mixture of mixtures come from its two clips: mix1 is clip b, mix2 is clip b - 1 (``torch.roll`` by
one). ``prompts="release"`` (the ``paper`` preset) builds them as the release's ``AudioDataset`` and
``Separator.forward`` do: per clip its first 5 labels, lowercased with "_" as spaces, "The sound of <label>",
padded with "Noise" to 5; clip b's 5 then clip b - 1's 5, so 10 prompts are soft-assigned onto the M sources
(``MixITBaseModel.align_loss``). ``prompts="interleaved"``: the union of both clips' labels, interleaved (first
label of each clip, then the second, ...), truncated to M and padded with "Noise", M prompts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from macs_bench.datasets.fsd50k import PAD_LABEL, PROMPT_PREFIX, clap_prompts
from macs_bench.errors import MacsError
from macs_model.separation.clap import AudioTextEncoder
from macs_model.separation.losses import clamp_logit_scale_, contrastive_loss, ranking_loss

LOGIT_SCALE_INIT = math.log(1 / 0.07)  # CLIP's initial inverse temperature
RELEASE_LABELS = 5  # labels per clip in the release's prompts
PROMPT_STYLES = ("release", "interleaved")


def release_prompts(labels: Sequence[str]) -> list[str]:
    """One clip's prompts as the release's ``AudioDataset.get_labels_FSD50K`` makes them (5 per clip)."""
    prompts = [PROMPT_PREFIX + label.replace("_", " ").lower() for label in labels[:RELEASE_LABELS]]
    return prompts + [PAD_LABEL] * (RELEASE_LABELS - len(prompts))


def mixture_labels(labels: Sequence[Sequence[str]]) -> list[list[str]]:
    """Labels of each mixture of mixtures: clip b's and clip b-1's, interleaved, without repeats."""
    out = []
    n = len(labels)
    for b in range(n):
        first, second = list(labels[b]), list(labels[(b - 1) % n])
        merged: list[str] = []
        for i in range(max(len(first), len(second))):
            for source in (first, second):
                if i < len(source) and source[i] not in merged:
                    merged.append(source[i])
        out.append(merged)
    return out


class ClapAlignment(nn.Module):
    """(L_CL, L_rank) for a batch of separated sources; the learnable temperature is its only parameter.

    ``contrastive=False`` / ``ranking=False`` are the paper's ablations: the switched-off term is a zero and
    costs no CLAP pass (no text at all without the contrastive term, no mixture pass without the ranking term).
    ``audio_passes`` / ``mixtures`` count the clips CLAP embedded and the mixtures seen, for the benchmark.
    """

    def __init__(self, encoder: AudioTextEncoder, num_sources: int, *, contrastive: bool = True,
                 ranking: bool = True, tau: float = 0.01, rank_strength: float = 1.0,
                 prompts: str = "interleaved"):
        super().__init__()
        if prompts not in PROMPT_STYLES:
            raise MacsError(f"alignment: prompts must be one of {', '.join(PROMPT_STYLES)}, got {prompts!r}")
        self.prompt_style = prompts
        if not (contrastive or ranking):
            raise MacsError("alignment: both the contrastive and the ranking term are off; train without CLAP")
        self.encoder = encoder
        self.num_sources = num_sources
        self.contrastive = contrastive
        self.ranking = ranking
        self.tau = tau
        self.rank_strength = rank_strength
        self.logit_scale = nn.Parameter(torch.tensor(LOGIT_SCALE_INIT))
        self.audio_passes = 0
        self.mixtures = 0

    def trainable(self) -> list[nn.Parameter]:
        """What the optimiser must update: the contrastive temperature (nothing without that term)."""
        return [self.logit_scale] if self.contrastive else []

    def after_step(self) -> None:
        """Keep the temperature where CLIP keeps it (call after every optimiser step)."""
        clamp_logit_scale_(self.logit_scale)

    def prompts(self, batch: Mapping[str, Any]) -> list[list[str]]:
        """The text prompts of each mixture in the batch: 10 (release) or M (interleaved)."""
        labels = batch.get("labels")
        if labels is None or len(labels) != batch["mixture"].shape[0]:
            raise MacsError("the contrastive loss needs each clip's labels (a 'labels' field in the dataset items)")
        if self.prompt_style == "release":
            n = len(labels)
            return [release_prompts(labels[b]) + release_prompts(labels[(b - 1) % n]) for b in range(n)]
        return [clap_prompts(merged, self.num_sources) for merged in mixture_labels(labels)]

    def forward(self, sources: torch.Tensor, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        batch_size, m, samples = sources.shape
        if m != self.num_sources:
            raise ValueError(f"alignment: expected {self.num_sources} sources, got {m}")
        source_emb = self.encoder.embed_audio(sources.reshape(batch_size * m, samples)).reshape(batch_size, m, -1)
        self.audio_passes += batch_size * m
        self.mixtures += batch_size
        zero = sources.new_zeros(())
        l_rank = zero
        if self.ranking:
            with torch.no_grad():
                mixture_emb = self.encoder.embed_audio(batch["mixture"])
            self.audio_passes += batch_size
            sim = (source_emb * mixture_emb[:, None, :].to(source_emb.dtype)).sum(dim=-1)
            l_rank = ranking_loss(sim, self.rank_strength)
        l_cl = zero
        if self.contrastive:
            prompts = self.prompts(batch)
            text = self.encoder.embed_text([p for row in prompts for p in row])
            text_emb = text.reshape(batch_size, len(prompts[0]), -1).to(source_emb.device, source_emb.dtype)
            l_cl = contrastive_loss(source_emb, text_emb, self.logit_scale, self.tau)
        return l_cl, l_rank
