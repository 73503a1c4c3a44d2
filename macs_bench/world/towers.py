"""The world's towers: image (32 x 32 frames), text (hashed bag of words) and audio (log-mel statistics).

Each is a few tens of thousands of parameters; the shipped weights come from ``tools/train_world.py``.
``load_towers`` reads a weights file into the right networks and checks it against ``SHA256SUMS``.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from macs_bench.errors import MacsError

IMAGE_SIZE = 32
EMBED_DIM = 64  # the shared image/text/audio space (the stand-in for CLIP's 512-d)
TRUNK_DIM = 128  # the image trunk's pooled features (the stand-in for Inception's 2048-d pool3)
VOCAB = 256
AUDIO_RATE = 16000
N_MELS = 48


def image_tensor(images: Sequence) -> torch.Tensor:
    """PIL images or HxWx3 uint8 arrays -> [N, 3, 32, 32] in [0, 1] (PIL bicubic resize)."""
    import numpy as np
    from PIL import Image

    out = []
    for image in images:
        img = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image, dtype=np.uint8))
        img = img.convert("RGB")
        if img.size != (IMAGE_SIZE, IMAGE_SIZE):
            img = img.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BICUBIC)
        out.append(torch.from_numpy(np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255.0))
    return torch.stack(out)


class ImageTower(nn.Module):
    """Conv trunk with global max pooling (a motif anywhere counts), then a linear projection to the joint space.

    The trunk sees each image minus its mean colour (per channel): a flat field holds no object, so a flat tint
    of any colour gets the same features as the bare ground."""

    def __init__(self):
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.GELU(), nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(64, TRUNK_DIM, 3, stride=2, padding=1), nn.GELU(), nn.AdaptiveMaxPool2d(1), nn.Flatten())
        self.proj = nn.Linear(TRUNK_DIM, EMBED_DIM)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """[N, 3, 32, 32] in [0, 1] -> [N, 128] trunk features (the Inception stand-in)."""
        return self.trunk((x - x.mean(dim=(2, 3), keepdim=True)) / 0.25)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[N, 3, 32, 32] in [0, 1] -> [N, 64] unnormalised embeddings (the CLIP stand-in)."""
        return self.proj(self.features(x))


def word_ids(text: str) -> list[int]:
    """Lower-case words hashed into the tower's vocabulary (crc32, stable across runs and machines)."""
    return [zlib.crc32(w.encode()) % VOCAB for w in text.lower().replace(",", " ").split()] or [0]


class TextTower(nn.Module):
    """Mean of word embeddings, then a small MLP: enough for class names and "The sound of <class>" prompts."""

    def __init__(self):
        super().__init__()
        self.words = nn.EmbeddingBag(VOCAB, EMBED_DIM, mode="mean")
        self.mlp = nn.Sequential(nn.Linear(EMBED_DIM, EMBED_DIM), nn.GELU(), nn.Linear(EMBED_DIM, EMBED_DIM))

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        ids = [word_ids(t) for t in texts]
        device = self.words.weight.device
        flat = torch.tensor([i for row in ids for i in row], device=device)
        offsets = torch.tensor([0] + [len(r) for r in ids[:-1]], device=device).cumsum(0)
        return self.mlp(self.words(flat, offsets))


class AudioTower(nn.Module):
    """16 kHz waveform -> log-mel -> per-band mean and std over time -> MLP. Differentiable in its input."""

    def __init__(self):
        super().__init__()
        import torchaudio

        self.mel = torchaudio.transforms.MelSpectrogram(AUDIO_RATE, n_fft=512, hop_length=256, n_mels=N_MELS)
        self.mlp = nn.Sequential(nn.Linear(2 * N_MELS, 128), nn.GELU(), nn.Linear(128, 128), nn.GELU(),
                                 nn.Linear(128, EMBED_DIM))

    def statistics(self, audio: torch.Tensor) -> torch.Tensor:
        """[N, T] -> [N, 96]: the (parameter-free) front end, cached by the trainer."""
        logmel = torch.log(self.mel(audio.float()) + 1e-5)
        return torch.cat([logmel.mean(dim=-1), logmel.std(dim=-1)], dim=-1) / 5.0

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.statistics(audio))


class Towers(nn.Module):
    """Everything in ``towers.safetensors``: the scoring image, text and audio towers."""

    def __init__(self):
        super().__init__()
        self.image = ImageTower()
        self.text = TextTower()
        self.audio = AudioTower()


class ClapPair(nn.Module):
    """Everything in ``clap.safetensors``: the CLAP-like audio and text towers."""

    def __init__(self):
        super().__init__()
        self.audio = AudioTower()
        self.text = TextTower()


def state_of(module: nn.Module) -> dict[str, torch.Tensor]:
    """The module's learned tensors (the mel filterbank is rebuilt, not stored)."""
    return {k: v.detach().contiguous() for k, v in module.state_dict().items() if not _rebuilt(k)}


def _rebuilt(key: str) -> bool:
    """Buffers of the mel front end: fixed functions of its settings, rebuilt on construction."""
    return key.endswith("spectrogram.window") or "mel_scale.fb" in key


def load_module(module: nn.Module, path: Path) -> nn.Module:
    """Fill ``module`` from a safetensors file, verified against the shipped ``SHA256SUMS``; eval, frozen.
    The file is hashed once: its sha256 is kept as ``module.weights_sha256``."""
    from safetensors.torch import load_file

    from macs_bench.world.checksums import verify

    digest = verify(path)
    try:
        state = load_file(str(path))
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same problem
        raise MacsError(f"{path}: cannot read world weights ({type(exc).__name__}: {exc})") from None
    missing, unexpected = module.load_state_dict(state, strict=False)
    missing = [k for k in missing if not _rebuilt(k)]
    if missing or unexpected:
        raise MacsError(f"{path}: world weights do not fit ({len(missing)} missing, {len(unexpected)} unexpected)")
    module.eval().requires_grad_(False)
    module.weights_sha256 = digest
    return module


def load_towers(path: Path | None = None) -> Towers:
    from macs_bench.world import TOWERS_FILE, WORLD_DIR

    return load_module(Towers(), Path(path) if path else WORLD_DIR / TOWERS_FILE)


def load_clap_pair(path: Path | None = None) -> ClapPair:
    from macs_bench.world import CLAP_FILE, WORLD_DIR

    return load_module(ClapPair(), Path(path) if path else WORLD_DIR / CLAP_FILE)


def normalise(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x, dim=-1)
