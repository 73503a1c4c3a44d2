"""The datasets API expands '~' in every path it takes, as the README's examples write them."""

from macs_bench.datasets import build, manifest_rows


def test_build_and_read_expand_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "ids.txt").write_text("MZjZEVgQmno\n")  # a Landscape YTID with two clips
    manifest = build("landscape", "~/runs/land", available="~/ids.txt")
    assert len(manifest.samples) == 2
    assert (tmp_path / "runs" / "land" / "manifest.csv").is_file() and not (tmp_path / "~").exists()
    assert [row["sample_id"] for row in manifest_rows("~/runs/land")] == [s.sample_id for s in manifest.samples]
