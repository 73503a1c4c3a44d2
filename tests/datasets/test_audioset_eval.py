import pytest

from macs_bench.datasets.audioset_eval import read_segments
from macs_bench.errors import MetadataError


def test_counts(manifests):
    m = manifests("audioset-eval")
    counts = m.counts()
    assert counts["n_samples"] == 20371
    assert counts["n_videos"] == 20371
    assert counts["n_classes"] == 527
    assert round(m.stats["single_label_fraction"], 3) == 0.233
    assert counts["n_labels"]["1"] == 4740
    assert m.stats["comma_split_classes"]["value"] == 611


def test_labels_by_mid_keep_commas(manifests):
    first = manifests("audioset-eval").samples[0]
    assert first.sample_id == "--4gqARaEJE_0_10"
    assert first.mids == ("/m/068hy", "/m/07q6cd_", "/m/0bt9lr", "/m/0jbk")
    assert first.labels == ("Domestic animals, pets", "Squeak", "Dog", "Animal")
    assert all(len(s.labels) == len(s.mids) for s in manifests("audioset-eval").samples)


def test_fold_properties(manifests, check_folds):
    check_folds(manifests("audioset-eval"))


def test_malformed_segment_row(tmp_path):
    path = tmp_path / "segments.csv"
    path.write_text(
        "# comment\n# comment\nYTID, start_seconds, end_seconds, positive_labels\n"
        '--4gqARaEJE, 0.000, 10.000, "/m/068hy,/m/07q6cd_"\n'
        "--BfvyPmVMo, twenty, 30.000, /m/03l9g\n"
    )
    with pytest.raises(MetadataError, match=rf"^{path}:5: not a number: 'twenty'$"):
        read_segments(path)
    path.write_text("# c\nYTID, start_seconds, end_seconds, positive_labels\n--4gqARaEJE, 0.000, 10.000\n")
    with pytest.raises(MetadataError, match=rf"^{path}:3: expected 4 comma-separated fields, found 3$"):
        read_segments(path)


def test_google_commented_header_is_accepted(tmp_path):
    """Google's own release writes the header as a comment line ('# YTID, ...')."""
    path = tmp_path / "segments.csv"
    path.write_text(
        "# Segments csv created Sun Mar  5 10:54:25 2017\n# num_ytids=2\n"
        "# YTID, start_seconds, end_seconds, positive_labels\n"
        '--4gqARaEJE, 0.000, 10.000, "/m/068hy,/m/07q6cd_"\n'
        "-BfvyPmVMo_, 30.000, 40.000, /m/03l9g\n"
    )
    rows = read_segments(path)
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [(4, "--4gqARaEJE", "0", "10"), (5, "-BfvyPmVMo_", "30", "40")]
    assert rows[0][4] == ["/m/068hy", "/m/07q6cd_"]
