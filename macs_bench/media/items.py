"""The samples ``datasets fetch`` works on: a manifest's rows, checked, and their deterministic shards.

A shard is the set of samples whose YouTube video hashes to it (``sha256(ytid) mod N``), so N machines
given ``--shard 0/N`` ... ``--shard N-1/N`` fetch disjoint parts that together make the whole manifest, and
never two clips of one video on two machines (one download per video, one IP per video).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from macs_bench.datasets.frames import whole_seconds
from macs_bench.datasets.manifest import manifest_csv, manifest_rows, split_list
from macs_bench.datasets.segments import is_ytid
from macs_bench.errors import MacsError

SAMPLE_ID_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,199}")


@dataclass(frozen=True)
class FetchItem:
    sample_id: str
    ytid: str
    start: str
    end: str
    frame_seconds: tuple[int, ...]
    n_labels: int

    @property
    def audio_only(self) -> bool:
        return not self.ytid

    @property
    def duration(self) -> float:
        return float(Decimal(self.end) - Decimal(self.start))


def read_items(manifest_dir: Path) -> list[FetchItem]:
    """The manifest's samples, checked: safe unique ids, YouTube ids, a range, frame seconds inside it."""
    items: list[FetchItem] = []
    path = manifest_csv(manifest_dir)
    seen: dict[str, int] = {}
    for lineno, row in enumerate(manifest_rows(path), 2):
        sid = row["sample_id"]
        if not SAMPLE_ID_RE.fullmatch(sid) or ".." in sid:
            raise MacsError(f"{path}:{lineno}: sample_id {sid!r} is not a safe file name")
        if sid in seen:
            raise MacsError(f"{path}:{lineno}: sample_id {sid} repeats line {seen[sid]}")
        seen[sid] = lineno
        if row["ytid"] and not is_ytid(row["ytid"]):
            raise MacsError(f"{path}:{lineno}: ytid {row['ytid']!r} is not a YouTube id")
        try:
            frames = tuple(int(x) for x in split_list(row["frame_seconds"]))
            n_labels = int(row["n_labels"] or 0)
            item = FetchItem(sid, row["ytid"], row["start"], row["end"], frames, n_labels)
            if not item.audio_only:
                if item.duration <= 0:
                    raise ValueError("end is not after start")
                n_seconds = whole_seconds(item.start, item.end)
                if len(set(frames)) != len(frames) or any(not 0 <= k < n_seconds for k in frames):
                    raise ValueError(f"frame_seconds {row['frame_seconds']!r} must be distinct seconds 0 to "
                                     f"{n_seconds - 1}")
        except (ValueError, ArithmeticError) as exc:
            raise MacsError(f"{path}:{lineno}: {exc}") from None
        items.append(item)
    extra_names = {f"{i.sample_id}.s{k}" for i in items for k in i.frame_seconds[1:]}
    clash = sorted(extra_names & set(seen))
    if clash:
        raise MacsError(f"{path}:{seen[clash[0]]}: sample_id {clash[0]} clashes with another sample's frame file")
    return items


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> ``(K, N)`` with ``0 <= K < N``."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not match or not 0 <= int(match[1]) < int(match[2]):
        raise MacsError(f"shard {text!r}: expected K/N with 0 <= K < N, e.g. 0/4")
    return int(match[1]), int(match[2])


def shard_of(item: FetchItem, n_shards: int) -> int:
    """The shard of a sample: by its video (its own id for audio-only samples), stable across runs."""
    key = item.ytid or item.sample_id
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") % n_shards


def select_shard(items: list[FetchItem], shard: tuple[int, int] | None) -> list[FetchItem]:
    if shard is None:
        return items
    k, n = shard
    return [item for item in items if shard_of(item, n) == k]
