"""``datasets export``: a manifest's fetched samples as training-ready shards, WebDataset tars or Parquet.

Each sample is its 16 kHz WAV, its (first) selected frame as JPEG, and its labels, fold, split, the seconds
of silence fetch padded at the audio's start and end, and the sha256 of both files as JSON. Shard ``i`` holds
the ``i``-th run of ``shard_size`` samples in manifest order, so a killed export resumes at the first shard
missing from ``index.json`` (rewritten after each shard, with every shard's sha256; ``SHA256SUMS`` beside it
for ``sha256sum -c``). Beside each shard ``<shard>_stats.json`` counts its samples by fold, split, label and
label count. Samples are streamed: memory stays flat.

Parquet stores ``wav`` and ``jpg`` as Hugging Face ``Audio`` / ``Image`` structs (``bytes``, ``path``) with the
features in the schema's ``huggingface`` metadata, so ``datasets.load_dataset("parquet", ...)`` decodes them.
WebDataset splits a member name at its first dot, so a sample id's dots (``abc_2.5_12.5``) become commas
in the tar's key; the JSON holds the exact id.

While it reads MEDIA an export holds the folder's lock shared: a fetch or merge (which hold it exclusively)
cannot change the files under it, and an export never starts during one.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import wave
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from macs_bench import __version__
from macs_bench.datasets.manifest import STATS_NAME, manifest_csv, manifest_rows, manifest_stats, split_list
from macs_bench.errors import MacsError
from macs_bench.io import atomic_write_text, dumps_json, file_lock, format_sha256sums, sha256_file
from macs_bench.media.ffmpeg import SAMPLE_RATE
from macs_bench.media.layout import LEDGER_NAME, MediaLayout
from macs_bench.media.ledger import Entry, Ledger
from macs_bench.media.progress import progress_bar

FORMATS = ("webdataset", "parquet")
INDEX_NAME = "index.json"
SUMS_NAME = "SHA256SUMS"
STATS_SUFFIX = "_stats.json"
PARQUET_BATCH = 16  # rows per Parquet row group: the most samples held in memory at once (~7 MB)
META_COLUMNS = ("sample_id", "ytid", "start", "end", "labels", "mids", "n_labels", "frame_seconds", "fold", "split")
PAD_COLUMNS = ("pad_start", "pad_end")


def wds_key(sample_id: str) -> str:
    return sample_id.replace(".", ",")


def shard_stats_name(shard: str) -> str:
    """``shard-000000.tar`` -> ``shard-000000_stats.json``."""
    return f"{shard.rsplit('.', 1)[0]}{STATS_SUFFIX}"


def padding(entry: Entry | None) -> dict[str, float | None]:
    """Seconds of silence fetch added before and after the real audio (``None``: not recorded, an old ledger);
    audio-only samples are whole files, never padded."""
    detail = entry.detail if entry is not None else {}
    if detail.get("source") == "fsd50k":
        return {"pad_start": 0.0, "pad_end": 0.0}
    return {k: (float(detail[k]) if detail.get(k) is not None else None) for k in PAD_COLUMNS}


def sample_record(row: dict[str, str], media: MediaLayout, entry: Entry | None = None) -> dict[str, Any]:
    """One sample: ``wav`` and ``jpg`` bytes (``jpg`` None for audio-only samples) and its JSON metadata."""
    sid = row["sample_id"]
    wav = _read(media.audio(sid))
    jpg = _read(media.frame(sid)) if row["frame_seconds"] else None
    meta: dict[str, Any] = {
        "sample_id": sid, "ytid": row["ytid"], "start": row["start"], "end": row["end"],
        "labels": split_list(row["labels"]), "mids": split_list(row["mids"]), "n_labels": int(row["n_labels"] or 0),
        "frame_seconds": [int(x) for x in split_list(row["frame_seconds"])],
        "fold": int(row["fold"]) if row["fold"] else None, "split": row["split"],
        **padding(entry),
        **{k: v for k, v in row.items() if k not in META_COLUMNS},
        "sha256": {"wav": hashlib.sha256(wav).hexdigest(), **({"jpg": hashlib.sha256(jpg).hexdigest()} if jpg else {})},
    }
    return {"sample_id": sid, "wav": wav, "jpg": jpg, "meta": meta}


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise MacsError(f"{path}: cannot read ({exc.strerror or exc}); fetch it again") from None


def check_folds(manifest: Path, rows: list[dict[str, str]]) -> None:
    """Every fold cell names a fold of the manifest's stats.json (a hand-made manifest without one: unchecked)."""
    folds = manifest_stats(manifest).get("folds")
    if not isinstance(folds, dict) or not folds:
        return
    known = {str(k) for k in folds}
    for lineno, row in enumerate(rows, 2):
        if row["fold"] and str(int(row["fold"])) not in known:
            names = ", ".join(sorted(known, key=lambda k: (len(k), k)))
            raise MacsError(f"{manifest}:{lineno}: fold {row['fold']} is not one of the folds {names} of "
                            f"{manifest.parent / STATS_NAME}")


def selection(manifest: Path, media: MediaLayout) -> list[tuple[dict[str, str], Entry]]:
    """The manifest's rows whose sample is ``ok`` in MEDIA's ledger with its files present, in manifest order,
    each with its ledger entry."""
    rows = manifest_rows(manifest)
    check_folds(manifest, rows)
    with Ledger(media.ledger) as ledger:  # export() checked that the ledger exists before taking the lock
        ok = {sid: e for sid, e in ledger.all().items() if e.status == "ok"}
    chosen = [(r, ok[r["sample_id"]]) for r in rows if r["sample_id"] in ok
              and media.audio(r["sample_id"]).is_file()
              and (not r["frame_seconds"] or media.frame(r["sample_id"]).is_file())]
    if not chosen:
        raise MacsError(f"{media.root}: none of the manifest's samples is fetched (ok in the ledger, files present)")
    return chosen


def _check_out(out: Path, layout: MediaLayout) -> None:
    media, target = layout.root.resolve(), out.resolve()
    if target == media or media in target.parents:
        raise MacsError(f"{out}: inside the MEDIA folder {layout.root}; export to a folder outside it")
    if out.exists() and not out.is_dir():
        raise MacsError(f"{out}: exists and is not a folder")


def _require(module: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise MacsError(f"datasets export needs {module}: pip install 'macs[export]'")


def export(manifest_dir: str | os.PathLike, media: str | os.PathLike, out: str | os.PathLike,
           fmt: str = "webdataset", shard_size: int = 1000, overwrite: bool = False,
           progress: bool | None = None) -> dict[str, Any]:
    """Write (or resume writing) the shards; returns the index. ``overwrite`` discards an earlier export in
    ``out`` (its shards, index and sums) and starts afresh, instead of resuming or refusing it. ``progress``:
    a bar on stderr (``None``: when stderr is a terminal)."""
    if fmt not in FORMATS:
        raise MacsError(f"export format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if shard_size < 1:
        raise MacsError(f"shard size must be at least 1, got {shard_size}")
    _require("webdataset" if fmt == "webdataset" else "pyarrow")
    manifest = manifest_csv(manifest_dir)
    layout, out = MediaLayout(media), Path(out).expanduser()
    if not layout.ledger.is_file():  # before taking its lock: the lock would create the folder
        raise MacsError(f"{layout.root}: not a MEDIA folder (no {LEDGER_NAME})")
    _check_out(out, layout)
    try:
        with file_lock(layout.lock, wait=False, shared=True) as free:
            if not free:
                raise MacsError(f"{layout.root}: a fetch or merge is writing to this MEDIA folder; export after it "
                                "ends")
            return _export(manifest, layout, out, fmt, shard_size, overwrite, progress)
    except OSError as exc:
        raise MacsError(f"{exc.filename or out}: cannot export ({exc.strerror or exc})") from None


def _export(manifest: Path, layout: MediaLayout, out: Path, fmt: str, shard_size: int, overwrite: bool,
            progress: bool | None) -> dict[str, Any]:
    chosen = selection(manifest, layout)
    ids = "\n".join(r["sample_id"] for r, _ in chosen).encode("utf-8")
    index: dict[str, Any] = {
        "tool": "macs-bench", "version": __version__, "format": fmt, "shard_size": shard_size,
        "manifest": str(manifest), "manifest_sha256": sha256_file(manifest), "media": str(layout.root),
        "n_samples": len(chosen), "selection_sha256": hashlib.sha256(ids).hexdigest(), "shards": [],
        "complete": False,
    }
    out.mkdir(parents=True, exist_ok=True)
    with file_lock(out / ".lock", wait=False) as held:
        if not held:
            raise MacsError(f"{out}: another export is writing to this folder")
        for stale in out.glob(".*.tmp"):
            stale.unlink()
        if overwrite:
            for old in [*out.glob("shard-*.tar"), *out.glob("part-*.parquet"), *out.glob(f"*{STATS_SUFFIX}"),
                        out / INDEX_NAME, out / SUMS_NAME]:
                old.unlink(missing_ok=True)
        index["shards"] = _resumable(out, index)
        chunks = [chosen[i:i + shard_size] for i in range(0, len(chosen), shard_size)]
        done = sum(s["n_samples"] for s in index["shards"])
        with progress_bar("export", len(chosen), progress) as advance:
            advance(done)
            for number in range(len(index["shards"]), len(chunks)):
                name = f"shard-{number:06d}.tar" if fmt == "webdataset" else f"part-{number:06d}.parquet"
                index["shards"].append(_write_shard(out, name, fmt, chunks[number], layout, advance))
                _write_index(out, index)
        index["complete"] = True
        _write_index(out, index)
    return index


def _write_shard(out: Path, name: str, fmt: str, chunk: list[tuple[dict[str, str], Entry]], layout: MediaLayout,
                 advance) -> dict[str, Any]:
    """One shard through a temporary name (removed whatever goes wrong), then its stats; returns its index row."""
    tmp, path = out / f".{name}.tmp", out / name
    stats = ShardStats()

    def records() -> Iterator[dict[str, Any]]:
        for row, entry in chunk:
            rec = sample_record(row, layout, entry)
            stats.add(rec)
            yield rec
            advance(1)

    try:
        (_write_tar if fmt == "webdataset" else _write_parquet)(tmp, records())
        os.replace(tmp, path)
    except OSError as exc:
        raise MacsError(f"{path}: cannot write the shard ({exc.strerror or exc})") from None
    finally:
        tmp.unlink(missing_ok=True)
    shard = {"name": name, "n_samples": len(chunk), "first": chunk[0][0]["sample_id"],
             "last": chunk[-1][0]["sample_id"], "bytes": path.stat().st_size, "sha256": sha256_file(path),
             "stats": shard_stats_name(name)}
    atomic_write_text(out / shard["stats"], dumps_json({**{k: shard[k] for k in ("name", "sha256", "bytes")},
                                                        **stats.as_dict()}))
    return shard


class ShardStats:
    """Counts of one shard's samples, for its ``_stats.json``."""

    def __init__(self) -> None:
        self.n, self.audio_only, self.seconds, self.padded, self.pad_seconds = 0, 0, 0.0, 0, 0.0
        self.folds: Counter = Counter()
        self.splits: Counter = Counter()
        self.n_labels: Counter = Counter()
        self.labels: Counter = Counter()

    def add(self, rec: dict[str, Any]) -> None:
        meta = rec["meta"]
        self.n += 1
        self.audio_only += rec["jpg"] is None
        with wave.open(io.BytesIO(rec["wav"])) as fh:
            self.seconds += fh.getnframes() / fh.getframerate()
        pad = sum(meta[k] or 0.0 for k in PAD_COLUMNS)
        self.padded += pad > 0
        self.pad_seconds += pad
        if meta["fold"] is not None:
            self.folds[str(meta["fold"])] += 1
        self.splits[meta["split"]] += 1
        self.n_labels[str(meta["n_labels"])] += 1
        self.labels.update(meta["labels"])

    def as_dict(self) -> dict[str, Any]:
        def ordered(counter: Counter) -> dict[str, int]:
            return dict(sorted(counter.items(), key=lambda kv: (len(kv[0]), kv[0])))

        return {"n_samples": self.n, "n_audio_only": self.audio_only, "audio_seconds": round(self.seconds, 3),
                "n_padded": self.padded, "pad_seconds": round(self.pad_seconds, 3), "folds": ordered(self.folds),
                "splits": dict(sorted(self.splits.items())), "n_labels": ordered(self.n_labels),
                "labels": dict(sorted(self.labels.items()))}


def _resumable(out: Path, index: dict[str, Any]) -> list[dict[str, Any]]:
    """The shards an earlier run of the same export finished (each still on disk, same size, with its stats)."""
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
        if not path.is_file() or path.stat().st_size != shard["bytes"] or \
                not (out / shard.get("stats", shard_stats_name(shard["name"]))).is_file():
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
        try:
            for rec in records:
                sample = {"__key__": wds_key(rec["sample_id"]), "wav": rec["wav"],
                          "json": json.dumps(rec["meta"], ensure_ascii=False, sort_keys=True).encode("utf-8")}
                if rec["jpg"] is not None:
                    sample["jpg"] = rec["jpg"]
                writer.write(sample)
        except BaseException:
            with contextlib.suppress(Exception):  # closed now, while the file is open: not later, by the collector
                writer.close()
            raise
        writer.close()
        fh.flush()
        os.fsync(fh.fileno())


# the Hugging Face features of the media columns (datasets' own Parquet convention: a struct of bytes and path)
HF_FEATURES = {"wav": {"_type": "Audio", "sampling_rate": SAMPLE_RATE}, "jpg": {"_type": "Image"}}


def parquet_schema():
    import pyarrow as pa

    media = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    schema = pa.schema([("sample_id", pa.string()), ("ytid", pa.string()), ("start", pa.string()), ("end", pa.string()),
                        ("labels", pa.list_(pa.string())), ("mids", pa.list_(pa.string())), ("n_labels", pa.int32()),
                        ("frame_seconds", pa.list_(pa.int32())), ("fold", pa.int32()), ("split", pa.string()),
                        ("pad_start", pa.float32()), ("pad_end", pa.float32()),
                        ("json", pa.string()), ("wav", media), ("jpg", media)])
    return schema.with_metadata({"huggingface": json.dumps({"info": {"features": HF_FEATURES}})})


def _write_parquet(path: Path, records: Iterator[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = parquet_schema()
    with pq.ParquetWriter(path, schema) as writer:
        batch: list[dict[str, Any]] = []
        for rec in records:
            meta, sid = rec["meta"], rec["sample_id"]
            batch.append({**{k: meta[k] for k in META_COLUMNS + PAD_COLUMNS}, "json": json.dumps(meta, sort_keys=True),
                          "wav": {"bytes": rec["wav"], "path": f"{sid}.wav"},
                          "jpg": None if rec["jpg"] is None else {"bytes": rec["jpg"], "path": f"{sid}.jpg"}})
            if len(batch) == PARQUET_BATCH:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                batch = []
        if batch:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())
