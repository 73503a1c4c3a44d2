"""Encode files in fixed-size batches through the cache: each file is read and encoded at most once.

Preprocessing runs in DataLoader workers; memory holds one batch of inputs plus the features. Under
``accelerate launch`` (or torchrun) each uncached file is encoded by the process its content hash maps to, each
process writes to the shared cache, and every process then reads the complete set back in the same order, so
the numbers equal a single process's (bit for bit where the kernels are deterministic). An error in any process
is shared with all of them, so every process stops with the same one-line message instead of waiting.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from macs_bench.errors import MacsError
from macs_bench.features.cache import FeatureCache
from macs_bench.features.encoders import Encoder
from macs_bench.io import sha256_file


def content_hash(path: Path) -> str:
    """The cache key of a file's content (its sha256), with a one-line error for an unreadable file."""
    try:
        return sha256_file(path)
    except OSError as exc:
        raise MacsError(f"{path}: cannot read ({exc.strerror})") from None


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
    """``(features N x dim, number of files encoded now by all processes)``; cached features are reused."""
    device = torch.device(device)
    cache_id = f"{encoder.id}/{device.type}"  # CPU and GPU kernels differ in the last bits: never mix them
    features: dict[str, np.ndarray] = {}  # read once while listing, reused for the result
    todo: dict[str, Path] = {}
    for path, key in zip(paths, hashes):
        if key in features or key in todo:
            continue
        feature = cache.get(cache_id, key, encoder.dim)
        if feature is None:
            todo[key] = path
        else:
            features[key] = feature
    keys = sorted(todo)
    world = accelerator.num_processes if accelerator is not None else 1
    if world > 1:
        keys = _my_share(keys, accelerator, batch_size)
    where = dict(zip(hashes, paths))
    error = None
    try:
        _encode(keys, where, encoder, cache, cache_id, device, batch_size, num_workers, progress)
    except MacsError as exc:
        error = str(exc)
    encoded = _agree(accelerator, error, len(keys))
    late: dict[str, Path] = {}
    for key in todo:  # encoded now, here or by another process
        feature = cache.get(cache_id, key, encoder.dim)
        if feature is None:  # e.g. removed by another job in the meantime: encode it here
            late[key] = todo[key]
        else:
            features[key] = feature
    if late:
        _encode(sorted(late), late, encoder, cache, cache_id, device, batch_size, num_workers, None)
        for key, path in late.items():
            feature = cache.get(cache_id, key, encoder.dim)
            if feature is None:
                raise MacsError(f"{path}: {encoder.name} feature missing from the cache after encoding")
            features[key] = feature
    out = np.empty((len(paths), encoder.dim), dtype=np.float32)
    for row, key in enumerate(hashes):
        out[row] = features[key]
    return out, encoded


def _my_share(keys: list[str], accelerator, batch_size: int) -> list[str]:
    """This process's files: process 0's list of uncached files (one list for all, whatever other jobs write
    meanwhile), cut into the batches a single process would run, dealt round-robin. Each batch thus holds the
    same files as in a single-process run, so batched kernels give the same bits."""
    import torch.distributed as dist

    shared = [keys if accelerator.process_index == 0 else None]
    dist.broadcast_object_list(shared, src=0)
    batches = [shared[0][i:i + batch_size] for i in range(0, len(shared[0]), batch_size)]
    return [k for b, batch in enumerate(batches) if b % accelerator.num_processes == accelerator.process_index
            for k in batch]


def _encode(keys, todo, encoder, cache, cache_id, device, batch_size, num_workers, progress) -> None:
    loader = torch.utils.data.DataLoader(_Inputs([todo[k] for k in keys], encoder.preprocess), batch_size=batch_size,
                                         num_workers=num_workers, collate_fn=_collate)
    encoder.to(device)
    for items in loader:
        bad = [message for _, _, message in items if message is not None]
        if bad:
            raise MacsError(bad[0])
        try:
            feats = encoder.encode([x for _, x, _ in items], device)
        except RuntimeError as exc:
            names = ", ".join(todo[keys[i]].name for i, _, _ in items[:3])
            raise MacsError(f"{todo[keys[items[0][0]]].parent}: {encoder.name} failed on {names}...: {exc}") from None
        for (i, _, _), feature in zip(items, feats):
            if not np.isfinite(feature).all():
                raise MacsError(f"{todo[keys[i]]}: {encoder.name} produced NaN or infinite features")
            try:
                cache.put(cache_id, keys[i], feature)
            except OSError as exc:
                raise MacsError(f"{exc.filename or cache.root}: cannot write the feature cache ({exc.strerror})") from None
        if progress is not None:
            progress(len(items))


def _agree(accelerator, error: str | None, encoded: int) -> int:
    """Across processes: raise the first error any of them hit (in all of them), else sum the counts."""
    if accelerator is None or accelerator.num_processes <= 1:
        if error is not None:
            raise MacsError(error)
        return encoded
    import torch.distributed as dist

    gathered: list = [None] * accelerator.num_processes
    dist.all_gather_object(gathered, (error, encoded))
    errors = [e for e, _ in gathered if e is not None]
    if errors:
        raise MacsError(errors[0])
    return sum(n for _, n in gathered)
