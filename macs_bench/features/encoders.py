"""The scoring encoders: Inception (FID, KID), CLIP ViT-B/32 (CLIP-FID, IIS, AIS) and wav2clip (AIS).

Each encoder has an ``id`` that names the network, its weights (file hash, or ``random`` with a seed) and its
preprocessing version; the feature cache and the result files use it, so features from different weights or
preprocessing are never mixed. Preprocessing runs on CPU (in DataLoader workers), the forward pass on the
device.

Random weights are only built when asked for by name (the ``tiny`` and ``random`` presets): the ``paper``
preset loads the published weights, and a missing file is an error that says how to fetch it.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from macs_bench.errors import MacsError
from macs_bench.features import encoders_extra
from macs_bench.features.encoder_base import OPENAI_MEAN, OPENAI_STD, Encoder, ImageFile, file_weights, openai_clip
from macs_bench.features.inputs import AUDIO_RATE, load_audio
from macs_bench.features.registry import EncoderPreset, get_preset, register_preset

# -- preprocessing ----------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _cleanfid_resizer():
    from cleanfid.resize import make_resizer

    return make_resizer("PIL", False, "bicubic", (299, 299))


def inception_transform(image: np.ndarray) -> torch.Tensor:
    """clean-fid 'clean' mode: PIL bicubic resize to 299 in float32, no re-quantisation, values 0..255."""
    resized = _cleanfid_resizer()(image)
    return torch.from_numpy(np.ascontiguousarray(resized.transpose(2, 0, 1)))


@functools.lru_cache(maxsize=None)
def _clip_resize_pipeline():
    from torchvision import transforms

    return transforms.Compose([transforms.Resize(224, interpolation=transforms.InterpolationMode.BICUBIC),
                               transforms.CenterCrop(224)])


def clip_resize(image: np.ndarray) -> np.ndarray:
    """clean-fid's CLIP resize (``cleanfid.clip_features.img_preprocess_clip``, whose module needs OpenAI's
    ``clip`` package to import): PIL bicubic resize of the short side to 224, centre crop, uint8."""
    from PIL import Image

    resized = _clip_resize_pipeline()(Image.fromarray(image.astype(np.uint8)).convert("RGB"))
    return np.asarray(resized).clip(0, 255).astype(np.uint8)


def clip_transform(image: np.ndarray) -> torch.Tensor:
    """:func:`clip_resize`, then OpenAI's normalisation: the numbers clean-fid feeds CLIP for CLIP-FID."""
    x = torch.from_numpy(clip_resize(image).transpose(2, 0, 1).copy()).float() / 255.0
    mean = torch.tensor(OPENAI_MEAN).view(3, 1, 1)
    std = torch.tensor(OPENAI_STD).view(3, 1, 1)
    return (x - mean) / std


def audio_input(path: Path) -> torch.Tensor:
    return torch.from_numpy(load_audio(path))


def tiny_transform(image: np.ndarray) -> torch.Tensor:
    from PIL import Image

    img = Image.fromarray(image).resize((32, 32), Image.BICUBIC)
    return torch.from_numpy(np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255.0)


inception_input = ImageFile(inception_transform)
clip_input = ImageFile(clip_transform)
tiny_image_input = ImageFile(tiny_transform)


# -- builders ---------------------------------------------------------------------------------------------

def _torch_load(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a bad or unsafe file
        raise MacsError(f"{path}: cannot load weights safely ({exc})") from None


def inception(weights_file: Path | None, *, seed: int | None = None, sha256: str | None = None) -> Encoder:
    """TF-Inception (clean-fid's TorchScript ``inception-2015-12-05.pt``), 2048-d pool features.

    With ``seed`` instead of a file: torchvision's Inception-v3 (same layer layout and 2048-d output) with
    random weights, for tests and benchmarks only."""
    if weights_file is not None:
        if weights_file.name != "inception-2015-12-05.pt":
            raise MacsError(f"{weights_file}: the Inception weights file must be named inception-2015-12-05.pt")
        from cleanfid.inception_torchscript import InceptionV3W

        try:
            model = InceptionV3W(str(weights_file.parent), download=False).eval()
        except RuntimeError as exc:
            raise MacsError(f"{weights_file}: not a TorchScript Inception ({exc})") from None
        return Encoder("inception", "image", 2048, file_weights(weights_file, sha256), "cleanfid-clean-299-v1",
                       inception_input, model, lambda m, x: m(x))
    import torchvision

    torch.manual_seed(seed or 0)
    net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=True)
    net.fc = torch.nn.Identity()
    net.eval()
    return Encoder("inception", "image", 2048, f"random:{seed or 0}", "cleanfid-clean-299-v1", inception_input,
                   net, lambda m, x: m((x - 128.0) / 128.0))


def clip(weights_file: Path | None, *, seed: int | None = None, sha256: str | None = None) -> Encoder:
    """CLIP ViT-B/32 image tower through open_clip (OpenAI weights), 512-d unnormalised embeddings."""
    model, weights = openai_clip("ViT-B-32", weights_file, seed, "CLIP ViT-B/32", sha256)
    return Encoder("clip", "image", 512, weights, "cleanfid-clip-224-v1", clip_input, model,
                   lambda m, x: m.encode_image(x))


def wav2clip(weights_file: Path | None, *, seed: int | None = None, sha256: str | None = None) -> Encoder:
    """wav2clip (ResNet audio encoder + MLP head into CLIP ViT-B/32 space) on 16 kHz waveforms, 512-d."""
    from wav2clip.model.encoder import MLPLayers, ResNetExtractor

    if weights_file is None:
        torch.manual_seed(seed or 0)
        model = ResNetExtractor(checkpoint=None, scenario="frozen", transform=False)
        model.transform = MLPLayers(units=[512, 512, 512], dropout=0.1)
        weights = f"random:{seed or 0}"
    else:
        checkpoint = _torch_load(weights_file)
        try:
            model = ResNetExtractor(checkpoint=checkpoint, scenario="frozen", transform=True)
        except (RuntimeError, KeyError) as exc:
            raise MacsError(f"{weights_file}: not Wav2CLIP weights ({exc})") from None
        weights = file_weights(weights_file, sha256)
    model.eval()
    return Encoder("wav2clip", "audio", 512, weights, f"wave-{AUDIO_RATE}-mono-v1", audio_input, model,
                   lambda m, x: m(x), batchable=False)


class _TinyImage(torch.nn.Module):
    """A small random CNN. ``pooled`` (the Inception stand-in) ends in non-negative average-pooled ReLU features
    as Inception's pool layer does; the CLIP stand-in ends in a linear projection. Different layouts and seeds,
    so swapping their features changes every number."""

    def __init__(self, dim: int, pooled: bool = False):
        super().__init__()
        if pooled:
            self.net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 5, stride=2), torch.nn.ReLU(),
                                           torch.nn.Conv2d(16, dim, 3, stride=2), torch.nn.ReLU(),
                                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
        else:
            self.net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.GELU(),
                                           torch.nn.Conv2d(8, 16, 3, stride=2), torch.nn.GELU(),
                                           torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten(),
                                           torch.nn.Linear(64, dim))

    def forward(self, x):
        return self.net(x)


class _TinyAudio(torch.nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.proj = torch.nn.Linear(64, dim)

    def forward(self, x):
        frames = x[:, : x.shape[1] // 256 * 256].reshape(x.shape[0], -1, 256)
        spectrum = torch.fft.rfft(frames, dim=-1).abs()[..., :64].mean(dim=1)
        return self.proj(torch.log1p(spectrum))


TINY_DIM = 32
TINY_SEED_OFFSET = {"inception": 0, "clip": 1, "wav2clip": 2}
TINY_EXTRA_OFFSET = {"clip_l336": 3, "dinov2": 4}


def tiny(name: str, seed: int = 0) -> Encoder:
    """Small random networks in the real encoders' roles (fast smoke runs and tests), each its own network and
    seed. The paper's three give 32-d features (a 2048-d Frechet distance alone takes about 40 s on two CPU cores,
    scipy's sqrtm); the extra encoders' stand-ins are a little wider."""
    if name in TINY_EXTRA_OFFSET:
        offset = TINY_EXTRA_OFFSET[name]
        torch.manual_seed(seed + offset)
        net = _TinyImage(TINY_DIM + 8 * offset, pooled=name == "dinov2").eval()
        return Encoder(name, "image", TINY_DIM + 8 * offset, f"tiny-random:{seed}", "tiny-32-v2",
                       tiny_image_input, net, lambda m, x: m(x))
    torch.manual_seed(seed + TINY_SEED_OFFSET.get(name, 0))
    if name in ("inception", "clip"):
        return Encoder(name, "image", TINY_DIM, f"tiny-random:{seed}", "tiny-32-v2", tiny_image_input,
                       _TinyImage(TINY_DIM, pooled=name == "inception").eval(), lambda m, x: m(x))
    if name == "wav2clip":  # shares the tiny CLIP's width, as wav2clip shares CLIP's space
        return Encoder("wav2clip", "audio", TINY_DIM, f"tiny-random:{seed}", f"wave-{AUDIO_RATE}-mono-v1",
                       audio_input, _TinyAudio(TINY_DIM).eval(), lambda m, x: m(x))
    raise ValueError(name)


WEIGHT_NAMES = {"inception": "inception-2015-12-05", "clip": "clip-vit-b-32-openai", "wav2clip": "wav2clip",
                "clip_l336": "clip-vit-l-14-336-openai", "dinov2": "dinov2-vit-l-14"}
PAPER_ENCODERS = ("inception", "clip", "wav2clip")


def published_hash(name: str) -> str | None:
    """``sha256:<hex>`` of the published weights of encoder ``name`` when the registry pins one, else None."""
    from macs_bench import weights as weight_store

    spec = weight_store.WEIGHTS[WEIGHT_NAMES[name]]
    return f"sha256:{spec.sha256}" if spec.sha256 else None


BUILDERS: dict[str, Callable[..., Encoder]] = {"inception": inception, "clip": clip, "wav2clip": wav2clip,
                                               "clip_l336": encoders_extra.clip_l336, "dinov2": encoders_extra.dinov2}


def _paper(names: list[str], given: dict[str, Path], seed: int) -> dict[str, Encoder]:
    """Published weights: the user's own files in ``given``, else the ``macs-bench weights`` cache, checked by a
    full hash that the encoder's id records (one hash per load)."""
    from macs_bench import weights as weight_store

    built = {}
    for name in names:
        build = BUILDERS[name]
        if name in given:
            built[name] = build(Path(given[name]))  # the user's own file: recorded, not required to be published
            continue
        path, digest = weight_store.path_and_sha256(WEIGHT_NAMES[name])
        built[name] = build(path, sha256=digest)
    return built


def _random(names: list[str], given: dict[str, Path], seed: int) -> dict[str, Encoder]:
    return {name: BUILDERS[name](None, seed=seed) for name in names}


def _tiny(names: list[str], given: dict[str, Path], seed: int) -> dict[str, Encoder]:
    return {name: tiny(name, seed) for name in names}


register_preset(EncoderPreset("paper", _paper, "published weights (comparable with the paper)"))
register_preset(EncoderPreset("random", _random, "the real architectures with random weights (smoke tests)"))
register_preset(EncoderPreset("tiny", _tiny, "small random networks (fast smoke tests)"))


def build_encoders(preset: str = "paper", weights: dict[str, Path] | None = None, seed: int = 0,
                   names: tuple[str, ...] | list[str] | None = None) -> dict[str, Encoder]:
    """The scoring encoders ``names`` (default: the paper's three) from a registered preset
    (:mod:`macs_bench.features.registry`). ``paper``: published weights (explicit files in ``weights``, else the
    ``macs-bench weights`` cache); ``random``: the real architectures with random weights; ``tiny``: small
    random networks; other presets are registered by the packages that bring them (the synthetic world's
    ``world``, when ``macs_bench.world.scoring`` is imported). Only ``paper`` gives numbers comparable with the
    paper."""
    spec = get_preset(preset)
    names = list(names or PAPER_ENCODERS)
    unknown = [n for n in names if n not in BUILDERS]
    if unknown:
        raise MacsError(f"unknown encoder {unknown[0]!r}; known: {', '.join(BUILDERS)}")
    if spec.provides is not None:
        missing = [n for n in names if n not in spec.provides]
        if missing:
            raise MacsError(f"the {preset} preset has no {missing[0]!r} encoder; it stands in for "
                            f"{', '.join(spec.provides)} only")
    return spec.build(names, dict(weights or {}), seed)
