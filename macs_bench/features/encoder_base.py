"""The ``Encoder`` type and what every encoder module shares: the image-file preprocessing wrapper, OpenAI's
normalisation, a weights file's identity and the loading of OpenAI's CLIPs through open_clip.

The paper's encoders (:mod:`macs_bench.features.encoders`, which also holds the preset factory) and the extra
ones (:mod:`macs_bench.features.encoders_extra`) both build on this module, so neither imports the other's
builders back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from macs_bench.errors import MacsError
from macs_bench.features.inputs import load_image

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


class ImageFile:
    """An image encoder's preprocessing: decode the file (:func:`load_image`), then ``transform`` the
    ``H x W x 3`` uint8 array. The scorer decodes each file once and hands the array to every encoder's
    ``transform`` (see :func:`macs_bench.features.extract.encode_sets`); picklable for DataLoader workers."""

    def __init__(self, transform: Callable[[np.ndarray], torch.Tensor]):
        self.transform = transform

    def __call__(self, path: Path) -> torch.Tensor:
        return self.transform(load_image(path))


def file_weights(path: Path, sha256: str | None = None) -> str:
    """``sha256:<hex>`` of a weights file: ``sha256`` when the caller hashed the file already for this load (the
    weights store's check), else hashed here."""
    from macs_bench.io import sha256_file

    return f"sha256:{sha256 or sha256_file(path)}"


def openai_clip(arch: str, weights_file: Path | None, seed: int | None, label: str, sha256: str | None = None
                ) -> tuple[torch.nn.Module, str]:
    """(eval-mode model, weights id) of an OpenAI CLIP through open_clip: random weights of open_clip's ``arch``
    when ``weights_file`` is None, else OpenAI's file (``sha256``: its digest when already hashed for this
    load). ``label`` names the model in the error for a wrong file."""
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
        weights = file_weights(weights_file, sha256)
    return model.eval(), weights
