"""The availability ledger: one row per sample with its fetch status, kept in SQLite under MEDIA.

Statuses: ``ok`` (media written and verified), ``unavailable`` (a permanent reason: removed, private,
no-audio, too-short, poor-quality, ...), ``failed`` (transient; retried on the next run). A row becomes ``ok``
only after every output file is in place, in one committed transaction, so a killed run never leaves a
partial clip counted as done. Only the main thread writes.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from macs_bench.errors import MacsError

STATUSES = ("ok", "unavailable", "failed")


@dataclass(frozen=True)
class Entry:
    sample_id: str
    status: str
    reason: str
    attempts: int
    detail: dict[str, Any]


class Ledger:
    def __init__(self, path: Path):
        self.path = Path(path)
        columns = {"sample_id", "status", "reason", "attempts", "detail"}
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS samples (sample_id TEXT PRIMARY KEY, status TEXT NOT NULL, "
                "reason TEXT NOT NULL DEFAULT '', attempts INTEGER NOT NULL DEFAULT 0, "
                "detail TEXT NOT NULL DEFAULT '{}')"
            )
            found = {row[1] for row in self.db.execute("PRAGMA table_info(samples)")}
        except sqlite3.DatabaseError as exc:
            raise MacsError(f"{self.path}: not a usable ledger ({exc}); move it away to start a new one") from None
        if found != columns:
            raise MacsError(f"{self.path}: not a macs ledger (columns {sorted(found)}); move it away to start a new one")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def get(self, sample_id: str) -> Entry | None:
        try:
            row = self.db.execute("SELECT sample_id, status, reason, attempts, detail FROM samples WHERE sample_id=?",
                                  (sample_id,)).fetchone()
            return _entry(row) if row else None
        except (sqlite3.DatabaseError, ValueError) as exc:
            raise MacsError(f"{self.path}: the ledger is damaged ({exc}); move it away to start a new one") from None

    def all(self) -> dict[str, Entry]:
        try:
            rows = self.db.execute("SELECT sample_id, status, reason, attempts, detail FROM samples").fetchall()
            return {row[0]: _entry(row) for row in rows}
        except (sqlite3.DatabaseError, ValueError) as exc:
            raise MacsError(f"{self.path}: the ledger is damaged ({exc}); move it away to start a new one") from None

    def record(self, sample_id: str, status: str, reason: str = "", attempts: int = 0,
               detail: dict[str, Any] | None = None) -> None:
        """Set a sample's status; ``attempts`` adds to the attempts already recorded."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        self.db.execute(
            "INSERT INTO samples (sample_id, status, reason, attempts, detail) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(sample_id) DO UPDATE SET status=excluded.status, reason=excluded.reason, "
            "attempts=samples.attempts + excluded.attempts, detail=excluded.detail",
            (sample_id, status, reason, attempts, json.dumps(detail or {}, sort_keys=True)),
        )


def _entry(row) -> Entry:
    return Entry(row[0], row[1], row[2], row[3], json.loads(row[4]))
