"""The encoders of the metrics beyond the paper: CLIP ViT-L/14 at 336 px (CMMD), DINOv2 ViT-L/14 (FD-DINOv2,
precision/recall on DINOv2), and CLIP ViT-B/32's text tower (the zero-shot detector of per-source coverage).

Preprocessing follows each metric's reference implementation:
- CMMD (google-research ``cmmd/io_util.py``): centre-crop to a square, PIL bicubic resize to 336, values /255,
  OpenAI's normalisation; the embeddings are L2-normalised at metric time.
- FD-DINOv2 (layer6ai-labs ``dgm-eval``, ``DINOv2Encoder``): torchvision bicubic resize to 224 x 224 (no crop),
  ImageNet normalisation; the feature is the CLS token after the final LayerNorm (``pooler_output`` of
  transformers' ``Dinov2Model``, which is the hub model's ``forward``), with the hub model's position-embedding
  interpolation (:func:`hub_interpolate_pos_encoding`; the encoder id names this implementation).
Random weights are built only on request (``seed``), as for the paper's encoders.
"""

from __future__ import annotations

import functools
import math
import types
from pathlib import Path

import numpy as np
import torch

from macs_bench.errors import MacsError
from macs_bench.features.encoders import (OPENAI_MEAN, OPENAI_STD, Encoder, ImageFile, _file_weights, openai_clip,
                                         tiny_image_input)
from macs_bench.features.inputs import load_image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_L336_DIM = 768
DINOV2_DIM = 1024
# facebook/dinov2-large's config.json (ViT-L/14, 24 blocks, LayerScale, GELU MLP)
DINOV2_LARGE = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                    patch_size=14, image_size=518, layerscale_value=1.0, layer_norm_eps=1e-6)


def cmmd_transform(image: np.ndarray) -> torch.Tensor:
    """CMMD's reference preprocessing: centre square crop, PIL bicubic to 336, /255, OpenAI normalisation."""
    from PIL import Image

    image = Image.fromarray(image)
    w, h = image.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    image = image.crop((left, top, left + side, top + side)).resize((336, 336), resample=Image.BICUBIC)
    x = torch.from_numpy(np.asarray(image, dtype=np.float32).transpose(2, 0, 1).copy()) / 255.0
    return (x - torch.tensor(OPENAI_MEAN).view(3, 1, 1)) / torch.tensor(OPENAI_STD).view(3, 1, 1)


@functools.lru_cache(maxsize=None)
def _dinov2_pipeline():
    from torchvision import transforms

    return transforms.Compose([transforms.Resize((224, 224), transforms.InterpolationMode.BICUBIC),
                               transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def dinov2_transform(image: np.ndarray) -> torch.Tensor:
    """dgm-eval's DINOv2 preprocessing: bicubic resize to 224 x 224, to [0, 1], ImageNet normalisation (the
    torchvision pipeline is built once per process, not per image)."""
    from PIL import Image

    return _dinov2_pipeline()(Image.fromarray(image))


cmmd_input = ImageFile(cmmd_transform)
dinov2_input = ImageFile(dinov2_transform)

# the hub model's interpolation settings (``dinov2_vitl14``: interpolate_offset 0.1, interpolate_antialias False)
HUB_INTERPOLATE_OFFSET = 0.1
DINOV2_IMPLEMENTATION = "transformers-Dinov2Model+hub-pos-interp-v1"


def hub_interpolate_pos_encoding(self, embeddings: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """facebookresearch/dinov2's ``DinoVisionTransformer.interpolate_pos_encoding`` on transformers'
    ``Dinov2Embeddings`` (bound as a method): bicubic, no antialias, with the *scale factor*
    ``(n + 0.1) / M`` (the hub's "historical kludge"), which moves the sampling grid; transformers passes the
    output size instead, so its embeddings at 224 px differ (about 1e-3 relative on the CLS feature)."""
    pos = self.position_embeddings
    n_pos = pos.shape[1] - 1
    if embeddings.shape[1] - 1 == n_pos and height == width:
        return pos
    dtype = pos.dtype
    pos = pos.float()
    dim = embeddings.shape[-1]
    patch_h, patch_w = self.patch_embeddings.patch_size
    rows, cols = height // patch_h, width // patch_w
    side = int(math.sqrt(n_pos))
    grid = torch.nn.functional.interpolate(
        pos[:, 1:].reshape(1, side, side, dim).permute(0, 3, 1, 2), mode="bicubic", antialias=False,
        scale_factor=((rows + HUB_INTERPOLATE_OFFSET) / side, (cols + HUB_INTERPOLATE_OFFSET) / side))
    if tuple(grid.shape[-2:]) != (rows, cols):
        raise MacsError(f"DINOv2 position embeddings: {side} x {side} grid interpolated to "
                        f"{tuple(grid.shape[-2:])}, expected {(rows, cols)}")
    grid = grid.permute(0, 2, 3, 1).reshape(1, -1, dim)
    return torch.cat((pos[:, :1], grid), dim=1).to(dtype)


def clip_l336(weights_file: Path | None, *, seed: int | None = None) -> Encoder:
    """OpenAI CLIP ViT-L/14 at 336 px (``ViT-L-14-336px.pt``) through open_clip, 768-d image embeddings."""
    model, weights = openai_clip("ViT-L-14-336", weights_file, seed, "CLIP")
    if weights_file is not None and (model.visual.image_size != (336, 336) or
                                     model.visual.output_dim != CLIP_L336_DIM):
        raise MacsError(f"{weights_file}: not CLIP ViT-L/14 at 336 px (input {model.visual.image_size}, "
                        f"{model.visual.output_dim}-d)")
    return Encoder("clip_l336", "image", CLIP_L336_DIM, weights, "cmmd-crop-336-v1", cmmd_input, model,
                   lambda m, x: m.encode_image(x))


def dinov2(weights_dir: Path | None, *, seed: int | None = None) -> Encoder:
    """DINOv2 ViT-L/14 through transformers' ``Dinov2Model``; ``weights_dir`` holds ``config.json`` and
    ``model.safetensors`` (the registry's facebook/dinov2-large snapshot, or your own copy)."""
    from transformers import Dinov2Config, Dinov2Model

    if weights_dir is None:
        torch.manual_seed(seed or 0)
        model = Dinov2Model(Dinov2Config(**DINOV2_LARGE))
        weights = f"random:{seed or 0}"
    else:
        weights_dir = Path(weights_dir)
        file = weights_dir / "model.safetensors"
        if not (weights_dir / "config.json").is_file() or not file.is_file():
            raise MacsError(f"{weights_dir}: DINOv2 weights need config.json and model.safetensors in one folder")
        try:
            model = Dinov2Model.from_pretrained(str(weights_dir), local_files_only=True)
        except Exception as exc:  # transformers raises several types for a wrong folder
            raise MacsError(f"{weights_dir}: not DINOv2 weights ({type(exc).__name__}: {exc})") from None
        blob = file.resolve().name  # a hub snapshot links to a blob named by the file's sha256
        weights = f"sha256:{blob}" if len(blob) == 64 and all(c in "0123456789abcdef" for c in blob) \
            else _file_weights(file)
    model.embeddings.interpolate_pos_encoding = types.MethodType(hub_interpolate_pos_encoding, model.embeddings)
    model.eval()
    dim = model.config.hidden_size
    return Encoder("dinov2", "image", dim, weights, "dgmeval-224-v1", dinov2_input, model,
                   lambda m, x: m(pixel_values=x).pooler_output, implementation=DINOV2_IMPLEMENTATION)


class _TinyText(torch.nn.Module):
    """Bytes -> mean embedding -> linear: a random text tower in the tiny CLIP's space."""

    def __init__(self, dim: int):
        super().__init__()
        self.embed = torch.nn.EmbeddingBag(256, 48, mode="mean")
        self.proj = torch.nn.Linear(48, dim)

    def forward(self, sentences: list[str]) -> torch.Tensor:
        ids = [torch.tensor(list(s.encode()), dtype=torch.long) for s in sentences]
        offsets = torch.tensor([0, *np.cumsum([len(i) for i in ids[:-1]])], dtype=torch.long)
        return self.proj(self.embed(torch.cat(ids), offsets))


def tiny_extra(name: str, seed: int = 0) -> Encoder:
    """Small random stand-ins for the extra encoders (``tiny`` preset): each its own network and seed."""
    from macs_bench.features.encoders import TINY_DIM, _TinyImage

    offsets = {"clip_l336": 3, "dinov2": 4}
    if name not in offsets:
        raise ValueError(name)
    torch.manual_seed(seed + offsets[name])
    net = _TinyImage(TINY_DIM + 8 * offsets[name], pooled=name == "dinov2").eval()
    return Encoder(name, "image", TINY_DIM + 8 * offsets[name], f"tiny-random:{seed}", "tiny-32-v2",
                   tiny_image_input, net, lambda m, x: m(x))


def text_tower(encoder: Encoder, seed: int = 0):
    """A function from sentences to embeddings in ``encoder``'s space: ``encoder.text`` when set (any joint
    image-text model), else CLIP's own text tower (open_clip's tokenizer), or for the tiny CLIP a random
    byte-level tower."""
    if encoder.text is not None:
        return encoder.text
    if encoder.weights.startswith("tiny-random"):
        torch.manual_seed(seed + 5)
        tower = _TinyText(encoder.dim).eval()
        return lambda sentences: _run(tower, sentences)
    import open_clip

    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    model = encoder.model

    def encode(sentences: list[str]) -> np.ndarray:
        device = next(model.parameters()).device
        with torch.inference_mode():
            return model.encode_text(tokenizer(sentences).to(device)).float().cpu().numpy()

    return encode


def _run(tower: torch.nn.Module, sentences: list[str]) -> np.ndarray:
    with torch.inference_mode():
        return tower(sentences).numpy()


BUILDERS_EXTRA = {"clip_l336": clip_l336, "dinov2": dinov2}
