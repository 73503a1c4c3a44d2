"""ImageBind's audio tower (Girdhar et al., CVPR 2023), restated from facebookresearch/ImageBind so that the official
``imagebind_huge.pth`` loads into it, audio keys only.

What the original computes (``imagebind/data.py``, ``models/imagebind_model.py``, ``multimodal_preprocessors.py``,
``transformer.py``, ``helpers.py`` at 53680b0), and so what this module computes:

- audio resampled to 16 kHz; three 2 s clips at evenly spaced starts (pytorchvideo's
  ``ConstantClipsPerVideoSampler`` at the commit ImageBind pins, 6cdc929: start k * max(0, d - 2) / 2 for a
  clip of d seconds, sample bounds truncated); each clip's mean removed *in place* on the shared waveform (so a
  clip overlapping the previous one, in audio under 6 s, sees that clip's mean removal too, as the original does);
- Kaldi fbank (htk_compat, Hann window, 25 ms / 10 ms, 128 mel bins, no dither, no energy), zero-padded or cut
  to 204 frames, then normalised with mean -4.268 and std 9.138;
- a 16x16 conv stem with stride 10 (no bias), layer norm, a cls token and a learned position embedding;
- 12 pre-norm blocks, 768 wide, 12 heads, attention with a learned extra key/value (``add_bias_kv``), GELU MLP
  x4, layer norms eps 1e-6, drop path rising linearly from 0 to 0.1;
- head: layer norm (eps 1e-6), the cls token, a linear map to 1024 without bias; postprocessor: L2 normalise,
  times the fixed logit scale 20 (``log_logit_scale`` buffer, clipped at 100); the clips' vectors averaged.

Differences: the harness hands a mono waveform (the original's fbank reads a file's first channel).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import torch
from torch import nn

from macs_bench.errors import MacsError
from macs_model.named_config import NamedConfig

WEIGHTS_NAME = "imagebind-huge"  # the macs-bench weights registry entry
CHECKPOINT_URL = "https://dl.fbaipublicfiles.com/imagebind/imagebind_huge.pth"
LICENCE = "CC-BY-NC-SA 4.0 (facebookresearch/ImageBind LICENSE; its README says CC-BY-NC 4.0): non-commercial"

# this module's parameter names -> the official checkpoint's (prefix replacement, first match)
OFFICIAL_PREFIXES = (
    ("cls_token", "modality_preprocessors.audio.cls_token"),
    ("pos_embed", "modality_preprocessors.audio.pos_embedding_helper.pos_embed"),
    ("stem.", "modality_preprocessors.audio.rgbt_stem.proj."),
    ("stem_norm.", "modality_preprocessors.audio.rgbt_stem.norm_layer."),
    ("blocks.", "modality_trunks.audio.blocks."),
    ("head_norm.", "modality_heads.audio.0."),
    ("head.", "modality_heads.audio.2."),
    ("log_logit_scale", "modality_postprocessors.audio.1.log_logit_scale"),
)
AUDIO_PREFIXES = tuple(f"modality_{part}.audio." for part in ("preprocessors", "trunks", "heads", "postprocessors"))


@dataclass(frozen=True)
class ImageBindAudioConfig(NamedConfig):
    """The audio tower's front end and sizes; ``huge`` is the released model's, ``tiny`` a random CPU-sized one
    (tests only) with the same front end."""

    sample_rate: int = 16000
    num_mel_bins: int = 128
    target_length: int = 204
    clip_duration: float = 2.0
    clips_per_video: int = 3
    mean: float = -4.268
    std: float = 9.138
    kernel_size: int = 16
    stride: int = 10
    embed_dim: int = 768
    num_blocks: int = 12
    num_heads: int = 12
    drop_path: float = 0.1
    out_dim: int = 1024
    logit_scale: float = 20.0
    max_logit_scale: float = 100.0
    seed: int = 0  # the random initialisation (a checkpoint replaces it)

    KIND = "imagebind audio"

    def __post_init__(self) -> None:
        self.check_positive_ints("sample_rate", "num_mel_bins", "target_length", "clips_per_video", "kernel_size",
                                 "stride", "embed_dim", "num_blocks", "num_heads", "out_dim")
        if self.embed_dim % self.num_heads:
            raise MacsError(f"imagebind audio config: embed_dim {self.embed_dim} is not a multiple of num_heads "
                            f"{self.num_heads}")
        if self.num_mel_bins < self.kernel_size or self.target_length < self.kernel_size:
            raise MacsError("imagebind audio config: the spectrogram is smaller than one stem patch")
        if not self.clip_duration > 0 or not self.std > 0 or not 0 <= self.drop_path < 1:
            raise MacsError("imagebind audio config: clip_duration and std must be positive, drop_path in [0, 1)")

    @property
    def patch_grid(self) -> tuple[int, int]:
        """(mel, time) patches of the stem: 12 x 19 for 128 x 204."""
        return ((self.num_mel_bins - self.kernel_size) // self.stride + 1,
                (self.target_length - self.kernel_size) // self.stride + 1)

    @classmethod
    def presets(cls) -> dict[str, "ImageBindAudioConfig"]:
        return PRESETS


PRESETS = {
    "huge": ImageBindAudioConfig(),  # imagebind_huge's audio tower (the one checkpoint published)
    "tiny": ImageBindAudioConfig(embed_dim=32, num_blocks=2, num_heads=4, out_dim=32, drop_path=0.0),
}


# -- the front end -----------------------------------------------------------------------------------------------


def clip_starts(duration: float, config: ImageBindAudioConfig) -> list[Fraction]:
    """Start times (s) of the clips: ``clips_per_video`` evenly spaced over [0, duration - clip_duration], all
    at 0 for a shorter clip (the pinned pytorchvideo sampler divides by clips - 1, so it never stops early)."""
    latest = Fraction(max(duration - Fraction(config.clip_duration), 0))
    step = latest / max(config.clips_per_video - 1, 1)
    return [step * k for k in range(config.clips_per_video)]


def fbank(clip: torch.Tensor, config: ImageBindAudioConfig) -> torch.Tensor:
    """[1, mel, frames] normalised log-mel filterbank of a (mean-removed) clip [T], padded or cut to
    ``target_length`` frames."""
    import torchaudio.compliance.kaldi as kaldi

    feats = kaldi.fbank(clip[None], htk_compat=True, sample_frequency=config.sample_rate, use_energy=False,
                        window_type="hanning", num_mel_bins=config.num_mel_bins, dither=0.0, frame_length=25,
                        frame_shift=10).T
    missing = config.target_length - feats.shape[1]
    feats = nn.functional.pad(feats, (0, missing)) if missing > 0 else feats[:, :config.target_length]
    return ((feats - config.mean) / config.std)[None]


def preprocess(waveform: Any, sample_rate: int, config: ImageBindAudioConfig) -> torch.Tensor:
    """[clips, 1, mel, frames] model input of one mono waveform [T] (numpy or tensor; never modified)."""
    wave = torch.as_tensor(waveform, dtype=torch.float32).detach().reshape(-1).clone()
    if sample_rate != config.sample_rate:
        import torchaudio.functional as AF

        wave = AF.resample(wave, sample_rate, config.sample_rate)
    if wave.numel() < config.sample_rate * 25 // 1000:
        raise MacsError(f"imagebind audio: {wave.numel()} samples is shorter than one 25 ms frame")
    rate = config.sample_rate
    clips = []
    for start in clip_starts(wave.numel() / rate, config):
        view = wave[int(start * rate):int((start + Fraction(config.clip_duration)) * rate)]
        view -= view.mean()  # in place on the shared waveform, as the original (see the module docstring)
        clips.append(fbank(view, config))
    return torch.stack(clips)


# -- the tower ---------------------------------------------------------------------------------------------------


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class _Block(nn.Module):
    """Pre-norm transformer block: attention with learned extra key/value, then the MLP, each behind drop path."""

    def __init__(self, dim: int, heads: int, drop_path: float):
        from torchvision.ops import StochasticDepth

        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, bias=True, add_bias_kv=True, batch_first=True)
        self.norm_1, self.norm_2 = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
        self.mlp = _Mlp(dim, 4 * dim)
        self.drop_path = StochasticDepth(drop_path, "row")  # timm's DropPath: per sample, rescaled by 1 / keep

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm_1(x)
        x = x + self.drop_path(self.attn(h, h, h, need_weights=False)[0])
        return x + self.drop_path(self.mlp(self.norm_2(x)))


class ImageBindAudio(nn.Module):
    """[N, clips, 1, mel, frames] (or [N, 1, mel, frames]) -> [N, out_dim]: ImageBind's audio embedding, the mean
    over clips of 20 x the unit vector of each clip."""

    def __init__(self, config: ImageBindAudioConfig | None = None):
        super().__init__()
        self.config = config = config or PRESETS["huge"]
        dim = config.embed_dim
        rows, cols = config.patch_grid
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.stem = nn.Conv2d(1, dim, config.kernel_size, config.stride, bias=False)
            self.stem_norm = nn.LayerNorm(dim)
            self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * dim ** -0.5)
            self.pos_embed = nn.Parameter(torch.randn(1, 1 + rows * cols, dim) * dim ** -0.5)
            last = max(config.num_blocks - 1, 1)
            rates = [config.drop_path * i / last for i in range(config.num_blocks)]  # linspace(0, rate, n)
            self.blocks = nn.Sequential(*[_Block(dim, config.num_heads, rate) for rate in rates])
            self.head_norm = nn.LayerNorm(dim, eps=1e-6)
            self.head = nn.Linear(dim, config.out_dim, bias=False)
            for module in self.modules():
                if isinstance(module, nn.Linear):
                    nn.init.xavier_uniform_(module.weight)
                    if module.bias is not None:
                        nn.init.zeros_(module.bias)
        self.register_buffer("log_logit_scale", torch.tensor(math.log(config.logit_scale)))
        self.source: dict[str, Any] = {"weights": "random", "seed": config.seed}

    def encode_clips(self, mel: torch.Tensor) -> torch.Tensor:
        """[B, 1, mel, frames] -> [B, out_dim] postprocessed clip embeddings (norm = the logit scale)."""
        tokens = self.stem_norm(self.stem(mel).flatten(2).transpose(1, 2))
        tokens = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1) + self.pos_embed
        cls = self.head_norm(self.blocks(tokens))[:, 0]
        scale = self.log_logit_scale.exp().clamp(max=self.config.max_logit_scale)
        return scale * nn.functional.normalize(self.head(cls), dim=-1)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        if mel.ndim == 4:
            return self.encode_clips(mel)
        n, clips = mel.shape[:2]
        return self.encode_clips(mel.reshape(n * clips, *mel.shape[2:])).reshape(n, clips, -1).mean(dim=1)

    @torch.no_grad()
    def embed(self, waveforms: Sequence[Any], sample_rate: int) -> torch.Tensor:
        """[N, out_dim] embeddings of mono waveforms, each through :func:`preprocess`."""
        device = self.log_logit_scale.device
        mel = torch.stack([preprocess(w, sample_rate, self.config) for w in waveforms]).to(device)
        return self(mel.to(self.head.weight.dtype))

    # -- the official checkpoint's names -----------------------------------------------------------------------

    @staticmethod
    def official_key(name: str) -> str:
        """The official ``imagebind_huge.pth`` key of one of this module's state-dict names."""
        for mine, theirs in OFFICIAL_PREFIXES:
            if name == mine or (mine.endswith(".") and name.startswith(mine)):
                return theirs + name[len(mine):]
        raise KeyError(name)

    def official_state_dict(self) -> dict[str, torch.Tensor]:
        """The state dict under the official checkpoint's names."""
        return {self.official_key(k): v for k, v in self.state_dict().items()}

    def load_official(self, state: dict[str, Any], where: str = "checkpoint") -> None:
        """Load the audio keys of an official ImageBind state dict (other modalities' keys are ignored); a missing
        key or a shape that differs is one MacsError naming ``where``."""
        wanted = {self.official_key(k): k for k in self.state_dict()}
        mine = self.state_dict()
        missing = sorted(k for k in wanted if k not in state)
        if missing:
            raise MacsError(f"{where}: not an ImageBind checkpoint for this config: {len(missing)} audio keys "
                            f"missing (e.g. {missing[0]})")
        for key, name in wanted.items():
            if tuple(state[key].shape) != tuple(mine[name].shape):
                raise MacsError(f"{where}: {key} has shape {list(state[key].shape)}, this config expects "
                                f"{list(mine[name].shape)}")
        extra = sorted(k for k in state if k.startswith(AUDIO_PREFIXES) and k not in wanted)
        if extra:
            raise MacsError(f"{where}: {len(extra)} audio keys this config does not have (e.g. {extra[0]})")
        self.load_state_dict({name: state[key] for key, name in wanted.items()})


def load_imagebind_audio(checkpoint: str | os.PathLike | None = None, *, sha256: str | None = None,
                         config: ImageBindAudioConfig | None = None) -> ImageBindAudio:
    """The released audio tower: ``checkpoint`` (a local ``imagebind_huge.pth``; ``sha256`` checked when given)
    or the verified registry copy (``macs-bench weights fetch imagebind-huge``; published at
    :data:`CHECKPOINT_URL` without a checksum, so its hash is recorded on first use). Only the audio keys are
    read (``torch.load(weights_only=True)``, memory-mapped). Missing or unreadable: one MacsError line."""
    from macs_bench.io import sha256_file

    if checkpoint is None:
        from macs_bench import weights

        path = weights.path(WEIGHTS_NAME)  # verified (hash recorded on first use); missing: one line
        digest = weights.expected_sha256(WEIGHTS_NAME)
    else:
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise MacsError(f"{path}: no ImageBind checkpoint (imagebind_huge.pth, published at {CHECKPOINT_URL}; "
                            f"or: macs-bench weights fetch {WEIGHTS_NAME})")
        digest = sha256_file(path)
        if sha256 is not None and digest != sha256.lower():
            raise MacsError(f"{path}: sha256 {digest}, expected {sha256}")
    state = _read_state(path)
    model = ImageBindAudio(config or PRESETS["huge"])
    model.load_official(state, str(path))
    del state
    model.source = {"weights": WEIGHTS_NAME if checkpoint is None else str(path), "url": CHECKPOINT_URL,
                    "sha256": digest, "licence": LICENCE}
    return model.eval()


def _read_state(path: Path) -> dict[str, Any]:
    import pickle

    problems = []
    for mmap in (True, False):  # mmap needs the zip format; an older torch.save file loads whole
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
        except (RuntimeError, OSError, ValueError, EOFError, pickle.UnpicklingError) as exc:
            problems.append(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            continue
        if not isinstance(state, dict):
            raise MacsError(f"{path}: not a state dict ({type(state).__name__})")
        return state
    raise MacsError(f"{path}: unreadable checkpoint ({problems[-1]})")
