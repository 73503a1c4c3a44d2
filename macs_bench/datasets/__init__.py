"""Benchmark builders: from pinned metadata to a manifest with folds, offline and deterministic.

>>> from macs_bench.datasets import build
>>> manifest = build("llp-multi", out="runs/llp-multi")   # doctest: +SKIP
>>> len(manifest), manifest.counts()["folds"]              # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from macs_bench import __version__
from macs_bench.datasets import audioset_eval, fsd50k, landscape, llp_multi
from macs_bench.datasets.manifest import Manifest, Sample, manifest_rows, read_manifest
from macs_bench.datasets.metadata import MetadataStore, datasets_root
from macs_bench.errors import MacsError

__all__ = ["DATASETS", "DatasetSpec", "Manifest", "Sample", "build", "card", "manifest_rows", "read_manifest"]


MAX_SOURCES = 64


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    summary: str
    files: tuple[str, ...]
    builder: Callable[..., Manifest]
    params: tuple[str, ...]  # the build options this dataset takes, recorded in the provenance

    @property
    def card_path(self) -> Path:
        return datasets_root() / "cards" / f"{self.name}.md"


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("llp-multi", "multi-source: every multi-label LLP clip, 5 folds", llp_multi.FILES,
                    llp_multi.build, ("seed", "n_folds")),
        DatasetSpec("audioset-eval", "mixed-source: the AudioSet eval segments, 5 folds", audioset_eval.FILES,
                    audioset_eval.build, ("seed", "n_folds")),
        DatasetSpec("landscape", "single-source: Landscape, seeded 90/10 train/test", landscape.FILES,
                    landscape.build, ("seed",)),
        DatasetSpec("fsd50k", "separator pre-training: FSD50K dev/eval with CLAP prompts", fsd50k.FILES,
                    fsd50k.build, ("num_sources",)),
    )
}


def spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise MacsError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}") from None


def build(
    name: str,
    out: str | os.PathLike | None = None,
    *,
    seed: int = 0,
    n_folds: int = 5,
    num_sources: int = fsd50k.DEFAULT_NUM_SOURCES,
    available: str | os.PathLike | None = None,
    metadata_dir: str | os.PathLike | None = None,
) -> Manifest:
    """Build dataset ``name`` from verified metadata; write it to ``out`` when given.

    ``available`` names a file of sample ids or YTIDs (one per line) the user obtained: the manifest keeps only
    those, with their folds unchanged, and ``dropped.txt`` lists the rest.
    """
    ds = spec(name)
    store = MetadataStore(metadata_dir)
    if not 1 <= num_sources <= MAX_SOURCES:
        raise MacsError(f"the number of sources M must be 1 to {MAX_SOURCES}, got {num_sources}")
    given = {"seed": seed, "n_folds": n_folds, "num_sources": num_sources}
    options: dict[str, Any] = {key: given[key] for key in ds.params}
    manifest = ds.builder(store, **options)
    manifest.provenance = {
        "tool": "macs-bench",
        "version": __version__,
        "dataset": name,
        "options": options,
        "metadata": store.verify(ds.files),
    }
    dropped = None
    if available is not None:
        manifest, dropped = manifest.restrict(Path(available).expanduser())
    if out is not None:
        manifest.write(out, dropped=dropped)
    return manifest


def card(name: str) -> str:
    """The dataset card (Markdown): source, licence, files and checksums, counts, known defects."""
    path = spec(name).card_path
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        raise MacsError(f"{path}: dataset card is missing") from None
