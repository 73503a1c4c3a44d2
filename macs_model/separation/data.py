"""Stage-1 training data: a dataset manifest plus its fetched MEDIA folder -> fixed-length 16 kHz clips with labels.

``macs-bench datasets fetch`` writes each sample's audio as ``MEDIA/audio/<sample_id>.wav``. :func:`open_clips`
pairs a manifest (FSD50K by name, or any built manifest folder) with those files, keeping the samples whose audio
is present, and :class:`ClipDataset` turns each into a mono float32 clip of exactly ``clip_samples`` samples at
``sample_rate``. Random crops draw from torch's global RNG, which training checkpoints, so a resumed run crops
exactly as an uninterrupted one would.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch

from macs_bench.datasets.manifest import MANIFEST_NAME, manifest_rows, split_list
from macs_bench.errors import MacsError

CROPS = ("random", "start")
FSD50K = "fsd50k"
Entries = list[tuple[str, tuple[str, ...]]]  # (sample_id, labels) per sample


def audio_path(media: str | os.PathLike, sample_id: str) -> Path:
    """Where ``datasets fetch`` puts a sample's audio: ``MEDIA/audio/<sample_id>.wav``."""
    return Path(media) / "audio" / f"{sample_id}.wav"


class ClipDataset:
    """Indexable clips: item ``i`` is ``{"audio": float32 [clip_samples], "labels": [str], "sample_id": str}``.

    ``entries`` are ``(sample_id, labels)`` pairs whose audio lies at :func:`audio_path`. Each file is mixed to
    mono, resampled to ``sample_rate`` when its rate differs, then cropped to ``clip_samples`` (at a random offset
    from torch's global RNG with ``crop="random"``, at the start with ``crop="start"``) or zero-padded at the end.
    ``missing`` counts the manifest's samples left out because their audio was absent (set by :func:`open_clips`).
    """

    def __init__(self, entries: Sequence[tuple[str, Sequence[str]]], media: str | os.PathLike, sample_rate: int,
                 clip_samples: int, crop: str = "random", *, missing: int = 0):
        if crop not in CROPS:
            raise MacsError(f"crop must be one of {', '.join(CROPS)}, got {crop!r}")
        if int(sample_rate) <= 0 or int(clip_samples) <= 0:
            raise MacsError(f"sample_rate and clip_samples must be positive, got {sample_rate} and {clip_samples}")
        self.entries = [(str(sid), tuple(labels)) for sid, labels in entries]
        self.media = Path(media)
        self.sample_rate = int(sample_rate)
        self.clip_samples = int(clip_samples)
        self.crop = crop
        self.missing = int(missing)

    def __len__(self) -> int:
        return len(self.entries)

    def path(self, index: int) -> Path:
        """The audio file of item ``index``."""
        return audio_path(self.media, self.entries[index][0])

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample_id, labels = self.entries[index]
        audio = self._crop(load_audio(audio_path(self.media, sample_id), self.sample_rate))
        return {"audio": audio, "labels": list(labels), "sample_id": sample_id}

    def _crop(self, audio: torch.Tensor) -> torch.Tensor:
        n, clip = audio.shape[0], self.clip_samples
        if n > clip:
            offset = int(torch.randint(0, n - clip + 1, ()).item()) if self.crop == "random" else 0
            return audio[offset:offset + clip].contiguous()
        if n < clip:
            return torch.nn.functional.pad(audio, (0, clip - n))
        return audio


def load_audio(path: Path, sample_rate: int) -> torch.Tensor:
    """A sound file as a mono float32 tensor [T] at ``sample_rate`` (channels averaged, resampled if needed)."""
    if not path.is_file():
        raise MacsError(f"{path}: the audio file is missing")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError, OSError, ValueError) as exc:
        lines = str(exc).strip().splitlines() or [type(exc).__name__]
        detail = lines[-1].split("': ", 1)[-1]  # libsndfile's text repeats the path: keep only the reason
        raise MacsError(f"{path}: cannot read audio ({detail})") from None
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise MacsError(f"{path}: the audio file is empty")
    audio = torch.from_numpy(np.ascontiguousarray(data.mean(axis=1, dtype=np.float32)))
    if rate != sample_rate:
        import torchaudio.functional

        audio = torchaudio.functional.resample(audio, orig_freq=int(rate), new_freq=int(sample_rate))
    return audio.to(torch.float32)


def open_clips(data: str, media: str | os.PathLike, sample_rate: int, clip_samples: int, *, crop: str = "random",
               work_dir: str | os.PathLike | None = None) -> ClipDataset:
    """The clips of ``data`` whose audio is in ``media``; the others are counted in the result's ``missing``.

    ``data`` is ``"fsd50k"`` (the FSD50K manifest built from the vendored metadata into ``work_dir``, replacing
    any manifest there, or into a temporary folder, with every dev and eval sample: the paper pre-trains the
    separator on both) or the folder of a built manifest (``macs-bench datasets build ... --out DIR``). To use a
    folder named ``fsd50k``, write ``./fsd50k``.
    """
    manifest_csv, entries, audio_only = _read_entries(data, work_dir)
    kept_dir = not (data == FSD50K and work_dir is None)  # a temporary manifest is gone: do not name it
    origin = str(manifest_csv) if kept_dir else f"the {FSD50K} manifest"
    if not entries:
        raise MacsError(f"{origin}: the manifest has no samples")
    media = Path(media)
    present = _present_audio(media)
    kept = [(sid, labels) for sid, labels in entries if f"{sid}.wav" in present]
    if not kept:
        first = "" if kept_dir else "'macs-bench datasets build fsd50k --out DIR', then "
        fetch = f"macs-bench datasets fetch --manifest {manifest_csv.parent if kept_dir else 'DIR'} --media {media}"
        source = " --source-dir FSD50K_DIR" if audio_only else ""
        raise MacsError(f"{media}: no audio for any of the {len(entries)} samples of {origin} (expected "
                        f"{media / 'audio'}/<sample_id>.wav); run {first}'{fetch}{source}'")
    return ClipDataset(kept, media, sample_rate, clip_samples, crop, missing=len(entries) - len(kept))


def _read_entries(data: str, work_dir: str | os.PathLike | None) -> tuple[Path, Entries, bool]:
    """``(manifest.csv path, [(sample_id, labels)], audio-only?)`` for a dataset name or a manifest folder."""
    if data == FSD50K:
        from macs_bench.datasets import build

        if work_dir is None:
            with tempfile.TemporaryDirectory(prefix="macs-fsd50k-") as tmp:
                build(FSD50K, out=tmp)
                return _read_manifest_dir(Path(tmp))
        build(FSD50K, out=work_dir)
        return _read_manifest_dir(Path(work_dir))
    folder = Path(data)
    if not (folder / MANIFEST_NAME).is_file():
        raise MacsError(f"{data}: neither {FSD50K!r} nor a folder with {MANIFEST_NAME} "
                        "(build one with 'macs-bench datasets build NAME --out DIR')")
    return _read_manifest_dir(folder)


def _read_manifest_dir(folder: Path) -> tuple[Path, Entries, bool]:
    """The manifest's samples with their ``;``-separated labels; audio-only when no row has a YouTube id."""
    path = folder / MANIFEST_NAME
    entries = []
    audio_only = True
    for lineno, row in enumerate(manifest_rows(path), 2):
        sid = row.get("sample_id") or ""
        if not sid or sid in (".", "..") or "/" in sid or "\\" in sid:
            raise MacsError(f"{path}:{lineno}: sample_id {sid!r} is not a file name")
        labels = tuple(split_list(row.get("labels")))
        entries.append((sid, labels))
        audio_only = audio_only and not row.get("ytid")
    return path, entries, audio_only


def _present_audio(media: Path) -> set[str]:
    """Names of the files in ``MEDIA/audio`` (one directory scan instead of a stat per sample)."""
    try:
        with os.scandir(media / "audio") as it:
            return {entry.name for entry in it if entry.is_file()}
    except (FileNotFoundError, NotADirectoryError):
        return set()
    except OSError as exc:
        raise MacsError(f"{media / 'audio'}: cannot list the audio folder ({exc.strerror})") from None
