"""The verified cache on disk: where entries live, their checks (sha256 / hub blob ids), trust on first use, and
remembered hashes so a large file is hashed again only when it changed."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from macs_bench.errors import MacsError
from macs_bench.io import atomic_write_text, dumps_json, format_sha256sums, parse_sha256sums, sha256_file
from macs_bench.weights import registry
from macs_bench.weights.registry import _HEX40, _HEX64, VerifyResult, WeightRow, WeightSpec, pin_kind

LOCAL_SUMS = "SHA256SUMS.local"
CHUNK = 1 << 20


def cache_dir() -> Path:
    """``$MACS_HOME/weights``, else ``$XDG_CACHE_HOME/macs/weights``, else ``~/.cache/macs/weights``."""
    home = os.environ.get("MACS_HOME")
    if home:
        return Path(home).expanduser() / "weights"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg and os.path.isabs(os.path.expanduser(xdg)) else Path.home() / ".cache"
    return base / "macs" / "weights"


def local_path(name: str) -> Path:
    """Where the entry lives in the cache (a file, or an hf-repo's snapshot folder), present or not."""
    spec = _spec(name)
    if spec.kind == "hf-repo":
        return _hf_root(spec) / "snapshots" / str(spec.revision)
    return cache_dir() / spec.filename


def path(name: str) -> Path:
    """The verified local file (or snapshot folder); a missing or corrupt one raises :class:`MacsError`."""
    spec = _spec(name)
    result = _check(spec)
    if result.status == "missing":
        raise MacsError(f"{result.path}: missing weights {name!r}; fetch them with: macs-bench weights fetch {name}")
    if result.status == "corrupt":
        raise MacsError(f"{result.path}: corrupt weights {name!r} ({result.detail}); "
                        f"fetch them again with: macs-bench weights fetch {name}")
    _trust(spec, result)
    return result.path


def expected_sha256(name: str) -> str | None:
    """The hash a file entry must have: the pinned one, else the one recorded on first use (None if neither)."""
    spec = _spec(name)
    return spec.sha256 or _read_sums().get(spec.filename)


def verify(name: str | None = None) -> list[VerifyResult]:
    """The state of one entry, or of every entry: ok, missing, corrupt (hash or size mismatch) or unpinned.

    Every present file is hashed again in full (``path`` trusts a file whose size and mtime are unchanged)."""
    names = [name] if name is not None else list(registry.WEIGHTS)
    for n in names:
        _sidecar(local_path(n)).unlink(missing_ok=True)
        _digest_store(_spec(n)).unlink(missing_ok=True)  # a hub snapshot's per-blob hashes
    return [_check(_spec(n)) for n in names]


def list_weights() -> list[WeightRow]:
    """One row per registry entry, without hashing anything."""
    rows = []
    for spec in registry.WEIGHTS.values():
        where = local_path(spec.name)
        marker = where / spec.filename if spec.kind == "hf-repo" else where
        present = marker.is_file()
        size = where.stat().st_size if present and spec.kind == "file" else spec.size
        rows.append(WeightRow(spec.name, str(where), size, present, spec.pinned, spec.used_by, pin_kind(spec)))
    return rows


def _spec(name: str) -> WeightSpec:
    try:
        return registry.WEIGHTS[name]
    except KeyError:
        raise MacsError(f"unknown weights {name!r}; known: {', '.join(registry.WEIGHTS)}") from None


def _check(spec: WeightSpec) -> VerifyResult:
    where = local_path(spec.name)
    if spec.kind == "hf-repo":
        return _check_hf(spec, where)
    if not where.is_file():
        return VerifyResult(spec.name, "missing", where, spec.sha256, None, "not downloaded")
    size = where.stat().st_size
    if spec.size is not None and size != spec.size:
        return VerifyResult(spec.name, "corrupt", where, spec.sha256, None, f"{size} bytes, expected {spec.size}")
    actual = _digest(where, _sidecar(where), "sha256")
    if spec.sha256 is not None:
        if actual == spec.sha256:
            return VerifyResult(spec.name, "ok", where, spec.sha256, actual, "sha256 matches the pinned hash")
        return VerifyResult(spec.name, "corrupt", where, spec.sha256, actual,
                            f"sha256 {actual}, expected {spec.sha256}")
    recorded = _read_sums().get(spec.filename)
    if recorded is None:
        return VerifyResult(spec.name, "unpinned", where, None, actual, "unpinned (not recorded yet)")
    if actual == recorded:
        return VerifyResult(spec.name, "unpinned", where, recorded, actual, "unpinned (recorded locally)")
    return VerifyResult(spec.name, "corrupt", where, recorded, actual,
                        f"sha256 {actual}, expected {recorded} as recorded in {cache_dir() / LOCAL_SUMS}")


def _trust(spec: WeightSpec, result: VerifyResult) -> None:
    """Trust on first use: record the hash of an unpinned file that has no record yet."""
    if result.status == "unpinned" and result.expected is None and result.actual is not None:
        try:
            _record(spec.filename, result.actual)
        except OSError:
            pass  # a read-only shared cache: use the file unrecorded


def _mismatch(spec: WeightSpec, digest: str, recorded: str | None) -> str | None:
    if spec.sha256 is not None and digest != spec.sha256:
        return f"sha256 {digest}, expected {spec.sha256}"
    if recorded is not None and digest != recorded:
        return (f"sha256 {digest}, expected {recorded} as recorded in {cache_dir() / LOCAL_SUMS} (if that record "
                f"came from a bad copy, delete its line there and fetch again)")
    return None


def _sidecar(file: Path) -> Path:
    return file.with_name(file.name + ".verified.json")


def _digest(file: Path, store: Path, algo: str) -> str:
    """``file``'s digest, from ``store`` when its (size, mtime_ns) still match, else hashed and remembered."""
    return _digests([file], store, algo)[0]


def _digests(files: list[Path], store: Path, algo: str) -> list[str]:
    try:
        entries = json.loads(store.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        entries = {}
    if not isinstance(entries, dict):
        entries = {}
    out, changed = [], False
    for file in files:
        before = file.stat()
        key = f"{file.name} {algo}"
        entry = entries.get(key)
        if (isinstance(entry, dict) and entry.get("size") == before.st_size
                and entry.get("mtime_ns") == before.st_mtime_ns and isinstance(entry.get("digest"), str)):
            out.append(entry["digest"])
            continue
        value = _hash(file, algo)
        after = file.stat()
        if (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns):
            entries[key] = {"size": after.st_size, "mtime_ns": after.st_mtime_ns, "digest": value}
            changed = True
        out.append(value)
    if changed:
        try:
            atomic_write_text(store, dumps_json(entries))
        except OSError:
            pass  # a read-only cache: hash again next time
    return out


def _remember(file: Path, digest: str) -> None:
    st = file.stat()
    entry = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "digest": digest}
    try:
        atomic_write_text(_sidecar(file), dumps_json({f"{file.name} sha256": entry}))
    except OSError:
        pass


def _hash(file: Path, algo: str) -> str:
    if algo == "sha256":
        return sha256_file(file)
    digest = hashlib.sha1(f"blob {file.stat().st_size}\0".encode(), usedforsecurity=False)  # git's blob id
    with open(file, "rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _read_sums() -> dict[str, str]:
    sums_file = cache_dir() / LOCAL_SUMS
    try:
        text = sums_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    return parse_sha256sums(text, sums_file)


def _record(filename: str, digest: str) -> None:
    sums = _read_sums()
    sums[filename] = digest
    atomic_write_text(cache_dir() / LOCAL_SUMS, format_sha256sums(dict(sorted(sums.items()))))


# -- downloads ---------------------------------------------------------------------------------------------------


def _hf_root(spec: WeightSpec) -> Path:
    return cache_dir() / "hf" / ("models--" + str(spec.repo_id).replace("/", "--"))


def _check_hf(spec: WeightSpec, snapshot: Path) -> VerifyResult:
    pinned = f"pinned by {spec.repo_id}@{spec.revision}"
    if not snapshot.is_dir():
        return VerifyResult(spec.name, "missing", snapshot, spec.revision, None, "not downloaded")
    problems = _hf_problems(spec, snapshot)
    if problems:
        return VerifyResult(spec.name, "corrupt", snapshot, spec.revision, None, f"{pinned}: {'; '.join(problems)}")
    return VerifyResult(spec.name, "ok", snapshot, spec.revision, spec.revision, f"complete, every file {pinned}")


def _digest_store(spec: WeightSpec) -> Path:
    """Where the blob hashes of a hub snapshot are kept between checks (``verify`` deletes it to re-hash)."""
    return cache_dir() / f"{spec.name}.verified.json"


def _hf_problems(spec: WeightSpec, snapshot: Path) -> list[str]:
    """What is missing or wrong in a snapshot: the marker file, a component folder, a blob whose hash differs."""
    index = snapshot / spec.filename
    if not index.is_file():
        return [f"incomplete: no {spec.filename}"]
    problems = [f"incomplete: no {name}" for name in spec.allow_patterns
                if not any(ch in name for ch in "*?[") and not (snapshot / name).is_file()]
    if spec.filename == "model_index.json":
        try:
            components = json.loads(index.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            return [f"unreadable {spec.filename}: {exc}"]
        problems += [f"incomplete: no {key}/" for key, value in components.items()
                    if not key.startswith("_") and isinstance(value, list) and value and value[0] is not None
                    and not (snapshot / key).is_dir()]
    blobs: dict[str, list[Path]] = {"sha256": [], "git-sha1": []}
    expected: dict[Path, str] = {}
    for link in sorted(snapshot.rglob("*")):
        if not link.is_symlink():
            continue
        blob = link.resolve()
        if not blob.is_file():
            problems.append(f"broken link {link.relative_to(snapshot)}")
            continue
        algo = "sha256" if _HEX64.fullmatch(blob.name) else "git-sha1" if _HEX40.fullmatch(blob.name) else None
        if algo is not None:
            blobs[algo].append(blob)
            expected[blob] = blob.name
    store = _digest_store(spec)
    for algo, files in blobs.items():
        for blob, actual in zip(files, _digests(files, store, algo)):
            if actual != expected[blob]:
                problems.append(f"{blob.name}: {algo} {actual}")
    return problems
