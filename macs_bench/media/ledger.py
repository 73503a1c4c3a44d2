"""The availability ledger: one row per sample with its fetch status, kept in SQLite under MEDIA.

Statuses: ``ok`` (media written and verified), ``unavailable`` (a permanent reason: removed, private,
no-audio, too-short, poor-quality, ...), ``failed`` (transient; retried on the next run). A row becomes ``ok``
only after every output file is in place, in one committed transaction, so a killed run never leaves a
partial clip counted as done. Only the main thread writes.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from macs_bench.errors import MacsError
from macs_bench.media.storage import is_corrupt, ledger_storage_error

STATUSES = ("ok", "unavailable", "failed")


# the quality filter's measurements, as columns of their own (NULL: not measured)
QUALITY_COLUMNS = ("rms_dbfs", "frame_std", "motion")
_BASE_COLUMNS = ("sample_id", "status", "reason", "attempts", "detail")
_SELECT = f"SELECT {', '.join(_BASE_COLUMNS + QUALITY_COLUMNS)}, problems FROM samples"


@dataclass(frozen=True)
class Entry:
    sample_id: str
    status: str
    reason: str
    attempts: int
    detail: dict[str, Any]
    # measured values (rms_dbfs, frame_std, motion) and ``problems``, a list; empty when not measured
    quality: dict[str, Any] = field(default_factory=dict)


class Ledger:
    def __init__(self, path: Path):
        self.path = Path(path)
        columns = set(_BASE_COLUMNS + QUALITY_COLUMNS) | {"problems"}
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS samples (sample_id TEXT PRIMARY KEY, status TEXT NOT NULL, "
                "reason TEXT NOT NULL DEFAULT '', attempts INTEGER NOT NULL DEFAULT 0, "
                "detail TEXT NOT NULL DEFAULT '{}', rms_dbfs REAL, frame_std REAL, motion REAL, "
                "problems TEXT NOT NULL DEFAULT '')"
            )
            found = {row[1] for row in self.db.execute("PRAGMA table_info(samples)")}
            if found == set(_BASE_COLUMNS):  # a ledger from before the quality columns: add them
                for name in QUALITY_COLUMNS:
                    self.db.execute(f"ALTER TABLE samples ADD COLUMN {name} REAL")
                self.db.execute("ALTER TABLE samples ADD COLUMN problems TEXT NOT NULL DEFAULT ''")
                found = columns
        except sqlite3.DatabaseError as exc:
            if not is_corrupt(exc):
                raise ledger_storage_error(exc, self.path, "opening") from None
            raise MacsError(f"{self.path}: not a usable ledger ({exc}); move it away to start a new one") from None
        if found != columns:
            raise MacsError(f"{self.path}: not a macs ledger (columns {sorted(found)}); move it away to start a new one")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """SQLite's errors as one line: a damaged ledger (move it away) or the disk (free space, rerun)."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            if not is_corrupt(exc):
                raise ledger_storage_error(exc, self.path, doing) from None
            raise MacsError(f"{self.path}: the ledger is damaged ({exc}); move it away to start a new one") from None
        except ValueError as exc:  # a stored detail that is not JSON
            if doing != "reading":
                raise
            raise MacsError(f"{self.path}: the ledger is damaged ({exc}); move it away to start a new one") from None

    def get(self, sample_id: str) -> Entry | None:
        with self._errors("reading"):
            row = self.db.execute(f"{_SELECT} WHERE sample_id=?", (sample_id,)).fetchone()
            return _entry(row) if row else None

    def all(self) -> dict[str, Entry]:
        with self._errors("reading"):
            return {row[0]: _entry(row) for row in self.db.execute(_SELECT).fetchall()}

    def record(self, sample_id: str, status: str, reason: str = "", attempts: int = 0,
               detail: dict[str, Any] | None = None, quality: dict[str, Any] | None = None) -> None:
        """Set a sample's status; ``attempts`` adds to the attempts already recorded."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        q = quality or {}
        with self._errors("writing"):
            self._insert(sample_id, status, reason, attempts, detail, q)

    def _insert(self, sample_id: str, status: str, reason: str, attempts: int, detail: dict[str, Any] | None,
                q: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT INTO samples (sample_id, status, reason, attempts, detail, rms_dbfs, frame_std, motion, problems) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(sample_id) DO UPDATE SET status=excluded.status, reason=excluded.reason, "
            "attempts=samples.attempts + excluded.attempts, detail=excluded.detail, rms_dbfs=excluded.rms_dbfs, "
            "frame_std=excluded.frame_std, motion=excluded.motion, problems=excluded.problems",
            (sample_id, status, reason, attempts, json.dumps(detail or {}, sort_keys=True),
             *(q.get(name) for name in QUALITY_COLUMNS), ",".join(q.get("problems", ()))),
        )

    def put_many(self, entries: list[Entry]) -> None:
        """Store entries as they are (attempts replaced, not added), in one transaction: for merging ledgers."""
        with self._errors("writing"):
            self.db.execute("BEGIN IMMEDIATE")
            try:
                for entry in entries:
                    if entry.status not in STATUSES:
                        raise ValueError(f"unknown status {entry.status!r}")
                    self.db.execute("DELETE FROM samples WHERE sample_id=?", (entry.sample_id,))
                    self._insert(entry.sample_id, entry.status, entry.reason, entry.attempts, entry.detail,
                                 entry.quality)
            except BaseException:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")


def _entry(row) -> Entry:
    quality = {name: value for name, value in zip(QUALITY_COLUMNS, row[5:8]) if value is not None}
    if quality or row[8]:
        quality["problems"] = [p for p in row[8].split(",") if p]
    return Entry(row[0], row[1], row[2], row[3], json.loads(row[4]), quality)
