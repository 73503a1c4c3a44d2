import csv

import pytest

from macs_bench.datasets import build, manifest_rows
from macs_bench.datasets.manifest import COLUMNS, Manifest, Sample
from macs_bench.errors import MacsError


@pytest.mark.parametrize("name", ["llp-multi", "audioset-eval", "landscape", "fsd50k"])
def test_rebuild_is_byte_identical(tmp_path, name):
    build(name, tmp_path / "a")
    build(name, tmp_path / "b")
    build(name, tmp_path / "a")  # over an existing build
    for file in ("manifest.csv", "stats.json"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()
    assert not list(tmp_path.glob("*/.*.tmp"))  # no temporary files left behind


def test_written_manifest_round_trips(tmp_path, manifests):
    m = manifests("llp-multi")
    m.write(tmp_path)
    rows = manifest_rows(tmp_path)
    assert tuple(rows[0]) == COLUMNS
    assert len(rows) == len(m)
    for row, s in zip(rows, m.samples):
        assert row["sample_id"] == s.sample_id
        assert row["labels"].split(";") == list(s.labels)
        assert int(row["fold"]) == s.fold
        assert int(row["n_labels"]) == len(row["mids"].split(";"))
    with open(tmp_path / "manifest.csv", newline="") as fh:
        assert all(len(r) == len(COLUMNS) for r in csv.reader(fh))


def test_provenance_recorded(manifests):
    prov = manifests("audioset-eval").provenance
    assert prov["tool"] == "macs-bench" and prov["version"]
    assert prov["options"] == {"seed": 0, "n_folds": 5}
    assert set(prov["metadata"]) == {"audioset/eval_segments.csv", "audioset/ontology.json", "macs/AudioSet.csv"}


def test_separator_in_label_is_refused():
    m = Manifest("x", [Sample("a_1_2", ("Dog; Cat",), "eval")])
    with pytest.raises(MacsError, match="list separator"):
        m.to_csv()


def test_output_path_is_a_file(tmp_path, manifests):
    (tmp_path / "out").write_text("")
    with pytest.raises(MacsError, match="is not a directory"):
        manifests("landscape").write(tmp_path / "out")


def test_seed_and_folds_options():
    a = build("llp-multi", seed=1, n_folds=10)
    assert {s.fold for s in a.samples} == set(range(10))
    assert a.provenance["options"] == {"seed": 1, "n_folds": 10}
    with pytest.raises(MacsError, match="cannot make 1 folds"):
        build("llp-multi", n_folds=1)
    with pytest.raises(MacsError, match="cannot make 8000 folds of 7201 videos"):
        build("llp-multi", n_folds=8000)
    with pytest.raises(MacsError, match="M must be 1 to 64"):
        build("fsd50k", num_sources=0)


def test_available_with_no_known_id(tmp_path):
    path = tmp_path / "ids.txt"
    path.write_text("nothing_here\n")
    with pytest.raises(MacsError, match=rf"^{path}: none of its 1 ids"):
        build("landscape", available=path)


def test_available_file_with_a_bom_keeps_its_first_id(tmp_path):
    ids = [s.sample_id for s in build("landscape").samples[:3]]
    path = tmp_path / "ids.txt"
    path.write_bytes(("\r\n".join(ids) + "\r\n").encode("utf-8-sig"))  # as Windows Notepad saves it
    assert [s.sample_id for s in build("landscape", available=path).samples] == ids


def test_manifest_folder_is_written_as_one_unit(tmp_path, monkeypatch):
    from macs_bench.datasets import manifest as module

    out = tmp_path / "out"
    build("landscape", out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(module, "dumps_json", disk_full)
    with pytest.raises(MacsError, match="No space left"):
        build("landscape", out, seed=7)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the old pair, whole; no temporaries
