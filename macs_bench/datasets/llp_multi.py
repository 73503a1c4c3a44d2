"""LLP-multi: every multi-label clip of the LLP dataset, one frame per clip, in 5 video-grouped folds."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

from macs_bench.datasets.folds import assign_folds, label_count_bucket
from macs_bench.datasets.frames import frame_histogram, select_frame_second
from macs_bench.datasets.manifest import Manifest, Sample
from macs_bench.datasets.metadata import MetadataStore, read_json, read_table
from macs_bench.datasets.ontology import Ontology
from macs_bench.datasets.segments import parse_segment, sample_id
from macs_bench.errors import MetadataError

LABELS = "avvp/AVVP_dataset_full.csv"
PARTITIONS = {"train": "avvp/AVVP_train.csv", "val": "avvp/AVVP_val_pd.csv", "test": "avvp/AVVP_test_pd.csv"}
COOCCURRENCE = ("macs/LLP_train.json", "macs/LLP_eval.json", "macs/LLP_test.json")
ONTOLOGY = "audioset/ontology.json"
FILES = (LABELS, *PARTITIONS.values(), *COOCCURRENCE, ONTOLOGY)

CLIP_SECONDS = 10
PAPER = {
    "n_samples": 6595,
    "n_labels": {"2": 6314, "3": 242, "4": 35, "5+": 4},
    "why": "The paper counts the frames of multi-label clips that could still be downloaded (about 91.6% of the "
    "7,201 candidates); macs lists every candidate and `--available` restricts to what a user obtained.",
}


class LLPRow(NamedTuple):
    line: int
    filename: str
    ytid: str
    start: str
    end: str
    labels: list[str]  # de-duplicated, in listed order
    n_listed: int  # labels as listed, duplicates included


def read_llp_labels(path: Path) -> list[LLPRow]:
    """One :class:`LLPRow` per row of an LLP label file, its filename parsed safely."""
    rows = []
    for lineno, (filename, labels) in read_table(path, ("filename", "event_labels"), delimiter="\t"):
        try:
            ytid, start, end = parse_segment(filename)
        except ValueError as exc:
            raise MetadataError(f"{path}:{lineno}: {exc}") from None
        names = [x.strip() for x in labels.split(",") if x.strip()]
        if not names:
            raise MetadataError(f"{path}:{lineno}: no event label for {filename}")
        rows.append(LLPRow(lineno, filename, ytid, start, end, list(dict.fromkeys(names)), len(names)))
    return rows


def build(store: MetadataStore, *, seed: int = 0, n_folds: int = 5) -> Manifest:
    store.verify(FILES)
    ontology = Ontology.load(store.path(ONTOLOGY))
    partition_of: dict[str, str] = {}
    for name, rel in PARTITIONS.items():
        for lineno, (filename, _labels) in read_table(store.path(rel), ("filename", "event_labels"), delimiter="\t"):
            if partition_of.setdefault(filename, name) != name:
                raise MetadataError(f"{store.path(rel)}:{lineno}: {filename} is also in the {partition_of[filename]} list")
    cooccurrence: dict[str, list[int]] = {}
    for rel in COOCCURRENCE:
        data = read_json(store.path(rel))
        for ytid, counts in data.items():
            if not (isinstance(counts, list) and len(counts) == CLIP_SECONDS and all(isinstance(c, int) for c in counts)):
                raise MetadataError(f"{store.path(rel)}: entry {ytid!r} is not {CLIP_SECONDS} integers")
            cooccurrence[ytid] = counts

    label_path = store.path(LABELS)
    rows = read_llp_labels(label_path)
    mid_of: dict[str, str] = {}
    for label in sorted({lab for row in rows for lab in row.labels}):
        mid = ontology.mid_for_name(label)
        if mid is None:
            raise MetadataError(f"{label_path}: label {label!r} matches no unique AudioSet ontology class")
        mid_of[label] = mid

    samples: list[Sample] = []
    deduplicated, ties = [], 0
    for row in rows:
        if len(row.labels) < 2:
            if row.n_listed >= 2:
                deduplicated.append(row.filename)
            continue
        if row.ytid not in cooccurrence:
            raise MetadataError(f"{label_path}:{row.line}: no co-occurrence counts for {row.ytid} in {COOCCURRENCE}")
        if row.filename not in partition_of:
            raise MetadataError(f"{label_path}:{row.line}: {row.filename} is in none of the LLP partition lists")
        second, tied = select_frame_second(cooccurrence[row.ytid])
        ties += tied
        samples.append(
            Sample(
                sample_id=sample_id(row.ytid, row.start, row.end),
                ytid=row.ytid,
                start=row.start,
                end=row.end,
                labels=tuple(row.labels),
                mids=tuple(mid_of[x] for x in row.labels),
                frame_seconds=(second,),
                split=partition_of[row.filename],
            )
        )

    folds = assign_folds([s.ytid for s in samples], [label_count_bucket(s.n_labels) for s in samples], n_folds, seed)
    samples = [replace(s, fold=f) for s, f in zip(samples, folds)]
    stats = {
        "candidates": {
            "llp_clips": len(rows),
            "multi_label_rows_as_listed": sum(row.n_listed >= 2 for row in rows),
            "dropped_after_label_deduplication": deduplicated,
        },
        "frames": {
            "rule": "argmax of the per-second audio-visual co-occurrence counts; ties to the second nearest the "
            "clip centre, then the earlier second",
            "tied_clips": ties,
            "histogram": frame_histogram(samples),
        },
        "ytids": {
            "all_llp_clips": _id_stats([(row.ytid, row.start, row.end) for row in rows]),
            "manifest": _id_stats([(s.ytid, s.start, s.end) for s in samples]),
        },
        "paper": PAPER,
    }
    return Manifest("llp-multi", samples, stats=stats)


def _id_stats(segments: list[tuple[str, str, str]]) -> dict[str, int]:
    return {
        "with_underscore": sum("_" in ytid for ytid, _, _ in segments),
        "starting_with_dash": sum(ytid.startswith("-") for ytid, _, _ in segments),
        "fractional_start": sum("." in start for _, start, _ in segments),
    }

