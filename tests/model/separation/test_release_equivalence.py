"""The paper preset's separator computes what the authors' network computes, on the same weights.

``release_sources`` restates the release's forward pass (alxzzhou/MACS ``modules/separator.py``: ``CustomUNet``,
``UNetBlock``, ``ResBlock``, ``SEBlock``, ``MixITBaseModel.forward`` in eval mode) from its code, with functional
ops on the release's own key names; it imports nothing of ours. The same random weights go into both: a
release-format file read by our importer (``load_release_separator``).
"""

import math

import pytest
import torch
import torch.nn.functional as F
import torchaudio

from macs_model.separation.config import SeparatorConfig
from macs_model.separation.release import load_release_separator
from macs_model.separation.separator import StftMaskSeparator

M, SECONDS, RATE = 6, 8, 16000
EPS = 1e-5  # BatchNorm2d's


def _bn(x, p, key):
    return F.batch_norm(x, p[key + ".running_mean"], p[key + ".running_var"], p[key + ".weight"], p[key + ".bias"],
                        training=False, eps=EPS)


def _conv(x, p, key, **kw):
    return F.conv2d(x, p[key + ".weight"], p[key + ".bias"], **kw)


def _se(x, p, key):
    """SEBlock: y = fc(adaptive_max_pool2d(x, 1)), fc = Linear, GELU, Linear; sigmoid(y) * x."""
    y = F.adaptive_max_pool2d(x, 1).flatten(1)
    y = F.linear(F.gelu(F.linear(y, p[key + ".fc.0.weight"], p[key + ".fc.0.bias"])),
                 p[key + ".fc.2.weight"], p[key + ".fc.2.bias"])
    return y.sigmoid()[:, :, None, None] * x


def _res(x, p, key):
    """ResBlock: x = x + layers(x); x = senet(x); gelu(x)."""
    h = F.gelu(_bn(_conv(x, p, key + ".layers.0", padding=1), p, key + ".layers.1"))
    h = _bn(_conv(h, p, key + ".layers.3", padding=1), p, key + ".layers.4")
    return F.gelu(_se(x + h, p, key + ".senet"))


def _block(x, p, key, depth):
    """UNetBlock (eval: Dropout2d is the identity); depth 4 is the innermost, whose submodule is an SEBlock."""
    h = _res(F.gelu(_bn(_conv(x, p, key + ".downconv", stride=2, padding=1), p, key + ".downnorm")), p,
             key + ".downresblock")
    h = _se(h, p, key + ".submodule") if depth == 4 else _block(h, p, key + ".submodule", depth + 1)
    h = _res(h, p, key + ".upresblock")
    h = F.conv_transpose2d(h, p[key + ".upconv.weight"], p[key + ".upconv.bias"], stride=2, padding=1)
    h = F.gelu(_bn(h, p, key + ".upnorm"))
    if h.shape[2:] != x.shape[2:]:
        h = F.interpolate(h, size=x.shape[2:], mode="bilinear", align_corners=True)
    return torch.cat([x, h], dim=1)


def release_sources(state, audio):
    """MixITBaseModel.forward(audio.unsqueeze(1))['separated_audio'] on a release state dict, in eval mode."""
    p = {k[len("model.unet."):]: v for k, v in state.items() if k.startswith("model.unet.")}
    length = audio.shape[-1]
    stft = torchaudio.transforms.Spectrogram(power=None)(audio.unsqueeze(1))  # [B, 1, F, T]
    x = _conv(stft.abs().pow(2), p, "in_conv.0", padding=1)
    assert x.shape[2:] == p["in_conv.1.row_embed"].shape[1:] + p["in_conv.1.col_embed"].shape[1:]
    x = x + p["in_conv.1.row_embed"][None, :, :, None] + p["in_conv.1.col_embed"][None, :, None, :]
    x = F.gelu(_bn(x, p, "in_conv.2"))
    x = F.gelu(_bn(_conv(x, p, "in_conv.4", padding=1), p, "in_conv.5"))
    x = _block(x, p, "unet", 0)
    x = F.gelu(_bn(_conv(x, p, "out_conv.0", padding=1), p, "out_conv.1"))
    x = F.gelu(_bn(_conv(x, p, "out_conv.3", padding=1), p, "out_conv.4"))
    masks = torch.sigmoid(_conv(x, p, "out_conv.6"))
    separated = torchaudio.transforms.InverseSpectrogram()(masks * stft, length=length)  # [B, M, L]
    mixture = audio.unsqueeze(1).expand_as(separated)
    return separated + (mixture - separated.sum(dim=1, keepdim=True)) / M


def _clips(batch, seed):
    """8 s clips: a few tones and noise bursts, so every frequency band and level carries signal."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(SECONDS * RATE) / RATE
    clips = []
    for _ in range(batch):
        freqs = 100 + 3000 * torch.rand(3, generator=gen)
        tones = (torch.sin(2 * math.pi * freqs[:, None] * t) * torch.rand(3, 1, generator=gen)).sum(0)
        envelope = (torch.rand(SECONDS * 4, generator=gen) > 0.5).float().repeat_interleave(RATE // 4)
        clips.append(0.1 * tones + 0.05 * envelope * torch.randn(t.shape, generator=gen))
    return torch.stack(clips)


def _release_file_state(seed=5):
    """Release-format state with weights in a realistic range: the release's initialisation, non-zero biases and
    BatchNorm affines, and running statistics taken from clips (so the masks are neither all 0 nor all 1)."""
    torch.manual_seed(seed)
    net = StftMaskSeparator(SeparatorConfig.preset("paper"))
    with torch.no_grad():
        for name, value in net.unet.named_parameters():
            if name.endswith("bias"):
                value.normal_(0, 0.05)
            elif value.dim() == 1:
                value.normal_(1, 0.1)
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.reset_running_stats()
                module.momentum = None  # cumulative average over the calibration pass
        net.train()
        for module in net.modules():
            if isinstance(module, torch.nn.Dropout2d):
                module.eval()
        net(_clips(1, seed + 1))
    state = {"model.unet." + k: v.clone() for k, v in net.unet.state_dict().items()}
    state["unperm"] = torch.zeros(2**M - 1, 2, M)
    state["model.tau2"] = torch.tensor(math.log(1 / 0.07))
    state["model.stft.window"] = torch.hann_window(400)
    state["model.istft.window"] = torch.hann_window(400)
    state["model.resample.kernel"] = torchaudio.transforms.Resample(16000, 48000).kernel.clone()
    for prefix in ("clap.model.", "model.clap.model."):
        state[prefix + "audio_projection.0.weight"] = torch.ones(2, 2)
    return state


@pytest.mark.slow
def test_paper_separator_is_the_release_network(tmp_path):
    """In float64, so that the 1e-5 bound measures the function and not float32 rounding (which alone spreads
    the two float32 results by about 7e-5 relative on these uncalibrated random weights; float64 leaves ~5e-8)."""
    state = _release_file_state()
    path = tmp_path / "separator_FSD50K_full.pt"
    torch.save(state, path)
    ours = load_release_separator(path).separator.eval().double()
    state = {k: v.double() if v.is_floating_point() else v for k, v in state.items()}
    audio = _clips(2, 11).double()
    with torch.no_grad():
        expected = release_sources(state, audio)
        got = ours(audio)
    assert got.shape == expected.shape == (2, M, SECONDS * RATE)
    # the masks must be informative, or the comparison would say little about the network
    spread = (expected - audio[:, None] / M).norm(dim=-1) / (audio[:, None] / M).norm(dim=-1)
    assert spread.min() > 0.05, f"sources barely differ from an even split ({spread.min():.3f})"
    relative = ((got - expected).norm(dim=-1) / expected.norm(dim=-1)).max()
    assert relative < 1e-5, f"separated sources differ from the release network's by {relative:.2e} (relative)"
