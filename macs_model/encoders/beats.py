"""BEATs (Chen et al., 2022; microsoft/unilm ``beats/``): the audio encoder AudioToken reads.

The computation of the official code, written anew: 16 kHz audio -> 128-bin Kaldi fbank (25 ms frames, 10 ms hop,
of the waveform scaled to int16 range) normalised as ``(fbank - mean) / (2 * std)`` -> a 16x16 patch conv (no bias)
-> layer norm -> a linear projection to the encoder width -> a transformer encoder as in WavLM: a grouped
convolutional position embedding (weight norm over the kernel axis, "same" padding), post-layer-norm blocks with
DeepNorm residual scaling and a bucketed relative position bias shared by every layer and gated per layer by
the query (``gru_rel_pos``). Module and parameter names equal the official ones, so the released checkpoint's
``model`` state dict loads as it is; its ``cfg`` dict fills :class:`BEATsConfig`.

Published checkpoint (what AudioToken loads): ``BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt``, the
``beats-as2m-cpt2`` entry of ``macs-bench weights`` (URL from the unilm and AudioToken READMEs; no
checksum is published, so the first good copy's sha256 is recorded). Padding masks are not supported: clips are
fixed-length, as AudioToken feeds them.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from macs_bench.errors import MacsError

WEIGHTS_NAME = "beats-as2m-cpt2"
SAMPLE_RATE = 16000
MEL_BINS = 128


@dataclass(frozen=True)
class BEATsConfig:
    """The official config's fields (same names, so a checkpoint's ``cfg`` maps onto it) plus the fbank
    normalisation the checkpoint was trained with (the official defaults for the iter3+ AS2M models)."""

    input_patch_size: int = 16
    embed_dim: int = 512
    conv_bias: bool = False
    encoder_layers: int = 12
    encoder_embed_dim: int = 768
    encoder_ffn_embed_dim: int = 3072
    encoder_attention_heads: int = 12
    activation_fn: str = "gelu"
    layer_norm_first: bool = False
    deep_norm: bool = True
    conv_pos: int = 128
    conv_pos_groups: int = 16
    relative_position_embedding: bool = True
    num_buckets: int = 320
    max_distance: int = 800
    gru_rel_pos: bool = True
    finetuned_model: bool = True
    predictor_class: int = 527
    fbank_mean: float = 15.41663
    fbank_std: float = 6.55582

    @classmethod
    def preset(cls, name: str, **changes: Any) -> "BEATsConfig":
        """``iter3-plus-as2m`` (768-d, 12 layers: the released model) or ``tiny`` (random, tests only)."""
        presets = {"iter3-plus-as2m": cls(),
                   "tiny": cls(embed_dim=16, encoder_layers=2, encoder_embed_dim=32, encoder_ffn_embed_dim=64,
                               encoder_attention_heads=4, conv_pos=8, conv_pos_groups=4, num_buckets=16,
                               max_distance=32, predictor_class=5)}
        if name not in presets:
            raise MacsError(f"BEATs preset {name!r}: known presets are {', '.join(presets)}")
        return replace(presets[name], **changes)

    @classmethod
    def from_checkpoint(cls, cfg: dict[str, Any]) -> "BEATsConfig":
        """The config a checkpoint's ``cfg`` dict describes (training-only fields such as dropouts are ignored)."""
        known = {f.name for f in fields(cls)}
        if cfg.get("activation_fn", "gelu") != "gelu":
            raise MacsError(f"BEATs checkpoint: activation {cfg['activation_fn']!r} is not supported (gelu only)")
        return cls(**{k: v for k, v in cfg.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fbank(waveforms: torch.Tensor, config: BEATsConfig) -> torch.Tensor:
    """[B, T] waveforms in [-1, 1] at 16 kHz -> [B, frames, 128] normalised Kaldi fbank features."""
    import torchaudio.compliance.kaldi as kaldi

    feats = [kaldi.fbank(wave[None] * 2**15, num_mel_bins=MEL_BINS, sample_frequency=SAMPLE_RATE,
                         frame_length=25, frame_shift=10) for wave in waveforms.float()]
    return (torch.stack(feats) - config.fbank_mean) / (2 * config.fbank_std)


class PositionConv(nn.Module):
    """Grouped conv position embedding with weight norm over the kernel axis (``weight_g`` [1, 1, K],
    ``weight_v``), "same" length (an even kernel drops its last frame), then GELU."""

    def __init__(self, dim: int, kernel: int, groups: int):
        super().__init__()
        self.kernel, self.groups = kernel, groups
        std = math.sqrt(4 / (kernel * dim))
        self.weight_v = nn.Parameter(torch.randn(dim, dim // groups, kernel) * std)
        self.weight_g = nn.Parameter(self.weight_v.detach().norm(dim=(0, 1), keepdim=True))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C, T]
        weight = self.weight_g * self.weight_v / self.weight_v.norm(dim=(0, 1), keepdim=True)
        out = F.conv1d(x, weight, self.bias, padding=self.kernel // 2, groups=self.groups)
        return F.gelu(out[..., :-1] if self.kernel % 2 == 0 else out)


class GatedRelativeAttention(nn.Module):
    """Self-attention with WavLM's gated relative position bias (the bias itself comes from layer 0)."""

    def __init__(self, config: BEATsConfig):
        super().__init__()
        dim, heads = config.encoder_embed_dim, config.encoder_attention_heads
        if dim % heads:
            raise MacsError(f"BEATs config: width {dim} is not divisible by {heads} heads")
        self.heads, self.head_dim = heads, dim // heads
        self.num_buckets, self.max_distance = config.num_buckets, config.max_distance
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(dim, dim) for _ in range(4))
        if config.relative_position_embedding:
            self.relative_attention_bias = nn.Embedding(config.num_buckets, heads)
        self.gated = config.gru_rel_pos
        if self.gated:
            self.grep_linear = nn.Linear(self.head_dim, 8)
            self.grep_a = nn.Parameter(torch.ones(1, heads, 1, 1))

    def buckets(self, length: int) -> torch.Tensor:
        """[L, L] bucket of each (query, key) offset: half the buckets per direction, exact below a quarter of
        them, log-spaced up to ``max_distance`` beyond."""
        offset = torch.arange(length)[None, :] - torch.arange(length)[:, None]
        half = self.num_buckets // 2
        exact = half // 2
        distance = offset.abs()
        far = exact + (torch.log(distance.float().clamp(min=1) / exact) / math.log(self.max_distance / exact)
                       * (half - exact)).long()
        far = far.clamp(max=half - 1)
        return (offset > 0).long() * half + torch.where(distance < exact, distance, far)

    def position_bias(self, length: int) -> torch.Tensor:
        """[H, L, L] relative position bias."""
        index = self.buckets(length).to(self.relative_attention_bias.weight.device)
        return self.relative_attention_bias(index).permute(2, 0, 1)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch, length, dim = x.shape
        split = (batch, length, self.heads, self.head_dim)
        q, k, v = (p(x).view(split).transpose(1, 2) for p in (self.q_proj, self.k_proj, self.v_proj))
        scores = (q * self.head_dim**-0.5) @ k.transpose(-1, -2)  # [B, H, L, L]
        if bias is None and hasattr(self, "relative_attention_bias"):
            bias = self.position_bias(length)
        if bias is not None:
            applied = bias[None]
            if self.gated:  # two sigmoid gates from the query, each the sum of 4 of grep_linear's outputs
                gate_a, gate_b = torch.sigmoid(self.grep_linear(q).view(batch, self.heads, length, 2, 4)
                                               .sum(-1)).chunk(2, dim=-1)
                applied = (gate_a * (gate_b * self.grep_a - 1.0) + 2.0) * applied
            scores = scores + applied
        out = scores.softmax(dim=-1) @ v
        return self.out_proj(out.transpose(1, 2).reshape(batch, length, dim)), bias


class EncoderLayer(nn.Module):
    """One block: attention and a GELU feed-forward, post-norm with DeepNorm (or pre-norm) residuals."""

    def __init__(self, config: BEATsConfig):
        super().__init__()
        dim = config.encoder_embed_dim
        self.self_attn = GatedRelativeAttention(config)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, config.encoder_ffn_embed_dim)
        self.fc2 = nn.Linear(config.encoder_ffn_embed_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim)
        self.pre_norm = config.layer_norm_first
        self.alpha = (2 * config.encoder_layers) ** 0.25 if config.deep_norm else 1.0

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.pre_norm:
            attended, bias = self.self_attn(self.self_attn_layer_norm(x), bias)
            x = x + attended
            return x + self.fc2(F.gelu(self.fc1(self.final_layer_norm(x)))), bias
        attended, bias = self.self_attn(x, bias)
        x = self.self_attn_layer_norm(x * self.alpha + attended)
        return self.final_layer_norm(x * self.alpha + self.fc2(F.gelu(self.fc1(x)))), bias


class Encoder(nn.Module):
    def __init__(self, config: BEATsConfig):
        super().__init__()
        dim = config.encoder_embed_dim
        self.pos_conv = nn.Sequential(PositionConv(dim, config.conv_pos, config.conv_pos_groups))
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.encoder_layers))
        if config.relative_position_embedding:  # one table, registered under every layer as the official
            shared = self.layers[0].self_attn.relative_attention_bias
            for layer in self.layers[1:]:
                layer.self_attn.relative_attention_bias = shared
        self.layer_norm = nn.LayerNorm(dim)
        self.pre_norm = config.layer_norm_first

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = x + self.pos_conv(x.transpose(1, 2)).transpose(1, 2)
        if not self.pre_norm:
            x = self.layer_norm(x)
        outputs, bias = [], None
        for layer in self.layers:
            x, bias = layer(x, bias)
            outputs.append(x)
        return (self.layer_norm(x) if self.pre_norm else x), outputs


class BEATs(nn.Module):
    """``extract_features(waveforms)`` -> (last states [B, N, D], every layer's output): N = time patches x 8
    frequency patches, time-major as the official reshape orders them."""

    def __init__(self, config: BEATsConfig):
        super().__init__()
        self.config = config
        patch = config.input_patch_size
        self.patch_embedding = nn.Conv2d(1, config.embed_dim, kernel_size=patch, stride=patch, bias=config.conv_bias)
        self.layer_norm = nn.LayerNorm(config.embed_dim)
        self.post_extract_proj = (nn.Linear(config.embed_dim, config.encoder_embed_dim)
                                  if config.embed_dim != config.encoder_embed_dim else None)
        self.encoder = Encoder(config)
        self.predictor = (nn.Linear(config.encoder_embed_dim, config.predictor_class)
                          if config.finetuned_model else None)  # AudioSet head of a fine-tuned checkpoint

    def embed_patches(self, features: torch.Tensor) -> torch.Tensor:
        """[B, frames, 128] fbank -> [B, N, D] projected patch embeddings."""
        patches = self.patch_embedding(features[:, None])
        patches = self.layer_norm(patches.flatten(2).transpose(1, 2))
        return patches if self.post_extract_proj is None else self.post_extract_proj(patches)

    def extract_features(self, waveforms: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        features = fbank(waveforms.cpu(), self.config).to(self.patch_embedding.weight.device)
        return self.encoder(self.embed_patches(features))

    def classify(self, waveforms: torch.Tensor) -> torch.Tensor:
        """[B, classes] sigmoid scores of a fine-tuned checkpoint (mean of the per-patch logits)."""
        if self.predictor is None:
            raise MacsError("BEATs: this checkpoint has no classifier (not a fine-tuned model)")
        return torch.sigmoid(self.predictor(self.extract_features(waveforms)[0]).mean(dim=1))


def read_checkpoint(path: str | os.PathLike, sha256: str | None = None) -> dict[str, Any]:
    """The ``{"cfg", "model"}`` dict of a BEATs checkpoint (``torch.load(weights_only=True)``), its sha256
    checked when one is given; a missing, wrong or unreadable file is one MacsError line."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise MacsError(f"{path}: no BEATs checkpoint there; fetch it with: macs-bench weights fetch {WEIGHTS_NAME}")
    if sha256 is not None:
        from macs_bench.io import sha256_file

        actual = sha256_file(path)
        if actual != sha256:
            raise MacsError(f"{path}: sha256 {actual}, expected {sha256}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # an unpickling error names a type; any failure means the file is not usable
        raise MacsError(f"{path}: not a readable BEATs checkpoint ({type(exc).__name__})") from None
    if not isinstance(data, dict) or not isinstance(data.get("cfg"), dict) or not isinstance(data.get("model"), dict):
        raise MacsError(f"{path}: not a BEATs checkpoint (expected a dict with 'cfg' and 'model')")
    return data


def load_beats(path: str | os.PathLike | None = None, *, sha256: str | None = None,
               device: str | torch.device = "cpu") -> tuple[BEATs, dict[str, Any]]:
    """The frozen BEATs of a checkpoint (default: the verified ``beats-as2m-cpt2`` cache entry)
    and its provenance (path, sha256, config)."""
    from macs_bench.io import sha256_file

    if path is None:
        from macs_bench import weights

        path = weights.path(WEIGHTS_NAME)
    data = read_checkpoint(path, sha256)
    config = BEATsConfig.from_checkpoint(data["cfg"])
    model = BEATs(config)
    missing, unexpected = model.load_state_dict(data["model"], strict=False)
    if missing or unexpected:
        raise MacsError(f"{path}: BEATs weights do not fit its config (missing {sorted(missing)[:3]}, "
                        f"unexpected {sorted(unexpected)[:3]})")
    model.requires_grad_(False).eval().to(device)
    return model, {"encoder": "BEATs", "path": str(path), "sha256": sha256 or sha256_file(path),
                   "config": config.to_dict()}


def tiny_beats(seed: int = 0) -> tuple[BEATs, dict[str, Any]]:
    """A random BEATs of the ``tiny`` preset (tests only) and its provenance."""
    torch.manual_seed(seed)
    config = BEATsConfig.preset("tiny")
    return BEATs(config).requires_grad_(False).eval(), {"encoder": "BEATs", "preset": "tiny", "seed": seed,
                                                          "note": "random weights (tests only)",
                                                          "config": config.to_dict()}
