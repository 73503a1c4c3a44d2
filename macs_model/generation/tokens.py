"""Audio tokens for stage 2 (paper §3.3): M CLAP embeddings of the separated sources -> M tokens in Stable
Diffusion's text width.

E' = MLP(E + E_pos): a learnable per-slot positional embedding (init N(0, 0.05)) added to the sources' CLAP
embeddings (in separator slot order, as the release feeds them, unless the generator config re-sorts them), then
LayerNorm -> Linear 512->2048 -> GELU -> Dropout(0.5) -> Linear 2048->768 -> LayerNorm; the linear layers are
Xavier-normal with zero biases, as the release initialises them. Parameter names are the release's
``<dataset>_mlp.pt`` keys (``pe``, ``adapter.{0,1,4,5}``), so its files load as they are. Fewer than M slots
use the first positional rows (``--top-k``), or, inside ``at_slots``, the rows of the slots chosen (``--slots``).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager

import torch
from torch import nn

from macs_bench.errors import MacsError


def chosen_slots(num_tokens: int, top_k: int | None = None, slots: Sequence[int] | None = None
                 ) -> list[int] | None:
    """0-based token indices a generation conditions on (None: all): the first ``top_k``, or ``slots``, slot
    numbers counted from 1 as the paper's Fig. 4 counts them (``(4, 5, 6)``: the last three of six)."""
    if top_k is not None and slots is not None:
        raise MacsError("choose top_k (the first K slots) or slots (explicit slot numbers), not both")
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= num_tokens:
            raise MacsError(f"top_k must be between 1 and {num_tokens}, got {top_k}")
        return list(range(top_k))
    if slots is None:
        return None
    chosen = list(slots)
    if (not chosen or any(isinstance(s, bool) or not isinstance(s, int) or not 1 <= s <= num_tokens for s in chosen)
            or len(set(chosen)) != len(chosen)):
        raise MacsError(f"slots must be distinct slot numbers between 1 and {num_tokens}, got "
                        f"{','.join(map(str, chosen)) or 'none'}")
    return [s - 1 for s in chosen]


class AudioTokens(nn.Module):
    """[B, K <= M, clap_dim] audio embeddings (token order) -> [B, K, token_dim] tokens."""

    def __init__(self, num_tokens: int = 6, clap_dim: int = 512, hidden: int = 2048, token_dim: int = 768,
                 dropout: float = 0.5, pos_std: float = 0.05):
        super().__init__()
        self.num_tokens, self.clap_dim, self.token_dim = num_tokens, clap_dim, token_dim
        self.positions: list[int] | None = None  # set by at_slots
        self.pe = nn.Parameter(torch.randn(num_tokens, clap_dim) * pos_std)
        self.adapter = nn.Sequential(nn.LayerNorm(clap_dim), nn.Linear(clap_dim, hidden), nn.GELU(),
                                     nn.Dropout(dropout), nn.Linear(hidden, token_dim), nn.LayerNorm(token_dim))
        for layer in (self.adapter[1], self.adapter[4]):  # the release's init_parameters
            nn.init.xavier_normal_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        if embeddings.dim() != 3 or embeddings.shape[-1] != self.clap_dim or embeddings.shape[1] > self.num_tokens:
            raise ValueError(f"AudioTokens: expected [B, K <= {self.num_tokens}, {self.clap_dim}], "
                             f"got {tuple(embeddings.shape)}")
        k = embeddings.shape[1]
        if self.positions is None:
            pe = self.pe[:k]
        elif k == len(self.positions):
            pe = self.pe[self.positions]
        else:
            raise ValueError(f"AudioTokens: {k} embeddings inside at_slots({self.positions})")
        return self.adapter(embeddings + pe.to(embeddings.dtype))

    @contextmanager
    def at_slots(self, positions: Sequence[int] | None):
        """Within the block, K embeddings are the slots ``positions`` (0-based) and get those positional rows
        (inside the UNet the tokens run as diffusers' image projection, so the choice cannot be an argument)."""
        chosen = None if positions is None else [int(p) for p in positions]
        if chosen is not None and (not chosen or not all(0 <= p < self.num_tokens for p in chosen)):
            raise ValueError(f"AudioTokens: slot positions must lie in [0, {self.num_tokens}), got {chosen}")
        self.positions = chosen
        try:
            yield self
        finally:
            self.positions = None
