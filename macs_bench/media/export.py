"""``datasets export``: a manifest's fetched samples as training-ready shards, WebDataset tars or Parquet.

Each sample is its 16 kHz WAV, its (first) selected frame as JPEG, and its labels, fold and split as JSON
with the sha256 of both files. Shard ``i`` holds the ``i``-th run of ``shard_size`` samples in manifest order,
so a killed export resumes at the first shard missing from ``index.json`` (rewritten after each shard, with
every shard's sha256; ``SHA256SUMS`` beside it for ``sha256sum -c``). Samples are streamed: memory stays flat.

WebDataset splits a member name at its first dot, so a sample id's dots (``abc_2.5_12.5``) become commas
in the tar's key; the JSON holds the exact id.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from macs_bench import __version__
from macs_bench.datasets.manifest import manifest_csv, manifest_rows, split_list
from macs_bench.errors import MacsError
from macs_bench.io import atomic_write_text, dumps_json, file_lock, format_sha256sums, sha256_file
from macs_bench.media.layout import LEDGER_NAME, MediaLayout
from macs_bench.media.ledger import Ledger

FORMATS = ("webdataset", "parquet")
INDEX_NAME = "index.json"
SUMS_NAME = "SHA256SUMS"
PARQUET_BATCH = 16  # rows per Parquet row group: the most samples held in memory at once (~7 MB)


def wds_key(sample_id: str) -> str:
    return sample_id.replace(".", ",")


def sample_record(row: dict[str, str], media: MediaLayout) -> dict[str, Any]:
    """One sample: ``wav`` and ``jpg`` bytes (``jpg`` None for audio-only samples) and its JSON metadata."""
    sid = row["sample_id"]
    wav = media.audio(sid).read_bytes()
    jpg = media.frame(sid).read_bytes() if row["frame_seconds"] else None
    meta: dict[str, Any] = {
        "sample_id": sid, "ytid": row["ytid"], "start": row["start"], "end": row["end"],
        "labels": _split(row["labels"]), "mids": _split(row["mids"]), "n_labels": int(row["n_labels"] or 0),
        "frame_seconds": [int(x) for x in _split(row["frame_seconds"])],
        "fold": int(row["fold"]) if row["fold"] else None, "split": row["split"],
        **{k: v for k, v in row.items() if k not in META_COLUMNS},
        "sha256": {"wav": hashlib.sha256(wav).hexdigest(), **({"jpg": hashlib.sha256(jpg).hexdigest()} if jpg else {})},
    }
    return {"sample_id": sid, "wav": wav, "jpg": jpg, "meta": meta}


META_COLUMNS = ("sample_id", "ytid", "start", "end", "labels", "mids", "n_labels", "frame_seconds", "fold", "split")


def _split(cell: str) -> list[str]:
    return split_list(cell)


def selection(manifest: Path, media: MediaLayout) -> list[dict[str, str]]:
    """The manifest's rows whose sample is ``ok`` in MEDIA's ledger with its files present, in manifest order."""
    if not media.ledger.is_file():
        raise MacsError(f"{media.root}: not a MEDIA folder (no {LEDGER_NAME})")
    with Ledger(media.ledger) as ledger:
        ok = {sid for sid, e in ledger.all().items() if e.status == "ok"}
    rows = [r for r in manifest_rows(manifest) if r["sample_id"] in ok
            and media.audio(r["sample_id"]).is_file()
            and (not r["frame_seconds"] or media.frame(r["sample_id"]).is_file())]
    if not rows:
        raise MacsError(f"{media.root}: none of the manifest's samples is fetched (ok in the ledger, files present)")
    return rows


def export(manifest_dir: str | os.PathLike, media: str | os.PathLike, out: str | os.PathLike,
           fmt: str = "webdataset", shard_size: int = 1000, overwrite: bool = False) -> dict[str, Any]:
    """Write (or resume writing) the shards; returns the index. ``overwrite`` discards an earlier export in
    ``out`` (its shards, index and sums) and starts afresh, instead of resuming or refusing it."""
    if fmt not in FORMATS:
        raise MacsError(f"export format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if shard_size < 1:
        raise MacsError(f"shard size must be at least 1, got {shard_size}")
    manifest = manifest_csv(manifest_dir)
    layout, out = MediaLayout(media), Path(out).expanduser()
    rows = selection(manifest, layout)
    ids = "\n".join(r["sample_id"] for r in rows).encode("utf-8")
    index: dict[str, Any] = {
        "tool": "macs-bench", "version": __version__, "format": fmt, "shard_size": shard_size,
        "manifest": str(manifest), "manifest_sha256": sha256_file(manifest), "media": str(layout.root),
        "n_samples": len(rows), "selection_sha256": hashlib.sha256(ids).hexdigest(), "shards": [],
        "complete": False,
    }
    if out.exists() and not out.is_dir():
        raise MacsError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    with file_lock(out / ".lock", wait=False) as held:
        if not held:
            raise MacsError(f"{out}: another export is writing to this folder")
        for stale in out.glob(".*.tmp"):
            stale.unlink()
        if overwrite:
            for old in [*out.glob("shard-*.tar"), *out.glob("part-*.parquet"), out / INDEX_NAME, out / SUMS_NAME]:
                old.unlink(missing_ok=True)
        index["shards"] = _resumable(out, index)
        chunks = [rows[i:i + shard_size] for i in range(0, len(rows), shard_size)]
        for number in range(len(index["shards"]), len(chunks)):
            name = f"shard-{number:06d}.tar" if fmt == "webdataset" else f"part-{number:06d}.parquet"
            tmp = out / f".{name}.tmp"
            (_write_tar if fmt == "webdataset" else _write_parquet)(tmp, (sample_record(r, layout) for r in
                                                                          chunks[number]))
            os.replace(tmp, out / name)
            index["shards"].append({"name": name, "n_samples": len(chunks[number]),
                                    "first": chunks[number][0]["sample_id"], "last": chunks[number][-1]["sample_id"],
                                    "bytes": (out / name).stat().st_size, "sha256": sha256_file(out / name)})
            _write_index(out, index)
        index["complete"] = True
        _write_index(out, index)
    return index


def _resumable(out: Path, index: dict[str, Any]) -> list[dict[str, Any]]:
    """The shards an earlier run of the same export finished (each still on disk, same size)."""
    try:
        old = json.loads((out / INDEX_NAME).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise MacsError(f"{out / INDEX_NAME}: unreadable ({exc}); remove it to export afresh") from None
    same = all(old.get(k) == index[k] for k in ("format", "shard_size", "selection_sha256"))
    if not same:
        raise MacsError(f"{out}: holds an export of another selection, format or shard size; export elsewhere "
                        "or overwrite it")
    done = []
    for shard in old.get("shards", []):
        path = out / shard["name"]
        if not path.is_file() or path.stat().st_size != shard["bytes"]:
            break
        done.append(shard)
    return done


def _write_index(out: Path, index: dict[str, Any]) -> None:
    atomic_write_text(out / SUMS_NAME, format_sha256sums({s["name"]: s["sha256"] for s in index["shards"]}))
    atomic_write_text(out / INDEX_NAME, dumps_json(index))


def _write_tar(path: Path, records: Iterator[dict[str, Any]]) -> None:
    import webdataset as wds

    with open(path, "wb") as fh:
        writer = wds.TarWriter(fh, encoder=False, mtime=0)  # fixed mtime: the same samples give the same bytes
        for rec in records:
            sample = {"__key__": wds_key(rec["sample_id"]), "wav": rec["wav"],
                      "json": json.dumps(rec["meta"], ensure_ascii=False, sort_keys=True).encode("utf-8")}
            if rec["jpg"] is not None:
                sample["jpg"] = rec["jpg"]
            writer.write(sample)
        writer.close()
        fh.flush()
        os.fsync(fh.fileno())


def parquet_schema():
    import pyarrow as pa

    return pa.schema([("sample_id", pa.string()), ("ytid", pa.string()), ("start", pa.string()), ("end", pa.string()),
                      ("labels", pa.list_(pa.string())), ("mids", pa.list_(pa.string())), ("n_labels", pa.int32()),
                      ("frame_seconds", pa.list_(pa.int32())), ("fold", pa.int32()), ("split", pa.string()),
                      ("json", pa.string()), ("wav", pa.binary()), ("jpg", pa.binary())])


def _write_parquet(path: Path, records: Iterator[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = parquet_schema()
    with pq.ParquetWriter(path, schema) as writer:
        batch: list[dict[str, Any]] = []
        for rec in records:
            meta = rec["meta"]
            batch.append({**{k: meta[k] for k in META_COLUMNS}, "json": json.dumps(meta, sort_keys=True),
                          "wav": rec["wav"], "jpg": rec["jpg"]})
            if len(batch) == PARQUET_BATCH:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                batch = []
        if batch:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())
