"""AudioToken (Yariv et al., 2023; guyyariv/AudioToken), the paper's baseline, and AudioToken w/ MSS.

What the release computes, written anew: the clip at 16 kHz, repeated to fill 10 s and cut there -> BEATs
(``BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt``) -> the outputs of its layers 4, 8 and 12 (0-based 3, 7,
11) concatenated per patch [P, 3 x 768] -> the FGA embedder: ``fc2(gelu(fc1(x)))`` per patch, then an attention
pooling whose per-patch logits mix a unary potential (1x1 convs; its dropout p=0.5 runs at inference too, as the
release calls ``F.dropout`` without ``training``) and a self-similarity potential (mean cosine of two 1x1-conv
projections), softmax over patches -> ONE 768-d token, which replaces the placeholder's input embedding in SD
v1.4's text encoder ("a photo of <*>"). Here the placeholder is ``*``, a single CLIP token at the same position as
the release's added ``<*>``; its embedding is replaced, so the text states are the same.

AudioToken w/ MSS (the MACS paper, section 4): each of our separator's M sources goes through the same BEATs and
embedder, one token each ("a photo of * * * *"). The released embedder serves both; ``fit`` (``run --fit``)
trains the embedder on the other folds with SD's noise loss instead (the release adds an L1 penalty of 0.01 on the
token, not done here). Weights: ``beats-as2m-cpt2`` and ``audiotoken-embedder`` (the file of the release commit,
whose git blob id is checked) from ``macs-bench weights``, or local paths with an optional sha256.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from macs_bench.errors import MacsError
from macs_bench.models.protocol import Item, RowInfo
from macs_model.baselines.token import AudioToken

EMBEDDER_WEIGHTS = "audiotoken-embedder"
RELEASE_BLOB = "5d1f5c101e5b5e1fdf5637a2e372b0d441b09639"  # git blob of output/embedder_learned_embeds.bin @ cf75d30
RELEASE_LAYERS = (3, 7, 11)
RELEASE_NOTE = ("released weights (embedder trained on VGGSound, BEATs fine-tuned on AudioSet-2M): "
                "may have seen the test videos")


class FGAEmbedder(nn.Module):
    """[B, P, in] BEATs patch features -> [B, out] one token (parameter names as the release's FGAEmbedder)."""

    def __init__(self, input_size: int, output_size: int, release_dropout: bool = True):
        super().__init__()
        self.fc1 = nn.Linear(input_size, input_size)
        self.fc2 = nn.Linear(input_size, output_size)
        self.fga = _Attention(output_size)
        self.release_dropout = release_dropout

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        embedded = self.fc2(F.gelu(self.fc1(features)))
        return self.fga(embedded, dropout=self.training or self.release_dropout)


class _Attention(nn.Module):
    """The release's FGA ``Atten`` with one utility, unary and self potentials, no pairwise or priors."""

    def __init__(self, dim: int):
        super().__init__()
        self.un_models = nn.ModuleList([nn.ModuleDict({"embed": nn.Conv1d(dim, dim, 1),
                                                       "feature_reduce": nn.Conv1d(dim, 1, 1)})])
        self.pp_models = nn.ModuleDict({"0": nn.ModuleDict({"embed_X": nn.Conv1d(dim, dim, 1),
                                                            "embed_Y": nn.Conv1d(dim, dim, 1)})})
        self.reduce_potentials = nn.ModuleList([nn.Conv1d(2, 1, 1, bias=False)])

    def forward(self, x: torch.Tensor, dropout: bool) -> torch.Tensor:  # [B, P, D] -> [B, D]
        channels = x.transpose(1, 2)
        unary = self.un_models[0]
        hidden = F.dropout(F.relu(unary["embed"](channels)), p=0.5, training=dropout)
        unary_potential = unary["feature_reduce"](hidden).squeeze(1)  # [B, P]
        pair = self.pp_models["0"]
        left = F.normalize(pair["embed_X"](channels), dim=1)
        right = F.normalize(pair["embed_Y"](channels), dim=1)
        self_potential = (left.transpose(1, 2) @ right).mean(dim=2)  # [B, P]
        logits = self.reduce_potentials[0](torch.stack([unary_potential, self_potential], dim=1)).squeeze(1)
        return (logits.softmax(dim=1).unsqueeze(2) * x).sum(dim=1)


class BeatsTokens(nn.Module):
    """[N, K, T] 16 kHz waveforms -> [N, K, D] tokens: frozen BEATs, the chosen layers concatenated, the embedder."""

    def __init__(self, beats: nn.Module, embedder: FGAEmbedder, layers: Sequence[int]):
        super().__init__()
        self.beats, self.embedder, self.layers = beats.requires_grad_(False), embedder, tuple(layers)

    def forward(self, waves: torch.Tensor) -> torch.Tensor:
        n, k, t = waves.shape
        with torch.no_grad():
            self.beats.eval()
            outputs = self.beats.extract_features(waves.reshape(n * k, t))[1]
            features = torch.cat([outputs[i] for i in self.layers], dim=-1)
        return self.embedder(features).view(n, k, -1)


def git_blob_id(path: Path) -> str:
    """The git blob sha1 of a file (what a commit pins)."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode(), usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def load_embedder_state(path: str | os.PathLike | None = None, sha256: str | None = None
                        ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The embedder's state dict (default: the verified ``audiotoken-embedder`` cache entry, git blob checked)
    and its provenance; a missing, wrong or unreadable file is one MacsError line."""
    from macs_bench.io import sha256_file

    default = path is None
    if default:
        from macs_bench import weights

        path = weights.path(EMBEDDER_WEIGHTS)
    path = Path(path).expanduser()
    if not path.is_file():
        raise MacsError(f"{path}: no AudioToken embedder there; fetch it with: macs-bench weights fetch "
                        f"{EMBEDDER_WEIGHTS}")
    blob = git_blob_id(path)
    if default and blob != RELEASE_BLOB:
        raise MacsError(f"{path}: not the released AudioToken embedder (git blob {blob}, expected "
                        f"{RELEASE_BLOB}); fetch it again with: macs-bench weights fetch {EMBEDDER_WEIGHTS}")
    actual = sha256_file(path)
    if sha256 is not None and actual != sha256:
        raise MacsError(f"{path}: sha256 {actual}, expected {sha256}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unpickling failure means the file is not a usable state dict
        raise MacsError(f"{path}: not a readable AudioToken embedder ({type(exc).__name__})") from None
    if not isinstance(state, dict) or "fc1.weight" not in state or "fc2.weight" not in state:
        raise MacsError(f"{path}: not an AudioToken embedder state dict (no fc1/fc2 weights)")
    return state, {"path": str(path), "sha256": actual, "release": blob == RELEASE_BLOB}


def fixed_length(wave: torch.Tensor, samples: int) -> torch.Tensor:
    """The clip repeated until it fills ``samples`` and cut there (the release's 10 s input)."""
    if wave.numel() == 0:
        raise MacsError("AudioToken: an empty waveform")
    return wave.repeat(-(-samples // wave.shape[-1]))[:samples]


class AudioTokenBEATs(AudioToken):
    """AudioToken on BEATs (``separator``: AudioToken w/ MSS, one token per source). ``preset="tiny"`` builds a
    random BEATs, embedder and SD from configs (tests only); every other preset loads published weights."""

    def __init__(self, *, separator: str | os.PathLike | None = None, preset: str = "paper",
                 base: str | os.PathLike | None = None, beats: str | os.PathLike | None = None,
                 beats_sha256: str | None = None, embedder: str | os.PathLike | None = None,
                 embedder_sha256: str | None = None, work: str | os.PathLike = "runs/audiotoken",
                 steps: int = 300, batch_size: int = 4, lr: float = 1.6e-4, template: str = "a photo of {tokens}",
                 device: str = "auto", train_seed: int = 0, clip_seconds: float = 10.0,
                 layers: Sequence[int] | None = None):
        from macs_model.baselines.drawing import PromptDrawer
        from macs_model.encoders.beats import SAMPLE_RATE, load_beats, tiny_beats

        tiny = preset == "tiny"
        beats_model, self.beats_info = tiny_beats(train_seed) if tiny else load_beats(beats, sha256=beats_sha256)
        state, self.embedder_info = (None, {"preset": "tiny", "note": "random weights (tests only)"}) if tiny \
            else load_embedder_state(embedder, embedder_sha256)
        self.drawer = PromptDrawer(preset, base, device)
        self.separator = None
        if separator is not None:
            from macs_model.separation.api import load_separator

            self.separator = load_separator(separator)
            self.separator.model.to(self.drawer.device)
        self.mss, self.num_tokens = separator is not None, 1 if separator is None else \
            self.separator.config.num_sources
        self.layers = tuple(layers) if layers is not None else \
            tuple(range(beats_model.config.encoder_layers)) if tiny else RELEASE_LAYERS
        text_dim = self.drawer.components.text_encoder.get_input_embeddings().embedding_dim
        torch.manual_seed(train_seed)
        fga = FGAEmbedder(len(self.layers) * beats_model.config.encoder_embed_dim, text_dim)
        if state is not None:
            try:
                fga.load_state_dict(state)
            except RuntimeError:
                raise MacsError(f"{self.embedder_info['path']}: the embedder does not fit BEATs layers "
                                f"{list(self.layers)} and a {text_dim}-d text encoder") from None
        self.embedder = BeatsTokens(beats_model, fga, self.layers).to(self.drawer.device)
        self.rate, self.clip = SAMPLE_RATE, round(clip_seconds * SAMPLE_RATE)
        self.template, self.work = template, Path(work).expanduser()
        self.steps, self.batch_size, self.lr, self.train_seed = int(steps), int(batch_size), float(lr), train_seed
        self.placeholder = self.drawer.components.tokenizer.convert_tokens_to_ids("*</w>")
        self.trained: set[str] | None = None  # None: the released embedder (its training clips are not ours)

    @property
    def name(self) -> str:
        return "AudioToken w/ MSS" if self.mss else "AudioToken"

    def prompt(self) -> str:
        return self.template.format(tokens=" ".join(["*"] * self.num_tokens))

    def trainable(self) -> nn.Module:
        return self.embedder.embedder

    def conditioning(self) -> dict[str, Any]:
        return {"beats": self.beats_info, "layers": list(self.layers), "clip_samples": self.clip,
                "separator": None if self.separator is None else
                {"source": self.separator.source, "sha256": self.separator.sha256}}

    def sources(self, wave: torch.Tensor, rate: int) -> torch.Tensor:
        """[K, clip] 16 kHz inputs of one clip: the mixture, or each separated source."""
        import torchaudio.functional as AF

        def at(x, src, dst):
            return x if src == dst else AF.resample(x, src, dst)

        if self.separator is None:
            return fixed_length(at(wave, rate, self.rate), self.clip)[None]
        sep_rate = self.separator.config.sample_rate
        with torch.no_grad():
            parts = self.separator.model(at(wave, rate, sep_rate)[None].to(self.drawer.device))[0].cpu()
        return torch.stack([fixed_length(at(p, sep_rate, self.rate), self.clip) for p in parts])

    def _embed(self, waveforms: Sequence[Any], rate: int) -> torch.Tensor:
        return torch.stack([self.sources(torch.as_tensor(w, dtype=torch.float32), rate) for w in waveforms])

    def trained_ids(self) -> set[str] | None:
        return self.trained

    def row_info(self) -> RowInfo:
        what = "one token per separated source" if self.mss else "one token from the mixture"
        if self.trained is None:
            return RowInfo("model", "computed", True, f"{what}; {RELEASE_NOTE}")
        return RowInfo("model", "computed", False, f"{what}; embedder trained here (BEATs fine-tuned on AudioSet)")

    def provenance(self) -> dict[str, Any]:
        return {"baseline": self.name, "conditioning": self.conditioning(), "embedder": self.embedder_info,
                "base": self.drawer.source, "prompt": self.prompt(), "work": str(self.work),
                "train": None if self.trained is None else
                {"steps": self.steps, "batch_size": self.batch_size, "lr": self.lr, "seed": self.train_seed,
                 "samples": len(self.trained)},
                "licence": "AudioToken MIT; BEATs MIT; SD v1.4 CreativeML OpenRAIL-M"}

    @torch.no_grad()
    def generate(self, items: Sequence[Item], seed: int) -> list[Any]:
        """Each item's token under its own seed (the embedder's inference dropout included)."""
        self.embedder.to(self.drawer.device).eval()
        waves = self._embed([item.waveform for item in items], items[0].sample_rate)
        device = self.drawer.device
        states = []
        for item, wave in zip(items, waves):
            with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
                torch.manual_seed(item.seed)
                states.append(self.states(wave[None]))
        return self.drawer.draw(torch.cat(states), [item.seed for item in items])


def audiotoken_mss(*, separator: str | os.PathLike, **options: Any) -> AudioTokenBEATs:
    """AudioToken w/ MSS: one BEATs token per source of a separator run (or the authors' separator file)."""
    return AudioTokenBEATs(separator=separator, **options)
