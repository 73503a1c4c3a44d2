"""Landscape: 1,000 single-source nature clips in 9 classes, with a seeded 90/10 train/test split."""

from __future__ import annotations

from collections import Counter

from macs_bench.datasets.folds import holdout_split
from macs_bench.datasets.frames import centre_second
from macs_bench.datasets.manifest import Manifest, Sample
from macs_bench.datasets.metadata import MetadataStore, read_table
from macs_bench.datasets.segments import parse_segment, sample_id
from macs_bench.errors import MetadataError

CLIPS = "macs/Landscape.csv"
FILES = (CLIPS,)
TEST_FRACTION = 0.1
PAPER = {
    "n_samples": 1000,
    "split": "90/10 train/test following Ruan et al. (MM-Diffusion); the original lists are unpublished",
}


def build(store: MetadataStore, *, seed: int = 0, test_fraction: float = TEST_FRACTION) -> Manifest:
    store.verify(FILES)
    path = store.path(CLIPS)
    rows = []
    for lineno, (label, filename) in read_table(path, ("event_labels", "filename"), delimiter="\t"):
        try:
            ytid, start, end = parse_segment(filename, sep="#")
        except ValueError as exc:
            raise MetadataError(f"{path}:{lineno}: {exc}") from None
        if not label.strip():
            raise MetadataError(f"{path}:{lineno}: no class for {filename}")
        rows.append((ytid, start, end, label.strip()))
    ids = Counter(sample_id(y, s, e) for y, s, e, _ in rows)
    duplicated = sorted(i for i, n in ids.items() if n > 1)
    if duplicated:
        raise MetadataError(f"{path}: segment {duplicated[0]} is listed more than once")

    splits = holdout_split([r[0] for r in rows], [r[3] for r in rows], test_fraction, seed)
    samples = [
        Sample(
            sample_id=sample_id(ytid, start, end),
            ytid=ytid,
            start=start,
            end=end,
            labels=(label,),
            frame_seconds=(centre_second(start, end),),
            split=split,
        )
        for (ytid, start, end, label), split in zip(rows, splits)
    ]
    per_video = Counter(r[0] for r in rows)
    classes_per_video = {}
    for ytid, _, _, label in rows:
        classes_per_video.setdefault(ytid, set()).add(label)
    by_class: dict[str, dict[str, int]] = {}
    for s in samples:
        by_class.setdefault(s.labels[0], {"train": 0, "test": 0})[s.split] += 1
    stats = {
        "split": {
            "rule": f"seeded, stratified by class (largest-remainder quotas for {test_fraction:.0%} test), "
            "grouped by YTID so no video is in both train and test",
            "test_fraction": test_fraction,
            "by_class": dict(sorted(by_class.items())),
        },
        "videos": {
            "distinct": len(per_video),
            "with_several_clips": sum(n > 1 for n in per_video.values()),
            "with_several_classes": sum(len(c) > 1 for c in classes_per_video.values()),
        },
        "frames": {"rule": "the central whole second of each clip (4 of a 10 s clip)"},
        "paper": PAPER,
    }
    return Manifest("landscape", samples, stats=stats)
