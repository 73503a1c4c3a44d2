"""AudioSet-Eval: the 20,371 AudioSet evaluation segments, labels by MID, in 5 video-grouped folds."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from macs_bench.datasets.folds import assign_folds, label_count_bucket
from macs_bench.datasets.frames import centre_second, frame_histogram
from macs_bench.datasets.manifest import Manifest, Sample
from macs_bench.datasets.metadata import MetadataStore, read_table
from macs_bench.datasets.ontology import Ontology
from macs_bench.datasets.segments import is_ytid, normalise_seconds, sample_id
from macs_bench.errors import MetadataError

SEGMENTS = "audioset/eval_segments.csv"
ONTOLOGY = "audioset/ontology.json"
DISPLAY_NAMES = "macs/AudioSet.csv"
FILES = (SEGMENTS, ONTOLOGY, DISPLAY_NAMES)

PAPER = {
    "n_samples": 15712,
    "n_classes": 610,
    "single_label_fraction": 0.207,
    "why": "The paper counts the clips it could download, minus 20 unnamed poor-quality ones; its class count "
    "comes from splitting comma-joined display names (see comma_split_classes).",
}


def read_segments(path: Path) -> list[tuple[int, str, str, str, list[str]]]:
    """``(line, ytid, start, end, mids)`` per segment of an AudioSet segments CSV."""
    rows = []
    header = ("YTID", "start_seconds", "end_seconds", "positive_labels")
    for lineno, (ytid, start, end, labels) in read_table(path, header, skip_comments=True, skipinitialspace=True):
        if not is_ytid(ytid):
            raise MetadataError(f"{path}:{lineno}: invalid YouTube id {ytid!r}")
        try:
            start, end = normalise_seconds(start), normalise_seconds(end)
        except ValueError as exc:
            raise MetadataError(f"{path}:{lineno}: {exc}") from None
        mids = [m.strip() for m in labels.split(",") if m.strip()]
        if not mids:
            raise MetadataError(f"{path}:{lineno}: segment {ytid} has no label")
        rows.append((lineno, ytid, start, end, list(dict.fromkeys(mids))))
    return rows


def comma_split_classes(path: Path) -> int:
    """Distinct "labels" when the release's display-name column is split on every comma (the paper's count)."""
    names = set()
    for _, (_ytid, labels) in read_table(path, ("filename", "event_labels")):
        names.update(x.strip() for x in labels.split(","))
    return len(names)


def build(store: MetadataStore, *, seed: int = 0, n_folds: int = 5) -> Manifest:
    store.verify(FILES)
    ontology = Ontology.load(store.path(ONTOLOGY))
    seg_path = store.path(SEGMENTS)
    samples = []
    for lineno, ytid, start, end, mids in read_segments(seg_path):
        unknown = [m for m in mids if m not in ontology]
        if unknown:
            raise MetadataError(f"{seg_path}:{lineno}: MID {unknown[0]} is not in the ontology")
        samples.append(
            Sample(
                sample_id=sample_id(ytid, start, end),
                ytid=ytid,
                start=start,
                end=end,
                labels=tuple(ontology.name(m) for m in mids),
                mids=tuple(mids),
                frame_seconds=(centre_second(start, end),),
                split="eval",
            )
        )
    folds = assign_folds([s.ytid for s in samples], [label_count_bucket(s.n_labels) for s in samples], n_folds, seed)
    samples = [replace(s, fold=f) for s, f in zip(samples, folds)]
    single = sum(s.n_labels == 1 for s in samples)
    stats = {
        "single_label_fraction": round(single / len(samples), 4),
        "comma_split_classes": {
            "value": comma_split_classes(store.path(DISPLAY_NAMES)),
            "why": "Paper-comparable class count: the release's macs/AudioSet.csv joins display names with ',' "
            "and names such as 'Domestic animals, pets' contain commas, so splitting on every comma yields "
            "fragments; the paper's '610 distinct classes' matches this artefact. The true count is by MID.",
        },
        "frames": {
            "rule": "no per-second annotations are public: the central whole second of each segment (4 of a 10 s "
            "segment), earlier on ties",
            "histogram": frame_histogram(samples),
        },
        "paper": PAPER,
    }
    return Manifest("audioset-eval", samples, stats=stats)

