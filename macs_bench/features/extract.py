"""Encode files in fixed-size batches through the cache: each file is read and encoded at most once.

Preprocessing runs in DataLoader workers; memory holds one batch of inputs plus the features. Under
``accelerate launch`` the uncached files are split across processes, each writes its features to the shared
cache, and every process then reads the complete set back in the same order, so results equal a single
process's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from macs_bench.errors import MacsError
from macs_bench.features.cache import FeatureCache
from macs_bench.features.encoders import Encoder


def content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
    except OSError as exc:
        raise MacsError(f"{path}: cannot read ({exc.strerror})") from None
    return digest.hexdigest()


class _Inputs(torch.utils.data.Dataset):
    """Preprocessed inputs; a file's error travels back as its message so the main process can say it."""

    def __init__(self, paths: Sequence[Path], preprocess: Callable[[Path], torch.Tensor]):
        self.paths, self.preprocess = list(paths), preprocess

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        try:
            return i, self.preprocess(self.paths[i]), None
        except MacsError as exc:
            return i, None, str(exc)


def _collate(items):
    return items


def encode_files(paths: Sequence[Path], hashes: Sequence[str], encoder: Encoder, cache: FeatureCache, *,
                 device: torch.device, batch_size: int = 32, num_workers: int = 0, accelerator=None,
                 progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, int]:
    """``(features N x dim, number of files encoded now)``; cached features are reused."""
    todo: dict[str, Path] = {}
    for path, key in zip(paths, hashes):
        if key not in todo and cache.get(encoder.id, key, encoder.dim) is None:
            todo[key] = path
    keys = sorted(todo)
    if accelerator is not None and accelerator.num_processes > 1:
        accelerator.wait_for_everyone()  # every process has listed the same uncached files before any writes
        keys = keys[accelerator.process_index::accelerator.num_processes]
    loader = torch.utils.data.DataLoader(_Inputs([todo[k] for k in keys], encoder.preprocess), batch_size=batch_size,
                                         num_workers=num_workers, collate_fn=_collate)
    encoder.to(device)
    for items in loader:
        bad = [message for _, _, message in items if message is not None]
        if bad:
            raise MacsError(bad[0])
        feats = encoder.encode([x for _, x, _ in items], device)
        for (i, _, _), feature in zip(items, feats):
            if not np.isfinite(feature).all():
                raise MacsError(f"{todo[keys[i]]}: {encoder.name} produced NaN or infinite features")
            cache.put(encoder.id, keys[i], feature)
        if progress is not None:
            progress(len(items))
    if accelerator is not None:
        accelerator.wait_for_everyone()
    out = np.empty((len(paths), encoder.dim), dtype=np.float32)
    for row, (path, key) in enumerate(zip(paths, hashes)):
        feature = cache.get(encoder.id, key, encoder.dim)
        if feature is None:
            raise MacsError(f"{path}: {encoder.name} feature missing from the cache after encoding")
        out[row] = feature
    return out, len(keys)
