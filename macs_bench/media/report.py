"""What a MEDIA folder holds, written after every fetch and merge: ``available.txt`` and the report.

``available.txt`` is the ledger's whole ``ok`` set (one id a line, with the seconds of silence fetch padded its
audio with, if any), not one manifest's: fetching a subset into a shared MEDIA folder must not shrink the list
that ``datasets build --available`` reads next. The report counts the
manifest's own samples (``n_ok``) beside the ledger's (``n_ok_in_ledger``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from macs_bench.datasets.folds import label_count_bucket
from macs_bench.io import atomic_write_text
from macs_bench.media.items import FetchItem
from macs_bench.media.layout import MediaLayout
from macs_bench.media.ledger import Entry

STATES = ("ok", "unavailable", "failed", "pending")


@dataclass
class FetchReport:
    """What :func:`macs_bench.fetch` returns and writes to ``fetch_report.json`` (:meth:`to_dict`, same keys in
    the same order). ``n_*`` count the manifest's samples (``n_ok_in_ledger`` the whole ledger's);
    ``this_run`` counts this run's outcomes by status and the skipped samples."""

    tool: str
    version: str
    manifest: str
    manifest_sha256: str
    shard: str | None
    options: dict[str, Any]
    tools: dict[str, Any]
    n_samples: int
    n_ok: int
    by_label_count: dict[str, dict[str, int]]
    unavailable_reasons: dict[str, int]
    poor_quality_excluded: list[dict[str, Any]]
    failed: list[dict[str, Any]]
    n_ok_in_ledger: int
    ledger: dict[str, int]
    this_run: dict[str, int]
    this_run_seconds: float

    @property
    def n_failed(self) -> int:
        """The manifest's samples that failed transiently (a rerun retries them)."""
        return sum(c["failed"] for c in self.by_label_count.values())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FetchDryRun:
    """What a dry run of :func:`macs_bench.fetch` would do: nothing is written."""

    n_samples: int
    to_fetch: int
    skipped: dict[str, int]
    dry_run: bool = True


def available_line(sid: str, entry: Entry) -> str:
    """``<id>``, then ``<TAB>pad_start=<s>`` / ``<TAB>pad_end=<s>`` when fetch padded the audio with silence
    there (id readers such as ``datasets build --available`` take the first field)."""
    pads = [f"{key}={entry.detail[key]:g}" for key in ("pad_start", "pad_end") if entry.detail.get(key)]
    return "\t".join([sid, *pads]) + "\n"


def write_available(root: Path, entries: dict[str, Entry]) -> int:
    """Write the ledger's ``ok`` sample ids, sorted, each with its padding (:func:`available_line`); returns
    how many."""
    ok_ids = sorted(sid for sid, entry in entries.items() if entry.status == "ok")
    atomic_write_text(MediaLayout(root).available, "".join(available_line(sid, entries[sid]) for sid in ok_ids))
    return len(ok_ids)


def availability(items: list[FetchItem], entries: dict[str, Entry]) -> dict[str, Any]:
    """The manifest's samples by state and label-count bucket, reasons, excluded and failed clips."""
    buckets: dict[str, Counter] = {}
    reasons: Counter = Counter()
    excluded, failed = [], []
    for item in items:
        entry = entries.get(item.sample_id)
        status = entry.status if entry else "pending"
        bucket = label_count_bucket(item.n_labels) if item.n_labels else "audio"
        buckets.setdefault(bucket, Counter())[status] += 1
        if entry and entry.status == "unavailable":
            reasons[entry.reason] += 1
            if entry.reason == "poor-quality":
                excluded.append({"sample_id": item.sample_id, "why": entry.detail.get("detail", ""),
                                 **entry.quality})
        if entry and entry.status == "failed":
            failed.append({"sample_id": item.sample_id, "attempts": entry.attempts, "reason": entry.reason,
                           "detail": entry.detail.get("detail", "")})
    return {
        "n_samples": len(items),
        "n_ok": sum(c["ok"] for c in buckets.values()),
        "by_label_count": {b: {"total": sum(c.values()), **{s: c.get(s, 0) for s in STATES}}
                           for b, c in sorted(buckets.items())},
        "unavailable_reasons": dict(sorted(reasons.items())),
        "poor_quality_excluded": excluded,
        "failed": failed,
    }


def ledger_counts(entries: dict[str, Entry]) -> dict[str, Any]:
    """Every sample of the ledger by state (whatever manifests they came from)."""
    states = Counter(entry.status for entry in entries.values())
    return {"n_ok_in_ledger": states.get("ok", 0), "ledger": dict(sorted(states.items()))}
