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
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from macs_bench.errors import MacsError
from macs_bench.features.inputs import AUDIO_RATE, load_audio, load_image
from macs_bench.features.registry import EncoderPreset, get_preset, register_preset

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class Encoder:
    """A network plus the preprocessing that turns one file into its input tensor."""

    name: str  # inception | clip | wav2clip
    modality: str  # image | audio
    dim: int
    weights: str  # "sha256:<hex>" of the weights file, or "random:<seed>"
    preprocess_version: str
    preprocess: Callable[[Path], torch.Tensor]
    model: torch.nn.Module
    forward: Callable[[torch.nn.Module, torch.Tensor], torch.Tensor]
    # False when the network normalises over the whole batch (wav2clip's spectrogram standardisation):
    # each input then runs alone, so a feature never depends on its batch-mates
    batchable: bool = True
    # a text tower in this encoder's space (sentences -> embeddings) for per-source coverage; None: the
    # network's own (CLIP's encode_text), see macs_bench.features.encoders_extra.text_tower
    text: Callable[[list[str]], np.ndarray] | None = None
    # the code that runs the weights, when it matters for the numbers (DINOv2's position interpolation)
    implementation: str = ""

    @property
    def id(self) -> str:
        base = f"{self.name}/{self.weights}/{self.preprocess_version}"
        return f"{base}/{self.implementation}" if self.implementation else base

    def to(self, device: torch.device) -> "Encoder":
        self.model.to(device)
        return self

    @torch.inference_mode()
    def encode(self, batch: list[torch.Tensor], device: torch.device) -> np.ndarray:
        """Features for preprocessed inputs; audio of unequal lengths is run length by length."""
        out: list[np.ndarray | None] = [None] * len(batch)
        by_shape: dict[tuple, list[int]] = {}
        for i, x in enumerate(batch):
            by_shape.setdefault(tuple(x.shape) if self.batchable else (i,), []).append(i)
        for indices in by_shape.values():
            x = torch.stack([batch[i] for i in indices]).to(device)
            feats = self.forward(self.model, x).float().cpu().numpy()
            for i, f in zip(indices, feats):
                out[i] = f
        return np.stack(out).astype(np.float32)


# -- preprocessing ----------------------------------------------------------------------------------------

class ImageFile:
    """An image encoder's preprocessing: decode the file (:func:`load_image`), then ``transform`` the
    ``H x W x 3`` uint8 array. The scorer decodes each file once and hands the array to every encoder's
    ``transform`` (see :func:`macs_bench.features.extract.encode_sets`); picklable for DataLoader workers."""

    def __init__(self, transform: Callable[[np.ndarray], torch.Tensor]):
        self.transform = transform

    def __call__(self, path: Path) -> torch.Tensor:
        return self.transform(load_image(path))


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

def _file_weights(path: Path) -> str:
    from macs_bench.io import sha256_file

    return f"sha256:{sha256_file(path)}"


def _torch_load(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a bad or unsafe file
        raise MacsError(f"{path}: cannot load weights safely ({exc})") from None


def inception(weights_file: Path | None, *, seed: int | None = None) -> Encoder:
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
        return Encoder("inception", "image", 2048, _file_weights(weights_file), "cleanfid-clean-299-v1",
                       inception_input, model, lambda m, x: m(x))
    import torchvision

    torch.manual_seed(seed or 0)
    net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=True)
    net.fc = torch.nn.Identity()
    net.eval()
    return Encoder("inception", "image", 2048, f"random:{seed or 0}", "cleanfid-clean-299-v1", inception_input,
                   net, lambda m, x: m((x - 128.0) / 128.0))


def openai_clip(arch: str, weights_file: Path | None, seed: int | None, label: str) -> tuple[torch.nn.Module, str]:
    """(eval-mode model, weights id) of an OpenAI CLIP through open_clip: random weights of open_clip's ``arch``
    when ``weights_file`` is None, else OpenAI's file. ``label`` names the model in the error for a wrong file."""
    import open_clip

    if weights_file is None:
        torch.manual_seed(seed or 0)
        # OpenAI's CLIP was trained with QuickGELU; open_clip's configs must be told so
        model = open_clip.create_model(arch, pretrained=None, force_quick_gelu=True)
        weights = f"random:{seed or 0}"
    else:
        # OpenAI ships its CLIPs as TorchScript archives: open_clip reads the state dict (torch.jit.load, no
        # pickled code) and rebuilds the network; a plain state-dict file works too
        try:
            model = open_clip.load_openai_model(str(weights_file), precision="fp32", device="cpu")
        except Exception as exc:  # open_clip raises RuntimeError/KeyError for a wrong file
            raise MacsError(f"{weights_file}: not OpenAI {label} weights ({exc})") from None
        weights = _file_weights(weights_file)
    return model.eval(), weights


def clip(weights_file: Path | None, *, seed: int | None = None) -> Encoder:
    """CLIP ViT-B/32 image tower through open_clip (OpenAI weights), 512-d unnormalised embeddings."""
    model, weights = openai_clip("ViT-B-32", weights_file, seed, "CLIP ViT-B/32")
    return Encoder("clip", "image", 512, weights, "cleanfid-clip-224-v1", clip_input, model,
                   lambda m, x: m.encode_image(x))


def wav2clip(weights_file: Path | None, *, seed: int | None = None) -> Encoder:
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
        weights = _file_weights(weights_file)
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


def tiny(name: str, seed: int = 0) -> Encoder:
    """Small random networks in the real encoders' roles (fast smoke runs and tests). Their features are 32-d:
    a 2048-d Frechet distance alone takes about 40 s on two CPU cores (scipy's sqrtm)."""
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


def expected_weights(name: str) -> str | None:
    """``sha256:<hex>`` of the published weights for encoder ``name`` (pinned, or recorded on first use)."""
    from macs_bench import weights as weight_store

    digest = weight_store.expected_sha256(WEIGHT_NAMES[name])
    return f"sha256:{digest}" if digest else None
BUILDERS = {"inception": inception, "clip": clip, "wav2clip": wav2clip}


def _builders() -> dict[str, Callable[..., Encoder]]:
    from macs_bench.features.encoders_extra import BUILDERS_EXTRA

    return {**BUILDERS, **BUILDERS_EXTRA}


def _paper(names: list[str], given: dict[str, Path], seed: int) -> dict[str, Encoder]:
    """Published weights: the user's own files in ``given``, else the ``macs-bench weights`` cache (verified)."""
    from macs_bench import weights as weight_store

    builders = _builders()
    built = {}
    for name in names:
        build = builders[name]
        if name in given:
            built[name] = build(Path(given[name]))  # the user's own file: recorded, not required to be published
            continue
        path = weight_store.path(WEIGHT_NAMES[name])
        built[name] = build(path)
        if expected_weights(name) not in (None, built[name].weights):  # a full hash, beyond the size/mtime check
            raise MacsError(f"{path}: corrupt weights ({built[name].weights}, expected {expected_weights(name)}); "
                            f"fetch them again with: macs-bench weights fetch --overwrite {WEIGHT_NAMES[name]}")
    return built


def _random(names: list[str], given: dict[str, Path], seed: int) -> dict[str, Encoder]:
    builders = _builders()
    return {name: builders[name](None, seed=seed) for name in names}


def _tiny(names: list[str], given: dict[str, Path], seed: int) -> dict[str, Encoder]:
    from macs_bench.features.encoders_extra import tiny_extra

    return {name: tiny(name, seed) if name in BUILDERS else tiny_extra(name, seed) for name in names}


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
    builders = _builders()
    names = list(names or PAPER_ENCODERS)
    unknown = [n for n in names if n not in builders]
    if unknown:
        raise MacsError(f"unknown encoder {unknown[0]!r}; known: {', '.join(builders)}")
    if spec.provides is not None:
        missing = [n for n in names if n not in spec.provides]
        if missing:
            raise MacsError(f"the {preset} preset has no {missing[0]!r} encoder; it stands in for "
                            f"{', '.join(spec.provides)} only")
    return spec.build(names, dict(weights or {}), seed)
