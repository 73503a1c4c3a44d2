"""Stage-1 separators: mixture [B, T] -> M mixture-consistent sources [B, M, T].

``StftMaskSeparator`` is the paper's spectrogram-mask UNet: the release's network (``CustomUNet`` of
alxzzhou/MACS ``modules/separator.py``), laid out so its weights load by a prefix rename (``load_release_unet``);
``tests/model/test_release_equivalence.py`` checks it computes what the release computes. ``WaveformSeparator``
is the waveform-domain model of the Table 4 ablation.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from macs_bench.errors import MacsError
from macs_model.separation.config import SeparatorConfig

RELEASE_PREFIX = "model.unet."
RELEASE_IGNORED_KEYS = frozenset(
    {"unperm", "model.tau2", "model.stft.window", "model.istft.window", "model.resample.kernel"})
RELEASE_IGNORED_PREFIXES = ("clap.", "model.clap.")
SE_REDUCTION = 16
SE_MIN_HIDDEN = 4
POS_STD = 0.05  # the release's positional-embedding std


def mixture_consistency(sources: torch.Tensor, mixture: torch.Tensor) -> torch.Tensor:
    """Share the residual equally, s_i += (m - sum_j s_j) / M, so the sources always sum to the mixture."""
    residual = mixture - sources.sum(dim=1)
    return sources + residual.unsqueeze(1) / sources.shape[1]


def _check_mixture(mixture: torch.Tensor, min_samples: int) -> None:
    if not isinstance(mixture, torch.Tensor) or mixture.dim() != 2 or not mixture.is_floating_point():
        got = (f"{tuple(mixture.shape)} {mixture.dtype}" if isinstance(mixture, torch.Tensor)
               else type(mixture).__name__)
        raise MacsError(f"separator input must be a float tensor [batch, samples], got {got}")
    if mixture.shape[-1] < min_samples:
        raise MacsError(f"separator input has {mixture.shape[-1]} samples; at least {min_samples} are needed")


class SqueezeExcite(nn.Module):
    """Channel gating as the release computes it: x * sigmoid(fc(max over H, W)), ``fc`` = Linear, GELU, Linear.

    The hidden width is channels / 16 as in the release (which needs channels divisible by 16), but at least 4
    (or channels), so the narrow ``tiny`` models keep more than one unit; at the paper's widths it is channels / 16.
    """

    def __init__(self, channels: int):
        super().__init__()
        hidden = min(channels, max(SE_MIN_HIDDEN, channels // SE_REDUCTION))
        self.fc = nn.Sequential(nn.Linear(channels, hidden), nn.GELU(), nn.Linear(hidden, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.fc(x.amax(dim=(2, 3))))[:, :, None, None]


class ResidualBlock(nn.Module):
    """GELU(SE(x + conv-BN-GELU-conv-BN(x))), the release's order: the gate sits after the residual sum."""

    def __init__(self, channels: int):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.GELU(),
            nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels))
        self.senet = SqueezeExcite(channels)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.senet(x + self.layers(x)))


class UNetLevel(nn.Module):
    """One level of the recursive (pix2pix-style) UNet; returns the skip concatenation [x, up(inner(down(x)))].

    Down: stride-2 4x4 conv, BN, GELU, residual block, then channel dropout (``Dropout2d``, every level but the
    innermost). Up: residual block, stride-2 4x4 transposed conv, BN, GELU; where the size did not halve evenly
    (201 x 641 at the paper's 8 s) the up path is resized bilinearly (corners aligned) to the skip's size. All as
    the release computes it. The innermost level's ``submodule`` is a squeeze-excitation gate, so its up path
    sees ``inner`` channels; every other level's sees the 2 * ``inner`` of the level below's concatenation.
    """

    def __init__(self, outer: int, inner: int, submodule: nn.Module, innermost: bool, dropout: float):
        super().__init__()
        up_channels = inner if innermost else 2 * inner
        self.downconv = nn.Conv2d(outer, inner, 4, stride=2, padding=1)
        self.downnorm = nn.BatchNorm2d(inner)
        self.downact = nn.GELU()
        self.downresblock = ResidualBlock(inner)
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 and not innermost else nn.Identity()
        self.submodule = submodule
        self.upresblock = ResidualBlock(up_channels)
        self.upconv = nn.ConvTranspose2d(up_channels, outer, 4, stride=2, padding=1)
        self.upnorm = nn.BatchNorm2d(outer)
        self.upact = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dropout(self.downresblock(self.downact(self.downnorm(self.downconv(x)))))
        h = self.submodule(h)
        h = self.upact(self.upnorm(self.upconv(self.upresblock(h))))
        if h.shape[-2:] != x.shape[-2:]:
            h = F.interpolate(h, size=x.shape[-2:], mode="bilinear", align_corners=True)
        return torch.cat([x, h], dim=1)


class PositionalEmbedding(nn.Module):
    """Learned additive embedding, one C-vector per frequency bin (``row_embed``) and per frame (``col_embed``),
    initialised N(0, 0.05) as the release's.

    The tables are sized for ``config.n_freq`` x ``config.clip_frames`` (201 x 641 in the release, which accepts
    no other size); an input of another size gets them linearly resampled, our extension for other lengths.
    """

    def __init__(self, channels: int, n_freq: int, n_frames: int):
        super().__init__()
        self.row_embed = nn.Parameter(POS_STD * torch.randn(channels, n_freq))
        self.col_embed = nn.Parameter(POS_STD * torch.randn(channels, n_frames))

    @staticmethod
    def _fit(table: torch.Tensor, size: int) -> torch.Tensor:
        if table.shape[-1] == size:
            return table
        return F.interpolate(table[None], size=size, mode="linear", align_corners=True)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = self._fit(self.row_embed, x.shape[-2])
        cols = self._fit(self.col_embed, x.shape[-1])
        return x + rows[:, :, None] + cols[:, None, :]


def release_init(module: nn.Module) -> None:
    """The release's initialisation: Kaiming-normal (fan-out, ReLU gain) convs, Xavier-normal linears, zero
    biases, BatchNorm 1 / 0. Positional tables keep their N(0, 0.05)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    elif isinstance(module, nn.Linear):
        nn.init.xavier_normal_(module.weight)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.ones_(module.weight)
    else:
        return
    if module.bias is not None:
        nn.init.zeros_(module.bias)


class MaskUNet(nn.Module):
    """Spectrogram [B, 1, F, T] -> M sigmoid masks [B, M, F, T] (the release's ``model.unet``, ``CustomUNet``).

    The recursive ``unet`` resizes at levels whose size does not halve evenly, as the release does, so any
    spectrogram of at least 2**levels bins and frames runs as the release would run it. Shorter ones (which the
    release cannot run) are zero-padded to 2**levels and cropped back.
    """

    def __init__(self, config: SeparatorConfig):
        super().__init__()
        widths = config.unet_widths
        level: nn.Module = SqueezeExcite(widths[-1])
        for i in reversed(range(config.levels)):
            innermost = i == config.levels - 1
            level = UNetLevel(widths[max(i - 1, 0)], widths[i], level, innermost, config.dropout)
        self.unet = level
        self.in_conv = nn.Sequential(
            nn.Conv2d(1, config.stem_width, 3, padding=1),
            PositionalEmbedding(config.stem_width, config.n_freq, config.clip_frames),
            nn.BatchNorm2d(config.stem_width), nn.GELU(),
            nn.Conv2d(config.stem_width, widths[0], 3, padding=1), nn.BatchNorm2d(widths[0]), nn.GELU())
        self.out_conv = nn.Sequential(
            nn.Conv2d(2 * widths[0], widths[0], 3, padding=1), nn.BatchNorm2d(widths[0]), nn.GELU(),
            nn.Conv2d(widths[0], widths[0], 3, padding=1), nn.BatchNorm2d(widths[0]), nn.GELU(),
            nn.Conv2d(widths[0], config.num_sources, 1))
        self.smallest = 2**config.levels
        self.apply(release_init)

    def forward(self, spectrogram: torch.Tensor) -> torch.Tensor:
        x = self.in_conv(spectrogram)
        n_freq, n_frames = x.shape[-2:]
        x = F.pad(x, (0, max(0, self.smallest - n_frames), 0, max(0, self.smallest - n_freq)))
        x = self.unet(x)[..., :n_freq, :n_frames]
        return torch.sigmoid(self.out_conv(x))


class StftMaskSeparator(nn.Module):
    """The paper's separator: sigmoid UNet masks on the complex STFT, iSTFT with the mixture phase.

    STFT as torchaudio's Spectrogram defaults (periodic Hann window of n_fft, centred, reflect padding); the UNet
    sees the power (release) or magnitude (paper) spectrogram as one channel. Outputs are mixture-consistent.
    """

    def __init__(self, config: SeparatorConfig):
        super().__init__()
        if config.kind != "stft-unet":
            raise MacsError(f"StftMaskSeparator needs a config of kind 'stft-unet', got {config.kind!r}")
        self.config = config
        self.unet = MaskUNet(config)
        self.register_buffer("window", torch.hann_window(config.n_fft), persistent=False)

    def separate_with_masks(self, mixture: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sources [B, M, T] and the masks [B, M, F, frames] that made them."""
        cfg = self.config
        _check_mixture(mixture, cfg.n_fft // 2 + 1)
        batch, samples = mixture.shape
        stft = torch.stft(mixture, cfg.n_fft, hop_length=cfg.hop, win_length=cfg.n_fft, window=self.window,
                          center=True, pad_mode="reflect", normalized=False, onesided=True, return_complex=True)
        power = stft.real.square() + stft.imag.square()
        features = power if cfg.spectrogram == "power" else power.sqrt()
        masks = self.unet(features.unsqueeze(1))
        masked = (masks * stft.unsqueeze(1)).flatten(0, 1)
        sources = torch.istft(masked, cfg.n_fft, hop_length=cfg.hop, win_length=cfg.n_fft, window=self.window,
                              center=True, normalized=False, onesided=True, length=samples)
        return mixture_consistency(sources.view(batch, cfg.num_sources, samples), mixture), masks

    def forward(self, mixture: torch.Tensor) -> torch.Tensor:
        """Mixture [B, T] -> sources [B, M, T] that sum to the mixture."""
        return self.separate_with_masks(mixture)[0]


class TemporalBlock(nn.Module):
    """Conv-TasNet block: 1x1 conv, PReLU, norm, dilated depthwise conv, PReLU, norm, dropout, 1x1 conv; residual."""

    def __init__(self, channels: int, hidden: int, dilation: int, dropout: float):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv1d(channels, hidden, 1), nn.PReLU(), nn.GroupNorm(1, hidden),
            nn.Conv1d(hidden, hidden, 3, padding=dilation, dilation=dilation, groups=hidden),
            nn.PReLU(), nn.GroupNorm(1, hidden), nn.Dropout(dropout), nn.Conv1d(hidden, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x)


class WaveformSeparator(nn.Module):
    """Waveform-domain separator for the "MixIT (waveform)" ablation, Conv-TasNet-like (Luo and Mesgarani 2019).

    A learned encoder (1-D conv, kernel ``wave_kernel``, stride half of it, ReLU), a mask net of ``wave_repeats``
    x ``levels`` dilated blocks (bottleneck ``base_width``, hidden and basis 4 * ``base_width``), M sigmoid masks on
    the encoding, a learned transposed-conv decoder. The input is zero-padded to whole frames and cropped back.
    """

    def __init__(self, config: SeparatorConfig):
        super().__init__()
        if config.kind != "waveform":
            raise MacsError(f"WaveformSeparator needs a config of kind 'waveform', got {config.kind!r}")
        self.config = config
        basis = hidden = 4 * config.base_width
        stride = config.wave_kernel // 2
        self.encoder = nn.Conv1d(1, basis, config.wave_kernel, stride=stride, bias=False)
        self.bottleneck = nn.Sequential(nn.GroupNorm(1, basis), nn.Conv1d(basis, config.base_width, 1))
        self.blocks = nn.Sequential(*(
            TemporalBlock(config.base_width, hidden, 2**i, config.dropout)
            for _ in range(config.wave_repeats) for i in range(config.levels)))
        self.mask = nn.Sequential(nn.PReLU(), nn.Conv1d(config.base_width, config.num_sources * basis, 1))
        self.decoder = nn.ConvTranspose1d(basis, 1, config.wave_kernel, stride=stride, bias=False)

    def separate_with_masks(self, mixture: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sources [B, M, T] and the masks [B, M, basis, frames] on the encoder output."""
        _check_mixture(mixture, 1)
        batch, samples = mixture.shape
        kernel, stride = self.config.wave_kernel, self.config.wave_kernel // 2
        frames = max(0, -(-(samples - kernel) // stride)) + 1
        padded = F.pad(mixture, (0, (frames - 1) * stride + kernel - samples)).unsqueeze(1)
        encoded = F.relu(self.encoder(padded))
        masks = torch.sigmoid(self.mask(self.blocks(self.bottleneck(encoded))))
        masks = masks.view(batch, self.config.num_sources, -1, encoded.shape[-1])
        decoded = self.decoder((masks * encoded.unsqueeze(1)).flatten(0, 1))
        sources = decoded.view(batch, self.config.num_sources, -1)[..., :samples]
        return mixture_consistency(sources, mixture), masks

    def forward(self, mixture: torch.Tensor) -> torch.Tensor:
        """Mixture [B, T] -> sources [B, M, T] that sum to the mixture."""
        return self.separate_with_masks(mixture)[0]


def build_separator(config: SeparatorConfig) -> StftMaskSeparator | WaveformSeparator:
    """The separator that ``config.kind`` names."""
    if config.kind == "stft-unet":
        return StftMaskSeparator(config)
    if config.kind == "waveform":
        return WaveformSeparator(config)
    raise MacsError(f"unknown separator kind {config.kind!r}")


def load_release_unet(model: StftMaskSeparator, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Load the release checkpoint's UNet (``model.unet.*`` -> ``unet.*``) into ``model``, all or nothing.

    The release's non-network entries (bipartition table, tau2, STFT windows, resampling kernel) and its CLAP
    weights (``clap.*``, ``model.clap.*``) are skipped. Any missing or unexpected key or wrong shape is one
    MacsError naming the first few problems; nothing is loaded then.
    """
    if not isinstance(model, StftMaskSeparator):
        raise MacsError(f"release UNet weights load into a StftMaskSeparator, not {type(model).__name__}")
    ours = model.unet.state_dict()
    theirs: dict[str, torch.Tensor] = {}
    problems: list[str] = []
    for key, value in state_dict.items():
        if key in RELEASE_IGNORED_KEYS or key.startswith(RELEASE_IGNORED_PREFIXES):
            continue
        name = key[len(RELEASE_PREFIX):] if key.startswith(RELEASE_PREFIX) else None
        if name not in ours:
            problems.append(f"unexpected {key}")
        elif not isinstance(value, torch.Tensor):
            problems.append(f"{key} is a {type(value).__name__}, not a tensor")
        elif value.shape != ours[name].shape:
            problems.append(f"{key} has shape {list(value.shape)}, the model needs {list(ours[name].shape)}")
        else:
            theirs[name] = value
    problems += [f"missing {RELEASE_PREFIX}{name}" for name in ours if f"{RELEASE_PREFIX}{name}" not in state_dict]
    if problems:
        shown = "; ".join(problems[:5])
        more = f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        raise MacsError(f"release separator weights do not fit this model ({len(problems)} problems): {shown}{more}")
    model.unet.load_state_dict(theirs, strict=True)
