"""Frozen LAION-CLAP for stage 1 (paper §3.2): 16 kHz audio and text prompts in, unit-norm 512-d embeddings out.

The paper's CLAP is laion-clap's HTSAT-tiny + RoBERTa, checkpoint ``630k-audioset-best.pt``, fed 48 kHz audio
resampled from the separator's 16 kHz (torchaudio's sinc resampler: the release stores its kernel, [3, 1, 15]).
A clip shorter than CLAP's 10 s window is repeat-padded as laion-clap does (``repeatpad``: whole repeats, then
zeros); a longer one is cut into 10 s windows whose embeddings are averaged.

Loading is offline-safe, unlike ``laion_clap.CLAP_Module``:

- ``import laion_clap`` fetches three tokenizers from the hub at import time and appends its folder to
  ``sys.path``; we load only its ``clap_module`` package, under a private name.
- ``CLAP(...)`` calls ``RobertaModel.from_pretrained("roberta-base")`` (a 500 MB download whose weights the CLAP
  checkpoint then overwrites); we build the RoBERTa branch from its config instead.
- Offline, ``RobertaTokenizer.from_pretrained("roberta-base")`` silently returns a 5-token tokenizer that maps
  every word to ``<unk>``; :func:`check_tokenizer` refuses it and any tokenizer that does not fit the text model.

:class:`TinyClap` is a small random stand-in with the same interface for tests and the ``tiny`` preset; it is
only ever used when asked for by name.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from macs_bench.errors import MacsError

CLAP_RATE = 48000
CLAP_WINDOW = 480000  # samples at 48 kHz: the 10 s a non-fusion HTSAT sees
EMBED_DIM = 512
TEXT_LENGTH = 77  # laion-clap pads / truncates every prompt to 77 tokens
CHECKPOINT_WEIGHTS = "clap-630k-audioset-best"
TOKENIZER_WEIGHTS = "roberta-base-tokenizer"
PROBE = "The sound of a dog barking"  # every word is in any real English BPE vocabulary
# config.json of FacebookAI/roberta-base: the shape of CLAP's text branch (its weights come from the CLAP file).
ROBERTA_BASE = {
    "vocab_size": 50265, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
    "intermediate_size": 3072, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 514, "type_vocab_size": 1,
    "initializer_range": 0.02, "layer_norm_eps": 1e-5, "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2,
}
_MODULE_NAME = "_macs_laion_clap_module"


class AudioTextEncoder(Protocol):
    """What stage 1 needs of CLAP: unit-norm embeddings of 16 kHz audio (differentiable) and of text prompts."""

    embed_dim: int

    def embed_audio(self, audio: torch.Tensor) -> torch.Tensor: ...

    def embed_text(self, texts: Sequence[str]) -> torch.Tensor: ...

    def provenance(self) -> dict[str, Any]: ...


def clap_module() -> ModuleType:
    """laion-clap's ``clap_module`` package, imported without ``laion_clap/__init__`` (which goes to the hub)."""
    if _MODULE_NAME in sys.modules:
        return sys.modules[_MODULE_NAME]
    spec = importlib.util.find_spec("laion_clap")
    if spec is None or spec.origin is None:
        raise MacsError("laion-clap is not installed; install the model extra: pip install 'macs[model]'")
    folder = Path(spec.origin).parent / "clap_module"
    module_spec = importlib.util.spec_from_file_location(
        _MODULE_NAME, folder / "__init__.py", submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[_MODULE_NAME] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(_MODULE_NAME, None)
        raise
    return module


@contextmanager
def _roberta_from_config(config: Any):
    """Within the block, laion-clap's ``RobertaModel.from_pretrained(...)`` builds a random model from ``config``."""
    model_module = sys.modules[f"{_MODULE_NAME}.model"]
    original = model_module.RobertaModel

    class _FromConfig:
        @staticmethod
        def from_pretrained(*_args: Any, **_kwargs: Any):
            return original(config)

    model_module.RobertaModel = _FromConfig
    try:
        yield
    finally:
        model_module.RobertaModel = original


def build_clap_model(text_config: Mapping[str, Any] | None = None) -> nn.Module:
    """laion-clap's CLAP (HTSAT-tiny audio, RoBERTa text, 512-d joint space) with random weights, offline.

    ``text_config`` overrides RoBERTa-base's config (tests use a small vocabulary); the audio branch is always
    the real HTSAT-tiny.
    """
    from transformers import RobertaConfig

    module = clap_module()
    config = RobertaConfig(**{**ROBERTA_BASE, **dict(text_config or {})})
    with _roberta_from_config(config):
        model, _ = module.create_model("HTSAT-tiny", "roberta", precision="fp32", device="cpu",
                                       enable_fusion=False)
    return model


def read_clap_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The CLAP weights of a laion-clap training checkpoint (``{"state_dict": ...}``, DDP ``module.`` prefix)."""
    try:
        with torch.serialization.safe_globals(_numpy_scalar_globals()):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user-facing problem
        raise MacsError(f"{path}: cannot read the CLAP checkpoint ({type(exc).__name__}: {exc})") from exc
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, Mapping) else None
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise MacsError(f"{path}: not a CLAP checkpoint (expected a state dict of tensors)")
    return normalise_clap_keys(state)


def _numpy_scalar_globals() -> list[Any]:
    """numpy scalar and dtype types, allowed beside tensors: laion-clap's training checkpoints keep numpy scalars
    in their non-weight entries, which plain ``weights_only`` refuses. Nothing that runs code is allowed."""
    import numpy as np

    dtypes = [getattr(np.dtypes, name) for name in dir(np.dtypes) if name.endswith("DType")]
    scalar = np.core.multiarray.scalar if hasattr(np, "core") else np._core.multiarray.scalar
    return [scalar, np.dtype, *dtypes]


def normalise_clap_keys(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip a DDP ``module.`` prefix and drop ``position_ids`` (a buffer newer transformers no longer saves)."""
    out = {}
    for key, value in state.items():
        key = key[len("module."):] if key.startswith("module.") else key
        if key.endswith("embeddings.position_ids"):
            continue
        out[key] = value
    return out


def load_clap_weights(model: nn.Module, state: Mapping[str, torch.Tensor], where: str) -> None:
    """Strict load of CLAP weights; any missing, unexpected or misshapen key is one clear error naming ``where``."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    misshapen = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or misshapen:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", misshapen)):
            if keys:
                parts.append(f"{len(keys)} {label} (e.g. {keys[0]})")
        raise MacsError(f"{where}: CLAP weights do not fit HTSAT-tiny + RoBERTa: {'; '.join(parts)}")
    model.load_state_dict(state, strict=True)


def check_tokenizer(tokenizer: Any, vocab_size: int, where: str) -> None:
    """Refuse a tokenizer that CLAP's text branch cannot use.

    The offline failure of ``RobertaTokenizer.from_pretrained("roberta-base")`` is a tokenizer holding only its
    5 special tokens: every word becomes ``<unk>`` and every prompt the same embedding, silently. A tokenizer
    whose ids overrun the text model's embedding table is refused too.
    """
    size = len(tokenizer)
    ids = tokenizer(PROBE)["input_ids"]
    unk = tokenizer.unk_token_id
    specials = set(tokenizer.all_special_ids)
    words = [i for i in ids if i not in specials or i == unk]
    if size <= len(specials) or not words or unk in words:
        raise MacsError(f"{where}: the RoBERTa tokenizer is unusable ({size} tokens; {PROBE!r} tokenizes to "
                        f"{ids}), the broken stand-in transformers builds offline; fetch the real one with: "
                        f"macs-bench weights fetch {TOKENIZER_WEIGHTS}")
    if size > vocab_size:
        raise MacsError(f"{where}: the tokenizer has {size} tokens but CLAP's text model only {vocab_size}")


def load_tokenizer(source: str | os.PathLike | None = None) -> tuple[Any, str]:
    """The RoBERTa tokenizer from a local folder (vocab.json + merges.txt), or the weights cache; and its source.

    Never a hub id: offline that gives the broken 5-token tokenizer.
    """
    from transformers import RobertaTokenizer

    from macs_bench import weights

    folder = Path(source) if source is not None else weights.path(TOKENIZER_WEIGHTS)
    if not (folder / "vocab.json").is_file() or not (folder / "merges.txt").is_file():
        raise MacsError(f"{folder}: not a RoBERTa tokenizer folder (needs vocab.json and merges.txt)")
    try:
        tokenizer = RobertaTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception as exc:  # noqa: BLE001
        raise MacsError(f"{folder}: cannot read the RoBERTa tokenizer ({type(exc).__name__}: {exc})") from exc
    return tokenizer, str(folder)


def repeat_pad(audio: torch.Tensor, length: int) -> torch.Tensor:
    """laion-clap's ``repeatpad`` on [N, T <= length]: int(length / T) whole repeats, then zeros to ``length``."""
    samples = audio.shape[-1]
    if samples > length:
        raise ValueError(f"repeat_pad: {samples} samples exceed the window of {length}")
    if samples == 0:
        raise ValueError("repeat_pad: empty audio")
    repeated = audio.repeat(1, length // samples)
    return F.pad(repeated, (0, length - repeated.shape[-1]))


class ClapEncoder(nn.Module):
    """Frozen laion-clap CLAP behind :class:`AudioTextEncoder`; always in eval mode (HTSAT has BatchNorm).

    ``embed_audio`` keeps the graph to its input, so gradients reach the separator; the text embeddings of a
    prompt are computed once and cached (the text branch is frozen).
    """

    embed_dim = EMBED_DIM

    def __init__(self, model: nn.Module, tokenizer: Any, *, input_rate: int = 16000,
                 source: Mapping[str, Any] | None = None):
        super().__init__()
        import torchaudio

        self.model = model
        self.tokenizer = tokenizer
        self.input_rate = input_rate
        self.resample = torchaudio.transforms.Resample(input_rate, CLAP_RATE)
        self._source = dict(source or {})
        self._text_cache: dict[str, torch.Tensor] = {}
        check_tokenizer(tokenizer, model.text_branch.config.vocab_size, self._source.get("tokenizer", "tokenizer"))
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> "ClapEncoder":
        """Stays in eval mode: the CLAP is a frozen measuring instrument."""
        return super().train(False)

    def provenance(self) -> dict[str, Any]:
        return {"encoder": "laion-clap HTSAT-tiny + RoBERTa", **self._source}

    def embed_audio(self, audio: torch.Tensor) -> torch.Tensor:
        """[N, T] audio at ``input_rate`` -> [N, 512] unit-norm embeddings (10 s windows averaged beyond 10 s)."""
        if audio.dim() != 2 or audio.shape[-1] == 0:
            raise ValueError(f"embed_audio: audio must be [N, T > 0], got {tuple(audio.shape)}")
        device = next(self.model.parameters()).device
        wave = self.resample(audio.to(device=device, dtype=torch.float32))
        n, samples = wave.shape
        windows = max(1, -(-samples // CLAP_WINDOW))
        chunks = [wave[:, i * CLAP_WINDOW:(i + 1) * CLAP_WINDOW] for i in range(windows)]
        batch = torch.cat([repeat_pad(chunk, CLAP_WINDOW) for chunk in chunks])  # [windows * N, window]
        longer = torch.zeros(batch.shape[0], dtype=torch.bool, device=device)
        embedding = self.model.encode_audio({"waveform": batch, "longer": longer}, device=device)["embedding"]
        embedding = F.normalize(self.model.audio_projection(embedding), dim=-1)
        if windows > 1:
            embedding = F.normalize(embedding.reshape(windows, n, -1).mean(dim=0), dim=-1)
        return embedding

    @torch.no_grad()
    def embed_text(self, texts: Sequence[str]) -> torch.Tensor:
        """[len(texts), 512] unit-norm embeddings of the prompts, each computed once per encoder."""
        device = next(self.model.parameters()).device
        todo = sorted({t for t in texts if t not in self._text_cache})
        if todo:
            tokens = self.tokenizer(todo, padding="max_length", truncation=True, max_length=TEXT_LENGTH,
                                    return_tensors="pt")
            tokens = {k: v.to(device) for k, v in tokens.items() if k in ("input_ids", "attention_mask")}
            embedding = F.normalize(self.model.encode_text(tokens, device=device), dim=-1)
            for text, row in zip(todo, embedding):
                self._text_cache[text] = row
        return torch.stack([self._text_cache[t].to(device) for t in texts])


def load_clap(checkpoint: str | os.PathLike | None = None, tokenizer: str | os.PathLike | None = None, *,
              input_rate: int = 16000, device: str | torch.device = "cpu") -> ClapEncoder:
    """The paper's CLAP with real weights: ``checkpoint`` (a laion-clap .pt) or the verified registry copy.

    A missing file offline is one error with the ``macs-bench weights fetch`` command to run.
    """
    from macs_bench import weights

    if checkpoint is None:
        path = weights.path(CHECKPOINT_WEIGHTS)
        digest = weights.expected_sha256(CHECKPOINT_WEIGHTS)
    else:
        path = Path(checkpoint)
        if not path.is_file():
            raise MacsError(f"{path}: CLAP checkpoint not found")
        from macs_bench.io import sha256_file

        digest = sha256_file(path)
    tok, tok_source = load_tokenizer(tokenizer)
    model = build_clap_model()
    load_clap_weights(model, read_clap_state_dict(path), str(path))
    source = {"checkpoint": str(path), "sha256": digest, "tokenizer": tok_source}
    if checkpoint is None:
        source["weights"] = CHECKPOINT_WEIGHTS
    return ClapEncoder(model, tok, input_rate=input_rate, source=source).to(device)


class TinyClap(nn.Module):
    """A small random audio/text encoder with CLAP's interface (for tests and the ``tiny`` preset only).

    Audio: log-mel spectrogram -> two convolutions -> mean over time -> linear; text: a hashed bag of words.
    Not a model of anything: it makes the stage-1 wiring fast to exercise without CLAP's 158 M parameters.
    """

    def __init__(self, embed_dim: int = 32, input_rate: int = 16000, seed: int = 0, vocab: int = 512):
        super().__init__()
        import torchaudio

        self.embed_dim = embed_dim
        self.input_rate = input_rate
        self.mel = torchaudio.transforms.MelSpectrogram(input_rate, n_fft=256, hop_length=128, n_mels=32)
        generator = torch.Generator().manual_seed(seed)
        self.conv1 = nn.Conv1d(32, 64, 3, padding=1)
        self.conv2 = nn.Conv1d(64, 64, 3, padding=1)
        self.proj = nn.Linear(64, embed_dim)
        self.words = nn.EmbeddingBag(vocab, embed_dim, mode="mean")
        with torch.no_grad():
            for parameter in self.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.2)
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> "TinyClap":
        return super().train(False)

    def provenance(self) -> dict[str, Any]:
        return {"encoder": "tiny random stand-in (not CLAP)", "embed_dim": self.embed_dim}

    def embed_audio(self, audio: torch.Tensor) -> torch.Tensor:
        if audio.dim() != 2 or audio.shape[-1] == 0:
            raise ValueError(f"embed_audio: audio must be [N, T > 0], got {tuple(audio.shape)}")
        features = torch.log(self.mel(audio.float()) + 1e-6)
        hidden = F.gelu(self.conv2(F.gelu(self.conv1(features))))
        return F.normalize(self.proj(hidden.mean(dim=-1)), dim=-1)

    @torch.no_grad()
    def embed_text(self, texts: Sequence[str]) -> torch.Tensor:
        import zlib

        ids = [[zlib.crc32(word.lower().encode()) % self.words.num_embeddings for word in t.split()] or [0]
               for t in texts]
        flat = torch.tensor([i for row in ids for i in row], device=self.proj.weight.device)
        offsets = torch.tensor([0] + [len(r) for r in ids[:-1]], device=flat.device).cumsum(0)
        return F.normalize(self.words(flat, offsets), dim=-1)
