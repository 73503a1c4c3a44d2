"""The MEDIA layout helper is the one source of paths: what fetch, merge, export and the synthetic set write and
read is exactly what :class:`MediaLayout` names."""

import os
from pathlib import Path

from macs_bench.datasets.manifest import manifest_rows
from macs_bench.world.synthetic import write_synthetic
from macs_bench.media.export import export
from macs_bench.media.fetch import FetchOptions, fetch
from macs_bench.media.layout import MediaLayout, all_frame_name
from macs_bench.media.merge import merge_media

from fake_downloader import FakeDownloader
from media_helpers import clip_row, write_manifest


def test_paths_are_the_documented_layout(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    layout = MediaLayout("~/m")
    root = tmp_path / "m"
    assert layout.root == root
    assert layout.audio("-a_1_11") == root / "audio" / "-a_1_11.wav"  # a leading '-' stays a file name
    assert layout.frames("x_0_10", [4, 2, 7]) == [root / "frames" / "x_0_10.jpg", root / "frames" / "x_0_10.s2.jpg",
                                                  root / "frames" / "x_0_10.s7.jpg"]
    assert layout.frames("dev_1", []) == []
    assert layout.sample_files("dev_1", []) == [root / "audio" / "dev_1.wav"]
    assert layout.frames_all("x") / all_frame_name(3) == root / "frames_all" / "x" / "03.jpg"
    assert (layout.ledger, layout.available, layout.report) == (
        root / "ledger.sqlite", root / "available.txt", root / "fetch_report.json")


def _files(root: Path) -> set[Path]:
    return {Path(d) / f for d, _, names in os.walk(root) for f in names
            if Path(d).name in ("audio", "frames")}


def test_fetch_merge_export_use_the_layout(tmp_path, long_video):
    videos = tmp_path / "yt"
    videos.mkdir()
    os.symlink(long_video, videos / "-twoFrames0.mp4")
    os.symlink(long_video, videos / "oneFrame000.mp4")
    rows = [clip_row("-twoFrames0", 2, 12, frame="4;1;8"), clip_row("oneFrame000", 0, 10, frame=5)]
    manifest = write_manifest(tmp_path / "manifest", rows)
    media = tmp_path / "media"
    fetch(manifest, media, downloader=FakeDownloader(videos), options=FetchOptions(jobs=1, backoff=0.0))
    layout = MediaLayout(media)
    expected = {p for r in rows for p in layout.sample_files(r["sample_id"], [int(s) for s in
                                                                               r["frame_seconds"].split(";")])}
    assert len(expected) == 6
    assert _files(media) == expected
    assert layout.available.read_text().split() == sorted(r["sample_id"] for r in rows)

    merged = tmp_path / "merged"
    merge_media(merged, [media])
    assert {p.relative_to(merged) for p in _files(merged)} == {p.relative_to(media) for p in expected}

    index = export(manifest, media, tmp_path / "shards", fmt="webdataset")
    assert index["n_samples"] == 2 and index["media"] == str(media)


def test_synthetic_set_writes_the_layout(tmp_path):
    synthetic = write_synthetic(tmp_path / "syn", n_clips=5, seconds=0.2, image_size=16)
    layout = MediaLayout(synthetic.media)
    ids = [row["sample_id"] for row in manifest_rows(synthetic.manifest)]
    assert _files(layout.root) == {p for sid in ids for p in (layout.audio(sid), layout.frame(sid))}
