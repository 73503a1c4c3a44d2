"""Configuration of the stage-1 separator, with named presets and a JSON-safe form to save beside weights."""

from __future__ import annotations

from dataclasses import dataclass

from macs_bench.errors import MacsError
from macs_model.named_config import NamedConfig

KINDS = ("stft-unet", "waveform")
SPECTROGRAMS = ("power", "magnitude")


@dataclass(frozen=True)
class SeparatorConfig(NamedConfig):
    """Shape of the separator; the defaults are the paper / release settings (``PRESETS["paper"]``, the preset
    that loads the release's ``separator_FSD50K_full.pt``; every "stft-unet" preset is the release's network).

    ``kind`` picks the network: "stft-unet" (the paper's spectrogram-mask UNet) or "waveform" (the Table 4
    MixIT-style ablation, a Conv-TasNet-like encoder / dilated-conv mask net / decoder).
    ``spectrogram`` is what the UNet sees: "power" |X|^2 as the release feeds it, or "magnitude" |X| as the
    paper writes. ``levels`` is the UNet depth for "stft-unet" and the dilated blocks per repeat for "waveform".
    ``stem_width`` is the channel count of the UNet's first 3x3 conv (6 in the release). ``wave_kernel`` (samples,
    stride half of it) and ``wave_repeats`` only shape the waveform separator. ``clip_seconds`` is the training
    clip length; it sizes the learned time embedding, which is resampled for other lengths, so any length runs.
    """

    sample_rate: int = 16000
    clip_seconds: float = 8.0
    n_fft: int = 400
    hop: int = 200
    num_sources: int = 6
    base_width: int = 64
    levels: int = 5
    dropout: float = 0.5
    kind: str = "stft-unet"
    spectrogram: str = "power"
    stem_width: int = 6
    wave_kernel: int = 16
    wave_repeats: int = 3

    def __post_init__(self) -> None:
        self.check_positive_ints("sample_rate", "n_fft", "hop", "num_sources", "base_width", "levels", "stem_width",
                                 "wave_kernel", "wave_repeats")
        for name in ("clip_seconds", "dropout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise MacsError(f"separator config: {name} must be a number, got {value!r}")
            object.__setattr__(self, name, float(value))
        if self.clip_seconds <= 0:
            raise MacsError(f"separator config: clip_seconds must be positive, got {self.clip_seconds}")
        if not 0.0 <= self.dropout < 1.0:
            raise MacsError(f"separator config: dropout must be in [0, 1), got {self.dropout}")
        if self.kind not in KINDS:
            raise MacsError(f"separator config: unknown kind {self.kind!r} (known: {', '.join(KINDS)})")
        if self.spectrogram not in SPECTROGRAMS:
            raise MacsError(f"separator config: unknown spectrogram {self.spectrogram!r} "
                            f"(known: {', '.join(SPECTROGRAMS)})")
        if self.hop > self.n_fft:
            raise MacsError(f"separator config: hop {self.hop} is longer than n_fft {self.n_fft}")
        if self.wave_kernel < 2 or self.wave_kernel % 2:
            raise MacsError(f"separator config: wave_kernel must be even and at least 2, got {self.wave_kernel}")

    @property
    def n_freq(self) -> int:
        """Frequency bins of the one-sided STFT."""
        return self.n_fft // 2 + 1

    @property
    def clip_samples(self) -> int:
        """Samples in one training clip."""
        return round(self.clip_seconds * self.sample_rate)

    @property
    def clip_frames(self) -> int:
        """STFT frames of one training clip (centred STFT: one frame per hop, plus one)."""
        return self.clip_samples // self.hop + 1

    @property
    def unet_widths(self) -> tuple[int, ...]:
        """Channels per UNet level: doubling from base_width, capped at 8x (64, 128, 256, 512, 512 in the paper)."""
        return tuple(min(self.base_width * 2**i, self.base_width * 8) for i in range(self.levels))

    KIND = "separator"

    @classmethod
    def presets(cls) -> dict[str, "SeparatorConfig"]:
        return PRESETS


PRESETS: dict[str, SeparatorConfig] = {
    "paper": SeparatorConfig(),
    "tiny": SeparatorConfig(clip_seconds=2.0, n_fft=256, hop=128, base_width=8, levels=3, dropout=0.1,
                            stem_width=4),
    "paper-waveform": SeparatorConfig(kind="waveform", base_width=128, levels=8, wave_repeats=3, wave_kernel=16),
    "tiny-waveform": SeparatorConfig(kind="waveform", clip_seconds=2.0, base_width=16, levels=3, wave_repeats=1,
                                     wave_kernel=16, dropout=0.1),
}
