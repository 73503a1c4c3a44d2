"""The manifest: one row per sample, the contract between dataset builders and every later stage.

``manifest.csv`` has the columns :data:`COLUMNS` (lists ``;``-separated, empty cells for "not applicable"),
optionally followed by dataset-specific extra columns. ``stats.json`` beside it records counts and the
provenance (metadata checksums, seed, options, tool version). The folder's files are written as one unit
(all staged, then renamed together) and byte-identically for the same inputs.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from macs_bench.errors import MacsError
from macs_bench.io import dumps_json, sha256_file, stage_bytes

COLUMNS = ("sample_id", "ytid", "start", "end", "labels", "mids", "n_labels", "frame_seconds", "fold", "split")
LIST_SEP = ";"

MANIFEST_NAME = "manifest.csv"
STATS_NAME = "stats.json"
DROPPED_NAME = "dropped.txt"


def split_list(cell: str | None) -> list[str]:
    """A ``;``-joined manifest cell (labels, mids, frame seconds, prompts) as its items; empty items dropped."""
    return [x for x in (cell or "").split(LIST_SEP) if x]


@dataclass(frozen=True)
class Sample:
    sample_id: str
    labels: tuple[str, ...]
    split: str
    ytid: str = ""
    start: str = ""
    end: str = ""
    mids: tuple[str, ...] = ()
    frame_seconds: tuple[int, ...] = ()
    fold: int | None = None
    extra: tuple[tuple[str, str], ...] = ()

    @property
    def n_labels(self) -> int:
        return len(self.labels)

    def cells(self) -> list[str]:
        for name, items in (("labels", self.labels), ("mids", self.mids)):
            bad = [x for x in items if LIST_SEP in x]
            if bad:
                raise MacsError(f"{self.sample_id}: {name} entry {bad[0]!r} contains the list separator ';'")
        return [
            self.sample_id,
            self.ytid,
            self.start,
            self.end,
            LIST_SEP.join(self.labels),
            LIST_SEP.join(self.mids),
            str(self.n_labels),
            LIST_SEP.join(str(s) for s in self.frame_seconds),
            "" if self.fold is None else str(self.fold),
            self.split,
        ] + [value for _, value in self.extra]


@dataclass
class Manifest:
    dataset: str
    samples: list[Sample]
    stats: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def extra_columns(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.samples[0].extra) if self.samples else ()

    def counts(self) -> dict[str, Any]:
        """Counts derived from the rows: totals, label-count histogram, per fold and per split."""
        n_labels = Counter(s.n_labels for s in self.samples)
        out: dict[str, Any] = {
            "n_samples": len(self.samples),
            "n_videos": len({s.ytid for s in self.samples if s.ytid}),
            "n_classes": len({m for s in self.samples for m in (s.mids or s.labels)}),
            "n_labels": {str(k): n_labels[k] for k in sorted(n_labels)},
            "splits": dict(sorted(Counter(s.split for s in self.samples).items())),
        }
        folds = Counter(s.fold for s in self.samples if s.fold is not None)
        if folds:
            out["folds"] = {str(k): folds[k] for k in sorted(folds)}
        return out

    def restrict(self, available: Path) -> tuple["Manifest", list[str]]:
        """Keep the samples named in ``available`` (sample ids or YTIDs, one per line); folds are kept."""
        wanted = read_id_list(available)
        by_sample = {s.sample_id for s in self.samples}
        by_ytid = {s.ytid for s in self.samples if s.ytid}
        unknown = sorted(i for i in wanted if i not in by_sample and i not in by_ytid)
        if len(unknown) == len(wanted):
            raise MacsError(f"{available}: none of its {len(wanted)} ids is a sample id or YTID of {self.dataset}")
        kept = [s for s in self.samples if s.sample_id in wanted or s.ytid in wanted]
        dropped = [s.sample_id for s in self.samples if not (s.sample_id in wanted or s.ytid in wanted)]
        restricted = replace(self, samples=kept, stats={"full_build": {**self.counts(), **self.stats}},
                             provenance=dict(self.provenance))
        restricted.provenance["available"] = {
            "file": Path(available).name,
            "sha256": sha256_file(available),
            "n_ids": len(wanted),
            "n_kept": len(kept),
            "n_dropped": len(dropped),
            "n_unknown_ids": len(unknown),
            "unknown_ids_first": unknown[:20],
        }
        return restricted, dropped

    def to_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(COLUMNS + self.extra_columns)
        for sample in self.samples:
            writer.writerow(sample.cells())
        return buf.getvalue()

    def write(self, out_dir: str | os.PathLike, dropped: Iterable[str] | None = None) -> dict[str, Path]:
        """Write ``manifest.csv`` and ``stats.json`` (and ``dropped.txt`` after :meth:`restrict`)."""
        out = Path(out_dir).expanduser()
        try:
            return self._write(out, dropped)
        except OSError as exc:
            raise MacsError(f"{exc.filename or out}: cannot write the manifest ({exc.strerror})") from None

    def _write(self, out: Path, dropped: Iterable[str] | None) -> dict[str, Path]:
        if out.exists() and not out.is_dir():
            raise MacsError(f"{out}: exists and is not a directory")
        existing = manifest_dataset(out / MANIFEST_NAME)
        if existing is not None and existing != self.dataset:
            raise MacsError(f"{out}: holds the {existing} manifest; build {self.dataset} into another folder")
        csv_bytes = self.to_csv().encode("utf-8")
        stats = {
            "dataset": self.dataset,
            **self.counts(),
            **self.stats,
            "manifest_sha256": hashlib.sha256(csv_bytes).hexdigest(),
            "provenance": self.provenance,
        }
        files: dict[str, bytes | None] = {
            MANIFEST_NAME: csv_bytes,
            # without --available a stale list from an earlier build would mislead: it goes
            DROPPED_NAME: None if dropped is None else "".join(f"{d}\n" for d in dropped).encode("utf-8"),
            STATS_NAME: dumps_json(stats).encode("utf-8"),
        }
        _replace_together(out, files)
        return {key: out / name for key, name in (("manifest", MANIFEST_NAME), ("dropped", DROPPED_NAME),
                                                  ("stats", STATS_NAME)) if files[name] is not None}


def _replace_together(folder: Path, files: dict[str, bytes | None]) -> None:
    """Stage every file beside its target first, then rename them all (``None``: remove the file), so a
    failure while writing leaves the folder's previous files untouched and matching each other."""
    folder.mkdir(parents=True, exist_ok=True)
    staged: list[tuple[str, Path]] = []
    try:
        for name, data in files.items():
            if data is not None:
                staged.append((name, stage_bytes(folder / name, data)))
    except BaseException:
        for _, tmp in staged:
            tmp.unlink(missing_ok=True)
        raise
    for name, tmp in staged:
        os.replace(tmp, folder / name)
    for name, data in files.items():
        if data is None:
            (folder / name).unlink(missing_ok=True)


def read_id_list(path: Path) -> set[str]:
    """Ids one per line (the first field: available.txt adds the padding after a tab); blank lines and ``#``
    comments ignored."""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8-sig")  # a byte-order mark would glue itself to the first id
    except OSError as exc:
        raise MacsError(f"{path}: cannot read id list ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise MacsError(f"{path}: id list is not UTF-8 text (byte {exc.start})") from None
    ids = {line.split()[0] for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")}
    if not ids:
        raise MacsError(f"{path}: the id list is empty")
    return ids


def manifest_csv(path: str | os.PathLike) -> Path:
    """A manifest given as its folder (``datasets build --out``) or its CSV, ``~`` expanded -> the CSV."""
    path = Path(path).expanduser()
    return path / MANIFEST_NAME if path.is_dir() else path


NUMBER_RE = re.compile(r"\d+(\.\d+)?")  # seconds as the builders write them: no sign, exponent or spaces
INT_COLUMNS = ("n_labels", "fold")
LIST_COLUMNS = ("labels", "mids", "frame_seconds")


def manifest_rows(path: str | os.PathLike) -> list[dict[str, str]]:
    """The cells of a written manifest (folder or CSV), one dict per row, lists still ``;``-joined: for the
    stages that need the text as written (ids, ranges). Checked on the way: the columns, each row's cell count
    and its numeric cells, so a bad cell is one line naming the file, row and column."""
    path = manifest_csv(path)
    try:
        # utf-8-sig: a spreadsheet's byte-order mark would otherwise glue itself to the first column's name
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or tuple(reader.fieldnames[: len(COLUMNS)]) != COLUMNS:
                raise MacsError(f"{path}:1: not a macs manifest (columns {reader.fieldnames})")
            rows = list(reader)
    except OSError as exc:
        raise MacsError(f"{path}: cannot read manifest ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise MacsError(f"{path}: manifest is not UTF-8 text (byte {exc.start})") from None
    except csv.Error as exc:
        raise MacsError(f"{path}: malformed CSV ({exc})") from None
    for lineno, row in enumerate(rows, 2):
        _check_row(path, lineno, row)
    return rows


@dataclass(frozen=True)
class FoldSamples:
    """The samples one evaluation reads (manifest order) with their labels, and the ids a model may train on."""

    ids: list[str]
    labels: dict[str, tuple[str, ...]]
    train: list[str]


def fold_samples(manifest: str | os.PathLike, fold: int | None, split: str | None = None) -> FoldSamples:
    """Fold K, the other folds training; else the ``split`` rows, the ``train`` split training; else every row,
    none training. The one fold selection: stage 2's ``fold_ids`` and the harness both read it."""
    rows = manifest_rows(manifest)
    if fold is not None:
        folds = sorted({r["fold"] for r in rows if r.get("fold")})
        if str(fold) not in folds:
            raise MacsError(f"{manifest}: no fold {fold} (folds: {', '.join(folds) or 'none'})")
        chosen = [r for r in rows if r["fold"] == str(fold)]
        train = [r for r in rows if r["fold"] != str(fold)]
    elif split is not None:
        chosen = [r for r in rows if r.get("split") == split]
        if not chosen:
            raise MacsError(f"{manifest}: no samples in split {split!r}")
        train = [r for r in rows if r.get("split") == "train"]
    else:
        chosen, train = rows, []
    return FoldSamples([r["sample_id"] for r in chosen],
                       {r["sample_id"]: tuple(split_list(r["labels"])) for r in chosen},
                       [r["sample_id"] for r in train])


def _check_row(path: Path, lineno: int, row: dict[str, str]) -> None:
    if None in row.values() or None in row:
        raise MacsError(f"{path}:{lineno}: wrong number of cells for the header's columns")
    for column in INT_COLUMNS:
        if row[column] and not (row[column].isascii() and row[column].isdigit()):
            raise MacsError(f"{path}:{lineno}: {column} {row[column]!r} is not a whole number (column {column})")
    for column in ("start", "end"):
        if row[column] and not NUMBER_RE.fullmatch(row[column]):
            raise MacsError(f"{path}:{lineno}: {column} {row[column]!r} is not a number of seconds such as "
                            f"30 or 12.5 (column {column})")
    bad = [x for x in row["frame_seconds"].split(LIST_SEP) if x and not (x.isascii() and x.isdigit())]
    if bad:
        raise MacsError(f"{path}:{lineno}: frame_seconds {row['frame_seconds']!r} holds {bad[0]!r}, not a whole second "
                        "(column frame_seconds)")


def read_manifest(path: str | os.PathLike):
    """A built manifest (its folder or ``manifest.csv``) as a pandas DataFrame indexed by ``sample_id``: list
    columns as lists, counts and folds as nullable integers, everything else as the CSV's text."""
    import pandas as pd

    rows = manifest_rows(path)
    extra = [k for k in (rows[0] if rows else {}) if k not in COLUMNS]
    frame = pd.DataFrame(rows, columns=list(COLUMNS) + extra)
    for column in LIST_COLUMNS:
        frame[column] = [split_list(v) for v in frame[column]]
    frame["frame_seconds"] = [[int(x) for x in v] for v in frame["frame_seconds"]]
    for column in INT_COLUMNS:
        frame[column] = pd.array([int(v) if v != "" else None for v in frame[column]], dtype="Int64")
    return frame.set_index("sample_id")


def manifest_stats(manifest: str | os.PathLike) -> dict[str, Any]:
    """The stats.json beside a manifest (folder or CSV); empty for a hand-made manifest without one."""
    import json

    try:
        stats = json.loads((manifest_csv(manifest).parent / STATS_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return stats if isinstance(stats, dict) else {}


def manifest_dataset(manifest: str | os.PathLike) -> str | None:
    """The dataset a manifest was built for, from the stats.json beside it (``None`` for a hand-made one)."""
    dataset = manifest_stats(manifest).get("dataset")
    return dataset if isinstance(dataset, str) else None
