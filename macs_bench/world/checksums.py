"""``SHA256SUMS`` of the world weights (``sha256sum -c`` format): written by the trainer, checked on load."""

from __future__ import annotations

from pathlib import Path

from macs_bench.errors import MacsError
from macs_bench.io import atomic_write_text, format_sha256sums, parse_sha256sums, sha256_file


def _root_and_sums(path: Path) -> tuple[Path, Path] | None:
    """The folder holding the ``SHA256SUMS`` that covers ``path`` (its own folder or an ancestor)."""
    from macs_bench.world import SUMS_FILE

    for folder in [path.parent, *path.parent.parents][:3]:
        if (folder / SUMS_FILE).is_file():
            return folder, folder / SUMS_FILE
    return None


def read_sums(sums: Path) -> dict[str, str]:
    """name -> sha256 of a ``SHA256SUMS`` file; a missing or malformed one is a MacsError."""
    try:
        text = sums.read_text(encoding="utf-8")
    except OSError as exc:
        raise MacsError(f"{sums}: cannot read the world checksums ({exc.strerror}); rebuild the world with: "
                        "python tools/train_world.py") from None
    return parse_sha256sums(text, sums)


def verify(path: Path) -> str:
    """The file's sha256, after checking it against the ``SHA256SUMS`` that lists it (if one does)."""
    path = Path(path)
    if not path.is_file():
        raise MacsError(f"{path}: world weights not found; rebuild them with: python tools/train_world.py")
    digest = sha256_file(path)
    found = _root_and_sums(path)
    if found is not None:
        root, sums = found
        expected = read_sums(sums).get(path.relative_to(root).as_posix())
        if expected is not None and expected != digest:
            raise MacsError(f"{path}: corrupt world weights (sha256 {digest[:12]}..., {sums.name} says "
                            f"{expected[:12]}...); rebuild them with: python tools/train_world.py")
    return digest


def verify_tree(root: Path) -> dict[str, str]:
    """Check every weights file ``root/SHA256SUMS`` lists under ``root``; returns name -> sha256."""
    from macs_bench.world import SUMS_FILE

    sums = read_sums(Path(root) / SUMS_FILE)
    for name, digest in sums.items():
        path = Path(root) / name
        if not path.is_file() or sha256_file(path) != digest:
            raise MacsError(f"{path}: missing or corrupt world weights (expected sha256 {digest[:12]}...); "
                            "rebuild them with: python tools/train_world.py")
    return sums


def write_sums(root: Path, names: list[str]) -> dict[str, str]:
    """Write ``root/SHA256SUMS`` for the given relative paths (sorted); returns name -> sha256."""
    from macs_bench.world import SUMS_FILE

    sums = {name: sha256_file(Path(root) / name) for name in sorted(names)}
    atomic_write_text(Path(root) / SUMS_FILE, format_sha256sums(sums))
    return sums
