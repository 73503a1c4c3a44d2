import json
import random

import numpy as np
import pytest

from macs_bench.datasets import build
from macs_bench.datasets.llp_multi import read_llp_labels
from macs_bench.datasets.metadata import datasets_root
from macs_bench.errors import MetadataError


def test_counts(manifests):
    m = manifests("llp-multi")
    counts = m.counts()
    assert counts["n_samples"] == 7201
    assert counts["n_labels"] == {"2": 6895, "3": 263, "4": 39, "5": 3, "7": 1}
    assert counts["n_classes"] == 25
    assert m.stats["candidates"]["multi_label_rows_as_listed"] == 7202
    assert m.stats["candidates"]["dropped_after_label_deduplication"] == ["LcFWKgFphXI_20_30"]
    assert counts["splits"] == {"train": 5968, "val": 437, "test": 796}
    assert sum(counts["splits"].values()) == 7201


def test_ytids_parsed_safely(manifests):
    stats = manifests("llp-multi").stats["ytids"]["all_llp_clips"]
    assert stats == {"with_underscore": 1470, "starting_with_dash": 151, "fractional_start": 5}
    rows = read_llp_labels(datasets_root() / "metadata" / "avvp" / "AVVP_dataset_full.csv")
    assert len(rows) == 11849
    for row in rows:
        assert f"{row.ytid}_{row.start}_{row.end}" == row.filename
        assert len(row.ytid) == 11


def test_fold_properties(manifests, check_folds):
    check_folds(manifests("llp-multi"))


def test_frames_are_the_cooccurrence_argmax(manifests):
    counts = {}
    for split in ("train", "eval", "test"):
        counts.update(json.loads((datasets_root() / "metadata" / "macs" / f"LLP_{split}.json").read_text()))
    m = manifests("llp-multi")
    for s in m.samples:
        row = np.array(counts[s.ytid])
        (second,) = s.frame_seconds
        assert row[second] == row.max()
        tied = np.flatnonzero(row == row.max())
        assert abs(second - 4.5) == np.abs(tied - 4.5).min()
    assert m.stats["frames"]["tied_clips"] == sum(
        (np.array(counts[s.ytid]) == max(counts[s.ytid])).sum() > 1 for s in m.samples
    )


def test_available_keeps_folds_and_records_drops(tmp_path, manifests):
    full = {s.sample_id: s for s in manifests("llp-multi").samples}
    rng = random.Random(0)
    keep = rng.sample(sorted(full), k=int(0.9 * len(full)))
    # ids may be sample ids or YTIDs; comments and blank lines are ignored
    lines = ["# obtained clips", ""] + keep[:3000] + [full[i].ytid for i in keep[3000:]] + ["zzzzzzzzzzz_1_2"]
    avail = tmp_path / "available.txt"
    avail.write_text("\n".join(lines) + "\n")
    m = build("llp-multi", tmp_path / "out", available=avail)
    assert len(m) == len(keep)
    for s in m.samples:
        assert s == full[s.sample_id]  # fold, split and frame unchanged
    dropped = (tmp_path / "out" / "dropped.txt").read_text().split()
    assert sorted(dropped) == sorted(set(full) - set(keep))
    record = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert record["provenance"]["available"]["n_dropped"] == len(dropped)
    assert record["provenance"]["available"]["unknown_ids_first"] == ["zzzzzzzzzzz_1_2"]
    assert record["full_build"]["n_samples"] == 7201 and "frames" in record["full_build"]
    assert "frames" not in record  # full-build details are never presented as the subset's
    assert record["provenance"]["available"]["file"] == "available.txt"
    # a plain rebuild into the same folder removes the stale list
    build("llp-multi", tmp_path / "out")
    assert not (tmp_path / "out" / "dropped.txt").exists()


def test_malformed_row_names_file_and_line(tmp_path):
    path = tmp_path / "llp.csv"
    path.write_text("filename\tevent_labels\nBjCEufrlXm4_20_30\tSpeech,Dog\n7nSYwyaP4QE_50_60\tSinging\textra\n")
    with pytest.raises(MetadataError, match=rf"^{path}:3: expected 2 tab-separated fields, found 3$"):
        read_llp_labels(path)
    path.write_text("filename\tevent_labels\nBjCEufrlXm4_20_30\tSpeech,Dog\nnot-a-segment\tSinging\n")
    with pytest.raises(MetadataError, match=rf"^{path}:3: expected <YTID>_<start>_<end>"):
        read_llp_labels(path)
    path.write_text("file\tlabels\n")
    with pytest.raises(MetadataError, match=rf"^{path}:1: expected header"):
        read_llp_labels(path)
