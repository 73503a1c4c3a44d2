"""The synthetic multi-source benchmark, made on the fly: for the offline demo, the ablations and tests, never
for results about real audio.

Twelve sound classes (:mod:`macs_bench.world.sounds`) that share frequency bands, each tied to a visual motif
(:mod:`macs_bench.world.motifs`) whose colour it shares with two other classes. A clip mixes one to five
sources (equally many clips of each count) at gains up to 20 dB apart over partly overlapping stretches of
time; its frame draws the same classes' motifs in a 3 x 3 grid on a grey ground. With 1585 possible label sets
no benchmark of this size repeats many of them. Everything is a function of the seed. The output has the layout
of a built benchmark plus its fetched media: ``manifest/manifest.csv`` (5 folds, stratified by the number of
sources) and ``media/audio/<id>.wav`` (16 kHz mono PCM) + ``media/frames/<id>.jpg``.
"""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from macs_bench.errors import MacsError
from macs_bench.world.motifs import draw_frame
from macs_bench.world.sounds import CLASSES, MAX_SOURCES, SAMPLE_RATE, quantise, render_sources

__all__ = ["CLASSES", "SAMPLE_RATE", "Clip", "SyntheticSet", "draw_frame", "make_clip", "source_counts",
           "write_synthetic"]


@dataclass(frozen=True)
class SyntheticSet:
    """Where a synthetic benchmark was written."""

    manifest: Path
    media: Path
    n_clips: int


@dataclass(frozen=True)
class Clip:
    """One clip: its classes (sorted by class order), each source as it sounds in the mix, the mix, the frame."""

    names: tuple[str, ...]
    sources: np.ndarray
    mix: np.ndarray
    frame: object


def source_counts(n_clips: int, rng: np.random.Generator) -> list[int]:
    """1 to 5 sources, as evenly as ``n_clips`` allows, in a random order."""
    counts = [1 + i % MAX_SOURCES for i in range(n_clips)]
    return [counts[i] for i in rng.permutation(n_clips)]


def make_clip(k: int, samples: int, rng: np.random.Generator, image_size: int = 64) -> Clip:
    """A clip of ``k`` distinct random classes."""
    chosen = sorted(rng.choice(len(CLASSES), size=k, replace=False).tolist())
    names = tuple(CLASSES[c] for c in chosen)
    sources = render_sources(names, samples, rng)
    return Clip(names, sources, quantise(sources.sum(0)), draw_frame(names, rng, image_size))


def _wav_bytes(audio: np.ndarray) -> bytes:
    pcm = np.round(audio * 32768).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as fh:
        fh.setnchannels(1)
        fh.setsampwidth(2)
        fh.setframerate(SAMPLE_RATE)
        fh.writeframes(pcm.tobytes())
    return buffer.getvalue()


def write_synthetic(root: str | Path, *, n_clips: int = 600, seconds: float = 2.0, image_size: int = 64,
                    seed: int = 0, prefix: str = "syn") -> SyntheticSet:
    """Write ``n_clips`` clips under ``root`` (manifest/ and media/); rewriting with the same arguments gives the
    same bytes, so a rerun changes nothing. The default 600 clips give 120 test clips per number of sources over
    the 5 folds."""
    from macs_bench.datasets.folds import assign_folds, label_count_bucket
    from macs_bench.datasets.manifest import Manifest, Sample
    from macs_bench.io import atomic_write_bytes
    from macs_bench.media.layout import MediaLayout

    if n_clips < 5:
        raise MacsError(f"a synthetic benchmark needs at least 5 clips (5 folds), got {n_clips}")
    root = Path(root).expanduser()
    media = MediaLayout(root / "media")
    rng = np.random.default_rng(seed)
    samples = int(seconds * SAMPLE_RATE)
    ids, labels = [], []
    for i, k in enumerate(source_counts(n_clips, rng)):
        clip = make_clip(k, samples, rng, image_size)
        sid = f"{prefix}{i:04d}"
        atomic_write_bytes(media.audio(sid), _wav_bytes(clip.mix))
        buffer = io.BytesIO()
        clip.frame.save(buffer, format="JPEG", quality=95)
        atomic_write_bytes(media.frame(sid), buffer.getvalue())
        ids.append(sid)
        labels.append(clip.names)
    folds = assign_folds(ids, [label_count_bucket(len(x)) for x in labels], n_folds=5, seed=seed)
    Manifest("synthetic", [Sample(sid, lab, "", fold=fold) for sid, lab, fold in zip(ids, labels, folds)]
             ).write(root / "manifest")
    return SyntheticSet(root / "manifest", media.root, n_clips)
