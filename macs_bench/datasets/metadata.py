"""Vendored upstream metadata: where it lives, checksum verification, and line-aware readers.

The pinned checksums are ``datasets/metadata/SHA256SUMS`` of this package, itself pinned by
:data:`SHA256SUMS_SHA256` here in the code, so editing a data file together with its checksum line is refused
too. A build reads metadata only through :class:`MetadataStore`, which verifies each file against its pinned
sha256 first, so a modified file is refused before anything is parsed. Readers report problems as
``path:line: problem``.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from macs_bench.errors import MetadataError
from macs_bench.io import parse_sha256sums, sha256_file


# sha256 of datasets/metadata/SHA256SUMS; change it only together with a deliberate metadata update.
SHA256SUMS_SHA256 = "5cc80c838822e8d444b1df101d543a888717b1998aa81f4b49d1ca607ed6c2c5"


def datasets_root() -> Path:
    """The ``datasets/`` folder: the repository's in a checkout, the packaged copy in a wheel install."""
    here = Path(__file__).resolve().parent.parent  # macs_bench/
    for candidate in (here / "_vendored", here.parent / "datasets"):
        if (candidate / "metadata" / "SHA256SUMS").is_file():
            return candidate
    raise MetadataError(f"{here.parent / 'datasets'}: vendored metadata not found (broken install?)")


def read_sha256sums(path: Path) -> dict[str, str]:
    return parse_sha256sums(Path(path).read_text(encoding="utf-8"), path, MetadataError)


class MetadataStore:
    """Verified access to metadata files by their pinned relative path (e.g. ``avvp/AVVP_train.csv``).

    ``root`` defaults to the vendored copy; another folder with the same layout may be given, and its files are
    still checked against the pinned checksums.
    """

    def __init__(self, root: str | os.PathLike | None = None):
        pinned_root = datasets_root() / "metadata"
        sums = pinned_root / "SHA256SUMS"
        if sha256_file(sums) != SHA256SUMS_SHA256:
            raise MetadataError(
                f"{sums}: does not match the checksum pinned in macs_bench; the vendored metadata was modified "
                "(restore it, e.g. with 'git checkout -- datasets/metadata')"
            )
        self.pinned = read_sha256sums(sums)
        self.root = Path(root).expanduser() if root is not None else pinned_root
        if not self.root.is_dir():
            raise MetadataError(f"{self.root}: metadata folder does not exist")
        self._verified: dict[str, str] = {}

    def verify(self, relpaths: Sequence[str]) -> dict[str, str]:
        """Check each file against its pinned sha256; return ``{relpath: sha256}``."""
        for rel in relpaths:
            if rel in self._verified:
                continue
            if rel not in self.pinned:
                raise MetadataError(f"{rel}: no pinned checksum in SHA256SUMS")
            path = self.root / rel
            if not path.is_file():
                raise MetadataError(f"{path}: metadata file is missing")
            actual = sha256_file(path)
            if actual != self.pinned[rel]:
                raise MetadataError(
                    f"{path}: sha256 {actual[:12]}... does not match the pinned {self.pinned[rel][:12]}...; "
                    "the file was modified (restore it, e.g. with 'git checkout -- datasets/metadata')"
                )
            self._verified[rel] = actual
        return {rel: self._verified[rel] for rel in relpaths}

    def path(self, rel: str) -> Path:
        """The path of a file that :meth:`verify` has already accepted."""
        if rel not in self._verified:
            self.verify([rel])
        return self.root / rel


def read_table(
    path: Path,
    header: Sequence[str],
    *,
    delimiter: str = ",",
    skip_comments: bool = False,
    skipinitialspace: bool = False,
) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line_number, fields)`` for each data row, checking the header and the field count.

    With ``skip_comments``, leading ``#`` lines are skipped; the header may be the last of them (Google's
    AudioSet CSVs write ``# YTID, start_seconds, ...``).
    """
    try:
        yield from _read_table(path, header, delimiter, skip_comments, skipinitialspace)
    except UnicodeDecodeError as exc:
        raise MetadataError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def _read_table(path, header, delimiter, skip_comments, skipinitialspace):
    with open(path, encoding="utf-8", newline="") as fh:
        lines: Iterator[str] = fh
        first_line = 1
        if skip_comments:
            buffered = list(fh)
            n_comments = 0
            while n_comments < len(buffered) and buffered[n_comments].startswith("#"):
                n_comments += 1
            if n_comments and _fields(buffered[n_comments - 1].lstrip("#"), delimiter) == list(header):
                buffered[n_comments - 1] = buffered[n_comments - 1].lstrip("#")
                n_comments -= 1
            lines = iter(buffered[n_comments:])
            first_line = n_comments + 1
        reader = csv.reader(lines, delimiter=delimiter, skipinitialspace=skipinitialspace, strict=True)
        try:
            got = next(reader)
        except StopIteration:
            raise MetadataError(f"{path}: empty file, expected header {list(header)}") from None
        except csv.Error as exc:
            raise MetadataError(f"{path}:{first_line}: {exc}") from None
        if [h.strip() for h in got] != list(header):
            raise MetadataError(f"{path}:{first_line}: expected header {list(header)}, found {got}")
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise MetadataError(f"{path}:{first_line + reader.line_num - 1}: {exc}") from None
            lineno = first_line + reader.line_num - 1
            if not row:
                continue
            if len(row) != len(header):
                raise MetadataError(
                    f"{path}:{lineno}: expected {len(header)} {_sep_name(delimiter)}-separated fields, "
                    f"found {len(row)}"
                )
            yield lineno, row


def _fields(line: str, delimiter: str) -> list[str]:
    return [f.strip() for f in line.strip().split(delimiter)]


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        try:
            return json.load(fh)
        except json.JSONDecodeError as exc:
            raise MetadataError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None


def _sep_name(delimiter: str) -> str:
    return {",": "comma", "\t": "tab"}.get(delimiter, repr(delimiter))
