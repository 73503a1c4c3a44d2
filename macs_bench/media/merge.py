"""``datasets merge-media``: fold the MEDIA folders of sharded fetches into one.

Per sample the best state wins (``ok`` over ``unavailable`` over ``failed``); a sample ``ok`` in two folders
with different files is a conflict, and the merge refuses before writing anything. Files are hard-linked
when the folders share a filesystem (never modified in place, so sharing is safe) and copied otherwise,
each through a temporary name; a sample becomes ``ok`` in the output ledger only after its files are in
place, so a killed merge is rerun like a killed fetch.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from macs_bench import __version__
from macs_bench.datasets.manifest import manifest_csv
from macs_bench.errors import MacsError
from macs_bench.io import atomic_write_text, dumps_json, file_lock, sha256_file
from macs_bench.media.items import read_items
from macs_bench.media.ledger import Entry, Ledger
from macs_bench.media.layout import LEDGER_NAME, MediaLayout
from macs_bench.media.progress import progress_bar
from macs_bench.media.report import availability, ledger_counts, write_available

RANK = {"ok": 0, "unavailable": 1, "failed": 2}


def sample_files(root: Path, entry: Entry) -> list[Path]:
    """The files an ``ok`` sample has in ``root``: its WAV and selected frame(s) (``frames_all`` apart)."""
    return MediaLayout(root).sample_files(entry.sample_id, entry.detail.get("frame_seconds") or [])


def _complete(root: Path, entry: Entry) -> bool:
    return all(p.is_file() for p in sample_files(root, entry))


def _same_files(a: Path, b: Path, entry: Entry) -> bool:
    pairs = zip(sample_files(a, entry), sample_files(b, entry))
    return all(x.samefile(y) or (x.stat().st_size == y.stat().st_size and sha256_file(x) == sha256_file(y))
               for x, y in pairs)


def _place(src: Path, dst: Path) -> None:
    """Link (or copy) ``src`` to ``dst`` through a temporary name, replacing what is there."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _place_tree(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        shutil.copytree(src, tmp, copy_function=_link_or_copy)
        if dst.exists():
            shutil.rmtree(dst)
        tmp.replace(dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def choose(candidates: list[tuple[Path, Entry]]) -> tuple[Path, Entry] | str:
    """The best ``(folder, entry)`` of one sample, or a conflict message."""
    complete_ok = [(root, e) for root, e in candidates if e.status == "ok" and _complete(root, e)]
    others = [(root, e) for root, e in candidates if e.status != "ok"]
    if complete_ok:
        first_root, first = complete_ok[0]
        for root, entry in complete_ok[1:]:
            if entry.detail.get("frame_seconds") != first.detail.get("frame_seconds") or \
                    not _same_files(first_root, root, first):
                return f"{first.sample_id} is ok in {first_root} and in {root} with different files"
        return complete_ok[0]
    if not others:  # ok in the ledger but files missing everywhere: fetch it again
        root, entry = candidates[0]
        return root, Entry(entry.sample_id, "failed", "files-missing", entry.attempts, entry.detail, entry.quality)
    return min(others, key=lambda c: RANK[c[1].status])


def quality_setting(root: Path, entries: dict[str, Entry]) -> dict[str, float] | None | str:
    """The quality thresholds a folder's samples were judged under (``None``: the filter off; ``"unknown"``: no
    sample says, e.g. a ledger of failures only); a folder judged under two is refused."""
    seen = {json.dumps(e.detail["thresholds"], sort_keys=True): e.detail["thresholds"] for e in entries.values()
            if "thresholds" in e.detail and (e.status == "ok" or e.reason == "poor-quality")}
    if len(seen) > 1:
        a, b = list(seen.values())[:2]
        raise MacsError(f"{root}: holds samples judged under different quality settings ({describe_quality(a, b)} "
                        f"and {describe_quality(b, a)}); fetch it again with one setting before merging")
    return next(iter(seen.values())) if seen else "unknown"


def describe_quality(setting: dict[str, float] | None, other: dict[str, float] | None = None) -> str:
    """``filter off``, or the thresholds (only those that differ from ``other``'s, when given)."""
    if setting is None:
        return "filter off"
    keys = [k for k in setting if not isinstance(other, dict) or other.get(k) != setting[k]]
    return ", ".join(f"{k}={setting[k]}" for k in keys)


def check_quality_settings(folders: dict[Path, dict[str, Entry]]) -> None:
    """Refuse to merge folders fetched with different quality settings: one would bring back clips the other
    rejects (a poor-quality clip is ok where the filter was off)."""
    settings = {root: quality_setting(root, entries) for root, entries in folders.items()}
    known = [(root, s) for root, s in settings.items() if s != "unknown"]
    for root, setting in known[1:]:
        first_root, first = known[0]
        if setting != first:
            raise MacsError(f"{first_root} and {root} were fetched with different quality settings "
                            f"({describe_quality(first, setting)} vs {describe_quality(setting, first)}); fetch "
                            "one again with the other's settings")


def merge_media(out: str | os.PathLike, sources: list[str | os.PathLike],
                manifest: str | os.PathLike | None = None, progress: bool | None = None) -> dict[str, Any]:
    """Merge the ledgers and files of ``sources`` into ``out`` (which may already hold a MEDIA folder, or be
    one of them); rewrite its available.txt and report. Returns the report. ``progress``: a bar on stderr
    (``None``: when stderr is a terminal)."""
    out = Path(out).expanduser()
    roots = [Path(s).expanduser() for s in sources]
    for root in roots:
        if not MediaLayout(root).ledger.is_file():
            raise MacsError(f"{root}: not a MEDIA folder (no {LEDGER_NAME})")
    if out.exists() and not out.is_dir():
        raise MacsError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    same = {root for root in roots if root.resolve() == out.resolve()}
    with ExitStack() as stack:
        for folder in [out, *[r for r in dict.fromkeys(roots) if r not in same]]:
            if not stack.enter_context(file_lock(MediaLayout(folder).lock, wait=False)):
                raise MacsError(f"{folder}: a fetch or merge is writing to this folder")
        ledger = stack.enter_context(Ledger(MediaLayout(out).ledger))
        candidates: dict[str, list[tuple[Path, Entry]]] = {}
        by_folder: dict[Path, dict[str, Entry]] = {}
        for root in [out, *[r for r in roots if r not in same]]:
            by_folder[root] = entries = ledger.all() if root == out else _read_ledger(root)
            for sid, entry in entries.items():
                candidates.setdefault(sid, []).append((root, entry))
        check_quality_settings(by_folder)
        chosen, conflicts = {}, []
        for sid, options in candidates.items():
            picked = choose(options)
            if isinstance(picked, str):
                conflicts.append(picked)
            else:
                chosen[sid] = picked
        if conflicts:
            raise MacsError(f"{len(conflicts)} conflicting samples, nothing merged; first: {conflicts[0]}")
        copied, changed = 0, []
        with progress_bar("merge", len(chosen), progress) as advance:
            for sid, (root, entry) in sorted(chosen.items()):
                if entry.status == "ok" and root != out:
                    for src, dst in zip(sample_files(root, entry), sample_files(out, entry)):
                        _place(src, dst)
                    if MediaLayout(root).frames_all(sid).is_dir():
                        _place_tree(MediaLayout(root).frames_all(sid), MediaLayout(out).frames_all(sid))
                    copied += 1
                if root != out or entry.reason == "files-missing":
                    changed.append(entry)
                advance(1)
        ledger.put_many(changed)  # after the files: a killed merge never leaves an ok row without them
        entries = ledger.all()
        write_available(out, entries)
        result = _report(out, roots, entries, manifest, copied)
    return result


def _read_ledger(root: Path) -> dict[str, Entry]:
    with Ledger(MediaLayout(root).ledger) as ledger:
        return ledger.all()


def _report(out: Path, roots: list[Path], entries: dict[str, Entry], manifest: str | os.PathLike | None,
            copied: int) -> dict[str, Any]:
    sources = []
    for root in roots:
        try:
            report = json.loads(MediaLayout(root).report.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            report = {}
        sources.append({"root": str(root), "shard": report.get("shard"), "manifest": report.get("manifest"),
                        "manifest_sha256": report.get("manifest_sha256"), "options": report.get("options")})
    if manifest is None:  # the manifest the shards were fetched from, if they agree and it is still there
        named = {(s["manifest"], s["manifest_sha256"]) for s in sources}
        if len(named) == 1 and None not in next(iter(named)):
            path, digest = next(iter(named))
            if Path(path).is_file() and sha256_file(path) == digest:
                manifest = path
    result: dict[str, Any] = {"tool": "macs-bench", "version": __version__, "merged_from": sources,
                              "this_run": {"copied": copied}}
    if manifest is not None:
        path = manifest_csv(manifest)
        result.update(manifest=str(path), manifest_sha256=sha256_file(path),
                      **availability(read_items(path), entries))
    result.update(ledger_counts(entries))
    atomic_write_text(MediaLayout(out).report, dumps_json(result))
    return result
