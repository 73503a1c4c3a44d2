"""The world's CLAP-like pair behind stage 1's ``AudioTextEncoder`` interface (``--clap world``).

Frozen, always in eval mode; ``embed_audio`` stays differentiable in its input so the separator's losses reach
it, as with the real CLAP. Unit-norm 64-d embeddings of 16 kHz audio and of "The sound of <class>" prompts.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from macs_bench.errors import MacsError

ENCODER_NAME = "world CLAP-like pair (synthetic world only, not CLAP)"


class WorldClap(nn.Module):
    def __init__(self, path: Path | None = None, input_rate: int = 16000):
        super().__init__()
        from macs_bench.world import CLAP_FILE, WORLD_DIR
        from macs_bench.world.towers import AUDIO_RATE, EMBED_DIM, load_clap_pair

        if input_rate != AUDIO_RATE:
            raise MacsError(f"the world CLAP takes {AUDIO_RATE} Hz audio, got {input_rate}")
        path = Path(path) if path else WORLD_DIR / CLAP_FILE
        self.pair = load_clap_pair(path)
        self.embed_dim = EMBED_DIM
        self.input_rate = input_rate
        self._sha256 = self.pair.weights_sha256
        super().train(False)

    def train(self, mode: bool = True) -> "WorldClap":
        return super().train(False)

    def provenance(self) -> dict[str, Any]:
        return {"encoder": ENCODER_NAME, "sha256": self._sha256}

    def embed_audio(self, audio: torch.Tensor) -> torch.Tensor:
        if audio.dim() != 2 or audio.shape[-1] == 0:
            raise ValueError(f"embed_audio: audio must be [N, T > 0], got {tuple(audio.shape)}")
        return nn.functional.normalize(self.pair.audio(audio), dim=-1)

    @torch.no_grad()
    def embed_text(self, texts: Sequence[str]) -> torch.Tensor:
        return nn.functional.normalize(self.pair.text(list(texts)), dim=-1)
