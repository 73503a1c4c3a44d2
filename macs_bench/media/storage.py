"""Disk full and I/O errors, told apart from damaged data: they stop a run with one line and the rerun exit
status, and never with advice to move a ledger away (the ledger is fine; the disk is not)."""

from __future__ import annotations

import errno
import os
import re
import shutil
import sqlite3
from pathlib import Path

from macs_bench.errors import RetryLater

# errno values that say "the disk", not "this input": full, over quota, file-size limit, read-only, I/O
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO})
_DISK_TEXT = re.compile(r"no space left|disk quota|file too large|read-only file system|input/output error", re.I)
_SQLITE_CORRUPT = ("SQLITE_CORRUPT", "SQLITE_NOTADB")
_SQLITE_CORRUPT_TEXT = re.compile(r"malformed|not a database|corrupt", re.I)


class StorageError(RetryLater):
    """The disk refused a write or a read (full, quota, I/O error); what is recorded so far is kept."""


def is_disk_error(exc: BaseException) -> bool:
    """An OSError of the disk (ENOSPC, EDQUOT, EFBIG, EROFS, EIO), or a tool's message saying so (ffmpeg's
    "No space left on device")."""
    if isinstance(exc, OSError) and exc.errno in DISK_ERRNOS:
        return True
    return bool(_DISK_TEXT.search(str(exc)))


def disk_error(exc: BaseException, where: str | os.PathLike | None = None) -> StorageError:
    """One line for a disk error: where, what, and that a rerun continues."""
    where = getattr(exc, "filename", None) or where
    what = os.strerror(exc.errno) if isinstance(exc, OSError) and exc.errno else str(exc).strip().splitlines()[-1]
    full = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT) or "space" in what.lower()
    advice = "free space" if full else "check the disk"
    return StorageError(f"{where}: {what}; {advice}, then rerun the same command (finished clips are kept)")


def is_corrupt(exc: sqlite3.Error) -> bool:
    """SQLite's "this file is damaged or not a database", as opposed to a full disk, an I/O error, a lock or
    a file it could not open (``sqlite3.OperationalError``)."""
    name = getattr(exc, "sqlite_errorname", None)
    if name:
        return name.startswith(_SQLITE_CORRUPT)
    return not isinstance(exc, sqlite3.OperationalError) or bool(_SQLITE_CORRUPT_TEXT.search(str(exc)))


def _nearly_full(path: str | os.PathLike) -> bool:
    """Under 1 MiB free where the ledger lives: SQLite often says "disk I/O error" when its WAL cannot grow."""
    try:
        return shutil.disk_usage(Path(path).parent).free < 2**20
    except OSError:
        return False


def ledger_storage_error(exc: sqlite3.Error, path: str | os.PathLike, doing: str) -> StorageError:
    """One line for a ledger that could not be opened, read or written for a reason of the disk."""
    text = str(exc)
    if "full" in text.lower() or getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL" or _nearly_full(path):
        return StorageError(f"{path}: disk full while {doing} the ledger ({text}); free space, then rerun the "
                            "same command (the ledger is intact)")
    return StorageError(f"{path}: I/O error while {doing} the ledger ({text}); this is the disk or the folder's "
                        "permissions, not a damaged ledger: fix that, then rerun the same command")
