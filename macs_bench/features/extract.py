"""Encode files in fixed-size batches through the cache: each file is read and encoded at most once.

Each image is decoded once for all the encoders that need it (:func:`encode_sets`), in a thread pool by
default (or DataLoader worker processes); memory holds one batch of inputs plus the features. Under
``accelerate launch`` (or torchrun) each uncached file is encoded by the process its content hash maps to, each
process writes to the shared cache, and every process then reads the complete set back in the same order, so
the numbers equal a single process's (bit for bit where the kernels are deterministic). An error in any process
is shared with all of them, so every process stops with the same one-line message instead of waiting.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from macs_bench.errors import MacsError
from macs_bench.features.cache import FeatureCache
from macs_bench.features.encoders import Encoder, ImageFile
from macs_bench.features.inputs import load_image
from macs_bench.io import sha256_file


def content_hash(path: Path) -> str:
    """The cache key of a file's content (its sha256), with a one-line error for an unreadable file."""
    try:
        return sha256_file(path)
    except OSError as exc:
        raise MacsError(f"{path}: cannot read ({exc.strerror})") from None


def decode_workers(requested: int | None) -> int:
    """Decoding threads when the caller leaves it to us (``None``): up to 8, one per CPU core."""
    return max(1, min(8, os.cpu_count() or 1)) if requested is None else requested


class _Inputs(torch.utils.data.Dataset):
    """Each file's inputs for every encoder that needs it, decoded once: an image file is read by one
    :func:`load_image` and its array handed to each :class:`ImageFile` encoder's ``transform``; other encoders
    (audio, a package's own readers) read the file themselves. A file's error travels back as its message."""

    def __init__(self, paths: Sequence[Path], needs: Sequence[Sequence[str]], encoders: dict[str, Encoder]):
        self.paths, self.needs = list(paths), list(needs)
        self.preprocess = {key: enc.preprocess for key, enc in encoders.items()}

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        path, out = self.paths[i], {}
        try:
            decoded = None
            for key in self.needs[i]:
                prep = self.preprocess[key]
                if isinstance(prep, ImageFile):
                    decoded = load_image(path) if decoded is None else decoded
                    out[key] = prep.transform(decoded)
                else:
                    out[key] = prep(path)
            return i, out, None
        except MacsError as exc:
            return i, None, str(exc)


def _collate(items):
    return items


def _batches(dataset: _Inputs, batch_size: int, num_workers: int | None):
    """Batches of ``(index, inputs, error)``: DataLoader worker processes when ``num_workers`` > 0, else a
    thread pool (PIL's decoders and resizers release the GIL), ``decode_workers(None)`` threads by default."""
    if num_workers:
        yield from torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=num_workers,
                                               collate_fn=_collate)
        return
    threads = decode_workers(num_workers)
    starts = range(0, len(dataset), batch_size)
    if threads <= 1:
        for start in starts:
            yield [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        return
    with ThreadPoolExecutor(threads) as pool:
        for start in starts:
            yield list(pool.map(dataset.__getitem__, range(start, min(start + batch_size, len(dataset)))))


def encode_files(paths: Sequence[Path], hashes: Sequence[str], encoder: Encoder, cache: FeatureCache, *,
                 device: torch.device, batch_size: int = 32, num_workers: int | None = 0, accelerator=None,
                 progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, int]:
    """``(features N x dim, number of files encoded now by all processes)``; cached features are reused."""
    return encode_sets(paths, hashes, {"x": encoder}, cache, device=device, batch_size=batch_size,
                       num_workers=num_workers, accelerator=accelerator, progress=progress)["x"]


def encode_sets(paths: Sequence[Path], hashes: Sequence[str], encoders: dict[str, Encoder], cache: FeatureCache,
                *, device: torch.device, batch_size: int = 32, num_workers: int | None = None, accelerator=None,
                progress: Callable[[int], None] | None = None) -> dict[str, tuple[np.ndarray, int]]:
    """Every encoder's ``(features N x dim, files encoded now by all processes)`` for one list of files, each
    file decoded once for all the encoders that lack its feature in the cache (once per group of encoders that
    lack the same files, when their caches differ)."""
    device = torch.device(device)
    cache_ids = {key: f"{enc.id}/{device.type}" for key, enc in encoders.items()}  # CPU and GPU bits differ
    features: dict[str, dict[str, np.ndarray]] = {key: {} for key in encoders}
    todo: dict[str, dict[str, Path]] = {key: {} for key in encoders}
    for path, h in zip(paths, hashes):
        for key, enc in encoders.items():
            if h in features[key] or h in todo[key]:
                continue
            feature = cache.get(cache_ids[key], h, enc.dim)
            if feature is None:
                todo[key][h] = path
            else:
                features[key][h] = feature
    # encoders missing the same files share one decode of them; each encoder's batches are its own sorted
    # list of missing files cut every batch_size, as when it ran alone (batched kernels give the same bits)
    groups: dict[tuple[str, ...], list[str]] = {}
    for key in encoders:
        groups.setdefault(tuple(sorted(todo[key])), []).append(key)
    error, mine = None, {key: 0 for key in encoders}
    for keys, members in groups.items():
        keys = list(keys)
        if accelerator is not None and accelerator.num_processes > 1:
            keys = _my_share(keys, accelerator, batch_size)
        try:
            mine.update(_encode(keys, {k: todo[k] for k in members}, {k: encoders[k] for k in members}, cache,
                                cache_ids, device, batch_size, num_workers, progress))
        except MacsError as exc:
            error = error or str(exc)
    encoded = _agree(accelerator, error, mine)
    out = {}
    for key, enc in encoders.items():
        late: dict[str, Path] = {}
        for h in todo[key]:  # encoded now, here or by another process
            feature = cache.get(cache_ids[key], h, enc.dim)
            if feature is None:  # e.g. removed by another job in the meantime: encode it here
                late[h] = todo[key][h]
            else:
                features[key][h] = feature
        if late:
            _encode(sorted(late), {key: late}, {key: enc}, cache, cache_ids, device, batch_size, num_workers, None)
            for h, path in late.items():
                feature = cache.get(cache_ids[key], h, enc.dim)
                if feature is None:
                    raise MacsError(f"{path}: {enc.name} feature missing from the cache after encoding")
                features[key][h] = feature
        matrix = np.empty((len(paths), enc.dim), dtype=np.float32)
        for row, h in enumerate(hashes):
            matrix[row] = features[key][h]
        out[key] = (matrix, encoded[key])
    return out


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


def _encode(keys, todo, encoders, cache, cache_ids, device, batch_size, num_workers, progress) -> dict[str, int]:
    """Encode the files ``keys`` (content hashes) for every encoder whose ``todo`` lists them; per-encoder
    counts of files encoded."""
    where = {h: p for t in todo.values() for h, p in t.items()}
    needs = [[key for key in encoders if h in todo[key]] for h in keys]
    dataset = _Inputs([where[h] for h in keys], needs, encoders)
    counts = {key: 0 for key in encoders}
    if keys:
        for enc in encoders.values():
            enc.to(device)
    for items in _batches(dataset, batch_size, num_workers):
        bad = [message for _, _, message in items if message is not None]
        if bad:
            raise MacsError(bad[0])
        for key, enc in encoders.items():
            rows = [(i, inputs[key]) for i, inputs, _ in items if key in inputs]
            if not rows:
                continue
            try:
                feats = enc.encode([x for _, x in rows], device)
            except RuntimeError as exc:
                names = ", ".join(where[keys[i]].name for i, _ in rows[:3])
                raise MacsError(f"{where[keys[rows[0][0]]].parent}: {enc.name} failed on {names}...: {exc}") from None
            for (i, _), feature in zip(rows, feats):
                if not np.isfinite(feature).all():
                    raise MacsError(f"{where[keys[i]]}: {enc.name} produced NaN or infinite features")
                try:
                    cache.put(cache_ids[key], keys[i], feature)
                except OSError as exc:
                    raise MacsError(f"{exc.filename or cache.root}: cannot write the feature cache "
                                    f"({exc.strerror})") from None
            counts[key] += len(rows)
        if progress is not None:
            progress(len(items))
    return counts


def _agree(accelerator, error: str | None, encoded: dict[str, int]) -> dict[str, int]:
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
    return {key: sum(n[key] for _, n in gathered) for key in encoded}
