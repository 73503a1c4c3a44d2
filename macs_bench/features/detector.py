"""An independent zero-shot detector for per-source coverage: any open_clip model, named ``ARCH/PRETRAINED``
(open_clip's names, e.g. ``ViT-B-16/laion2b_s34b_b88k``; PRETRAINED may also be a local checkpoint file).

By default coverage reuses the CLIP ViT-B/32 that AIS and IIS use; a different model as detector keeps the
coverage judgement from sharing the scorer's blind spots. Its image features run through open_clip's own
evaluation transform for that model; its text tower embeds the class prompts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from macs_bench.errors import MacsError
from macs_bench.features.encoders import Encoder, ImageFile, _file_weights


class _OpenClipTransform:
    """open_clip's evaluation transform (PIL in, tensor out) on a decoded uint8 array; picklable."""

    def __init__(self, pipeline):
        self.pipeline = pipeline

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        from PIL import Image

        return self.pipeline(Image.fromarray(image))


def parse_detector(spec: str) -> tuple[str, str]:
    arch, sep, tag = spec.partition("/")
    if not sep or not arch or not tag:
        raise MacsError(f"coverage detector {spec!r}: give ARCH/PRETRAINED as open_clip names them, e.g. "
                        "ViT-B-16/laion2b_s34b_b88k")
    return arch, tag


def _text_encoder(model, arch: str):
    import open_clip

    tokenizer = open_clip.get_tokenizer(arch)

    def encode(sentences: list[str]) -> np.ndarray:
        device = next(model.parameters()).device
        with torch.inference_mode():
            return model.encode_text(tokenizer(sentences).to(device)).float().cpu().numpy()

    return encode


def open_clip_detector(spec: str, preset: str = "paper", seed: int = 0) -> Encoder:
    """The detector ``spec``: published weights (``paper``; open_clip's hub download, cached by open_clip), or
    the architecture with random weights (``random``, ``tiny``: tests and smoke runs only)."""
    import open_clip

    arch, tag = parse_detector(spec)
    if arch not in open_clip.list_models():
        raise MacsError(f"coverage detector {spec!r}: open_clip has no model {arch!r}")
    if preset != "paper":
        torch.manual_seed(seed + 7)
        model, _, pipeline = open_clip.create_model_and_transforms(arch, pretrained=None)
        weights = f"random:{seed}"
    else:
        local = Path(tag).expanduser()
        try:
            model, _, pipeline = open_clip.create_model_and_transforms(arch, pretrained=str(local) if local.is_file()
                                                                       else tag)
            if local.is_file():
                weights = _file_weights(local)
            else:
                path = open_clip.pretrained.download_pretrained(open_clip.pretrained.get_pretrained_cfg(arch, tag))
                weights = _file_weights(Path(path))
        except Exception as exc:  # open_clip and the hub raise many types (offline, unknown tag, bad file)
            raise MacsError(f"coverage detector {spec!r}: cannot load its weights ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''}); open_clip downloads them once "
                            "online, or give ARCH/path/to/checkpoint") from None
    model.eval()
    dim = model.text_projection.shape[1] if isinstance(getattr(model, "text_projection", None), torch.Tensor) \
        else int(model.encode_text(open_clip.get_tokenizer(arch)(["x"])).shape[-1])
    return Encoder("detector", "image", dim, weights, f"open_clip-{arch}-eval-transform-v1",
                   ImageFile(_OpenClipTransform(pipeline)), model, lambda m, x: m.encode_image(x),
                   text=_text_encoder(model, arch), implementation=f"open_clip:{arch}/{Path(tag).name}")
