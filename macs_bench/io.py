"""File helpers shared by every writer: hashing and atomic writes (temporary file, then rename)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from macs_bench.errors import MacsError


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


_SUMS_LINE = re.compile(r"([0-9a-f]{64}) [ *](.+)")


def parse_sha256sums(text: str, source: str | os.PathLike, error: type[Exception] = MacsError) -> dict[str, str]:
    """name -> sha256 of a ``sha256sum`` listing (``<hex>  <name>``, or ``<hex> *<name>``; blank lines
    skipped); a malformed line is an ``error`` naming ``source`` and the line."""
    sums = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        match = _SUMS_LINE.fullmatch(line.rstrip("\r"))
        if not match:
            raise error(f"{source}:{lineno}: expected '<sha256>  <file>', got {line[:80]!r}")
        sums[match.group(2)] = match.group(1)
    return sums


def format_sha256sums(sums: dict[str, str]) -> str:
    """The ``sha256sum -c`` listing of name -> sha256, in the mapping's order."""
    return "".join(f"{digest}  {name}\n" for name, digest in sums.items())


def stage_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to a new temporary file beside ``path`` (synced, with the mode ``open()`` would give);
    returns it for the caller to rename into place. Nothing is left behind when the write fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one."""
    tmp = stage_bytes(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def dumps_json(obj: Any) -> str:
    """Stable JSON (insertion order, fixed indent, trailing newline) so rebuilds are byte-identical."""
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


@contextmanager
def file_lock(path: str | os.PathLike, *, wait: bool = True, shared: bool = False) -> Iterator[bool]:
    """Hold an advisory lock on ``path`` (created if needed): exclusive, or ``shared`` with other shared holders
    (readers such as export beside each other, never beside a writer); released when the block ends, or when
    the process dies. With ``wait=False`` the block gets ``False`` instead of waiting for another holder."""
    import fcntl

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:  # "a": a shared holder must not truncate what an exclusive one wrote
        try:
            fcntl.flock(fh, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
