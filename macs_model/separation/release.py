"""Import the authors' stage-1 checkpoint ``separator_FSD50K_full.pt`` (Hugging Face ``alxzzz/MACS``).

The file is the state dict of the release's whole Separator: its UNet under ``model.unet.*`` (our
:class:`~.separator.StftMaskSeparator` at the ``paper`` preset), the learnable contrastive temperature
``model.tau2``, STFT windows, the 16 -> 48 kHz resampling kernel, and laion-clap's CLAP twice (``clap.model.*``
and ``model.clap.model.*``). Everything is checked before anything is used: an unknown or missing key, a wrong
shape, two CLAP copies that differ, or windows / kernel that are not what our STFT and resampler compute are one
error each. Loaded with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from macs_bench.errors import MacsError
from macs_model.separation.clap import CLAP_RATE, normalise_clap_keys
from macs_model.separation.config import SeparatorConfig
from macs_model.separation.separator import StftMaskSeparator, load_release_unet

CLAP_PREFIXES = ("clap.model.", "model.clap.model.")
TEMPERATURE_KEY = "model.tau2"
BUFFERS = ("model.stft.window", "model.istft.window", "model.resample.kernel")
RELEASE_PRESETS = ("paper", "tiny")  # separator presets a release-format file may hold, tried in this order


@dataclass
class ReleaseSeparator:
    """What the release file holds, in our modules' terms."""

    separator: StftMaskSeparator
    clap_state: dict[str, torch.Tensor]
    logit_scale: float
    source: str


def read_release_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The release file's state dict (tensors only), read without unpickling code."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise MacsError(f"{path}: cannot read the release checkpoint ({type(exc).__name__}: {exc})") from exc
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise MacsError(f"{path}: not a separator state dict (expected a mapping of names to tensors)")
    return state


def split_release_state(state: dict[str, torch.Tensor], config: SeparatorConfig, where: str) -> ReleaseSeparator:
    """Check and split a release state dict into our separator, CLAP weights and temperature."""
    copies = [normalise_clap_keys({k[len(p):]: v for k, v in state.items() if k.startswith(p)})
              for p in CLAP_PREFIXES]
    present = [c for c in copies if c]
    if not present:
        raise MacsError(f"{where}: no CLAP weights (keys under {' or '.join(CLAP_PREFIXES)})")
    if len(present) == 2 and (present[0].keys() != present[1].keys()
                              or any(not torch.equal(present[0][k], present[1][k]) for k in present[0])):
        raise MacsError(f"{where}: the two CLAP copies ({' and '.join(CLAP_PREFIXES)}) differ")
    if TEMPERATURE_KEY not in state or state[TEMPERATURE_KEY].numel() != 1:
        raise MacsError(f"{where}: no scalar {TEMPERATURE_KEY} (the contrastive temperature)")
    _check_buffers(state, config, where)
    model = StftMaskSeparator(config)
    unet_state = {k: v for k, v in state.items() if not k.startswith(CLAP_PREFIXES)}
    try:
        load_release_unet(model, unet_state)
    except MacsError as exc:
        raise MacsError(f"{where}: {exc}") from None
    return ReleaseSeparator(model, present[0], float(state[TEMPERATURE_KEY]), where)


def _check_buffers(state: dict[str, torch.Tensor], config: SeparatorConfig, where: str) -> None:
    """The release's fixed tensors must be what our STFT window and resampler use."""
    import torchaudio

    expected = {
        "model.stft.window": torch.hann_window(config.n_fft),
        "model.istft.window": torch.hann_window(config.n_fft),
        "model.resample.kernel": torchaudio.transforms.Resample(config.sample_rate, CLAP_RATE).kernel,
    }
    for key in BUFFERS:
        if key not in state:
            raise MacsError(f"{where}: missing {key}")
        ours, theirs = expected[key], state[key]
        if tuple(theirs.shape) != tuple(ours.shape) or not torch.allclose(theirs.float(), ours, atol=1e-5):
            raise MacsError(f"{where}: {key} {list(theirs.shape)} is not the one this separator uses "
                            f"({list(ours.shape)}); the checkpoint was made with other STFT or resampling settings")


def release_config(state: dict[str, torch.Tensor], where: str) -> SeparatorConfig:
    """The separator preset whose UNet the state's ``model.unet.*`` shapes are: ``paper`` for the authors' file
    (the release's network at 201 x 641), ``tiny`` for the release-shaped miniatures the tests use."""
    theirs = {k[len("model.unet."):]: tuple(v.shape) for k, v in state.items() if k.startswith("model.unet.")}
    for name in RELEASE_PRESETS:
        config = SeparatorConfig.preset(name)
        with torch.device("meta"):
            ours = {k: tuple(v.shape) for k, v in StftMaskSeparator(config).unet.state_dict().items()}
        if ours == theirs:
            return config
    return SeparatorConfig.preset("paper")  # the loader then names what does not fit


def load_release_separator(path: str | os.PathLike, config: SeparatorConfig | None = None) -> ReleaseSeparator:
    """Read ``separator_FSD50K_full.pt`` into a separator (the preset its shapes fit: ``paper`` for the authors'
    file), its CLAP weights and its temperature."""
    path = Path(path)
    if not path.is_file():
        raise MacsError(f"{path}: release checkpoint not found")
    state = read_release_state(path)
    return split_release_state(state, config or release_config(state, str(path)), str(path))

