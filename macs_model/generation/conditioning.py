"""Stage 2's conditioning: each clip -> its audio window -> the frozen separator -> CLAP embeddings, cached.

Stage 1 is frozen, so each (clip, window) gets its embeddings [M, 512] in separator slot order and their CLAP
similarities to the window computed once, kept in one safetensors file per clip under ``<run>/embeddings/<key>/``,
where the key hashes the separator checkpoint, the CLAP and the window length. Training draws a window per clip
and epoch from the run's seed (:func:`training_windows`, ``audio_window``); generation takes the centred window.
Tokens follow the slot order unless ``token_order`` is "similarity". ``no_separation`` is the paper's "without MSS"
baseline: the mixture's CLAP embedding as a single token, or, with ``mixture_slots=M``, repeated into M slots
(the separator's capacity without its information).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from macs_bench.device import resolve_device
from macs_bench.errors import MacsError
from macs_bench.io import atomic_write_bytes

EMBEDDINGS = "embeddings"


class Conditioner:
    """Ranked CLAP embeddings of audio clips from a frozen separator (or of the mixture alone), cached per clip."""

    def __init__(self, separator: str | os.PathLike | None, *, clap: str | None = None,
                 tokenizer: str | os.PathLike | None = None, no_separation: bool = False,
                 device: str | torch.device = "auto", recorded_clap: dict[str, Any] | None = None,
                 window_seconds: float | None = None, token_order: str = "slot",
                 separator_sha256: str | None = None, mixture_slots: int = 1):
        from macs_model.separation.api import clap_identity, load_separator, separator_encoder

        if isinstance(mixture_slots, bool) or not isinstance(mixture_slots, int) or mixture_slots < 1:
            raise MacsError(f"mixture_slots must be a positive integer, got {mixture_slots!r}")
        if mixture_slots != 1 and not no_separation:
            raise MacsError("mixture_slots repeats the mixture's embedding: it needs no_separation")
        self.device = resolve_device(device)
        self.no_separation = no_separation
        if separator is None and not no_separation:
            raise MacsError("stage 2 needs a separator (a stage-1 run) or no-separation")
        # separator_sha256: the release file's digest when the caller hashed it already (not hashed again)
        self.loaded = load_separator(separator, sha256=separator_sha256) if separator is not None else None
        self.sample_rate = self.loaded.config.sample_rate if self.loaded else 16000
        self.encoder = separator_encoder(self.loaded, separator, clap, tokenizer,
                                         recorded=recorded_clap).to(self.device)
        if self.loaded is not None:
            self.loaded.model.to(self.device)
        self.mixture_slots = mixture_slots
        self.num_tokens = mixture_slots if no_separation else self.loaded.config.num_sources
        self._embed_dim = int(self.encoder.embed_dim)
        self.window = None if window_seconds is None else round(window_seconds * self.sample_rate)
        self.token_order = token_order
        self.windows: dict[str, list[int | None]] = {}  # the window starts clips() used, per sample id
        identity = {"separator": None if no_separation else self.loaded.sha256,
                    "clap": clap_identity(self.encoder.provenance())}
        if self.window is not None:  # keys of runs without a window stay as they were
            identity["window_samples"] = self.window
        if mixture_slots != 1:  # and so do those of the single-token baseline
            identity["mixture_slots"] = mixture_slots
        self.key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
        self.provenance = {"no_separation": no_separation, "mixture_slots": mixture_slots,
                           "clap": self.encoder.provenance(),
                           "separator": None if self.loaded is None else
                           {"source": self.loaded.source, "sha256": self.loaded.sha256}}

    def release(self) -> None:
        """Free the separator and CLAP (stage 2 trains from the cached embeddings)."""
        self.loaded = self.encoder = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    @property
    def embed_dim(self) -> int:
        return self._embed_dim

    @torch.no_grad()
    def embed_slots(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(embeddings [K, D] in separator slot order, their CLAP similarity to ``audio`` [K]) of one window."""
        audio = audio.to(self.device)
        mixture = self.encoder.embed_audio(audio[None])
        if self.no_separation:
            return mixture.cpu().repeat(self.mixture_slots, 1), torch.ones(self.mixture_slots)
        embeddings = self.encoder.embed_audio(self.loaded.model(audio[None])[0])
        return embeddings.cpu(), (embeddings @ mixture[0]).cpu()

    def ordered(self, embeddings: torch.Tensor, similarity: torch.Tensor) -> torch.Tensor:
        """The token order the config asks for: slot order, or sorted by similarity (most similar first)."""
        if self.token_order == "slot":
            return embeddings
        return embeddings[torch.argsort(similarity, descending=True, stable=True)]

    def cut(self, audio: torch.Tensor, start: int | None) -> torch.Tensor:
        """The window of a clip at ``start`` (the whole clip without a window)."""
        from macs_model.generation.audio_window import cut_window

        return audio if self.window is None else cut_window(audio, self.window, start)

    def embed(self, audio: torch.Tensor) -> torch.Tensor:
        """[K, D] token-order embeddings of one clip [T] at the separator's rate, heard in its centred window."""
        from macs_model.generation.audio_window import window_start

        start = None if self.window is None else window_start(audio.shape[-1], self.window, "centre")
        return self.ordered(*self.embed_slots(self.cut(audio, start)))

    def embed_file(self, path: Path) -> torch.Tensor:
        from macs_model.separation.data import load_audio

        return self.embed(load_audio(path, self.sample_rate))

    def clips(self, ids: Sequence[str], media: str | os.PathLike, cache: str | os.PathLike, *,
              starts: Callable[[str, int], list[int]] | None = None, progress: bool = True
              ) -> dict[str, torch.Tensor]:
        """Token-order embeddings of ``MEDIA/audio/<id>.wav`` for each id: [K, D] in the centred window, or, with
        ``starts(sample_id, n_samples)``, [W, K, D] for the W window starts it lists.

        Read from or added to ``cache/<key>/<id>.safetensors`` (slot-order embeddings and similarities per window
        start). A cached entry is used only while the audio file's sha256 is the one it was made from; an
        unreadable or stale file is computed again. ``self.windows`` records the starts used.
        """
        from safetensors.torch import save

        from macs_bench.io import sha256_file
        from macs_model.generation.audio_window import window_start
        from macs_model.run_loop import progress_bar
        from macs_model.separation.data import audio_path, load_audio

        folder = Path(cache) / self.key
        folder.mkdir(parents=True, exist_ok=True)
        out = {}
        with progress_bar(progress) as bar:
            task = bar.add_task("audio embeddings", total=len(ids)) if bar is not None else None
            for sid in ids:
                file, audio_file = folder / f"{sid}.safetensors", audio_path(media, sid)
                digest = sha256_file(audio_file)
                cached, length = _read_cache(file, digest)
                audio = None
                if length is None:
                    audio = load_audio(audio_file, self.sample_rate)
                    length = audio.shape[-1]
                if self.window is None:
                    wanted: list[int | None] = [None]
                elif starts is None:
                    wanted = [window_start(length, self.window, "centre")]
                else:
                    wanted = list(starts(sid, length))
                missing = [w for w in dict.fromkeys(wanted) if _entry(w) not in cached]
                if missing:
                    if self.encoder is None:
                        raise MacsError(f"{file}: embedding missing from the cache and the encoders are released")
                    audio = audio if audio is not None else load_audio(audio_file, self.sample_rate)
                    for w in missing:
                        cached[_entry(w)] = self.embed_slots(self.cut(audio, w))
                    tensors = {f"{kind}@{name}": value.contiguous() for name, pair in cached.items()
                               for kind, value in zip(("slots", "similarity"), pair)}
                    atomic_write_bytes(file, save(tensors, metadata={"audio_sha256": digest, "samples": str(length)}))
                self.windows[sid] = wanted
                stacked = torch.stack([self.ordered(*cached[_entry(w)]) for w in wanted])
                out[sid] = stacked[0] if starts is None else stacked
                if bar is not None:
                    bar.update(task, advance=1)
        return out


def _entry(start: int | None) -> str:
    return "full" if start is None else str(start)


def _read_cache(file: Path, digest: str) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], int | None]:
    """({window name: (slot embeddings, similarity)}, clip length in samples) of a clip's cache file; empty and
    None when it is absent, unreadable or made from other audio."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(file), framework="pt") as handle:
            meta = handle.metadata() or {}
            if meta.get("audio_sha256") != digest or "samples" not in meta:
                return {}, None
            names = {k.split("@", 1)[1] for k in handle.keys() if k.startswith("slots@")}
            return ({n: (handle.get_tensor(f"slots@{n}"), handle.get_tensor(f"similarity@{n}")) for n in names},
                    int(meta["samples"]))
    except (OSError, SafetensorError, KeyError, ValueError):
        return {}, None


def training_windows(config, num_items: int, window: int | None, num_processes: int = 1
                     ) -> Callable[[str, int], list[int]] | None:
    """The window starts of a clip for each epoch the run will reach, drawn from the run's seed (None without a
    window: the whole clip, every epoch)."""
    from macs_model.generation.audio_window import window_start

    if window is None:
        return None
    per_epoch = max(1, num_items // (config.batch_size * config.grad_accum * num_processes))
    epochs = config.epochs if config.steps is None else -(-config.steps // per_epoch)

    def starts(sample_id: str, n_samples: int) -> list[int]:
        return [window_start(n_samples, window, "random", seed=config.seed, epoch=e, sample_id=sample_id)
                for e in range(epochs)]

    return starts
