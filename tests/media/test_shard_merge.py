"""Scale-out: --shard K/N slices a manifest by video; merge-media folds the shards' MEDIA folders into one
that equals a single fetch of the whole."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fake_downloader import FakeDownloader
from media_helpers import clip_row, write_manifest

from macs_bench.datasets import build
from macs_bench.errors import MacsError
from macs_bench.media.fetch import FetchOptions, fetch
from macs_bench.media.items import parse_shard, read_items, select_shard, shard_of
from macs_bench.media.ledger import Ledger
from macs_bench.media.merge import merge_media

BIN = Path(sys.executable).parent / "macs-bench"


@pytest.mark.parametrize("name", ["llp-multi", "landscape"])  # landscape: several clips per video
def test_shards_partition_a_real_manifest_by_video(tmp_path, name):
    build(name, tmp_path / "m")
    items = read_items(tmp_path / "m")
    shards = [select_shard(items, (k, 3)) for k in range(3)]
    ids = [[i.sample_id for i in shard] for shard in shards]
    assert sorted(sum(ids, [])) == sorted(i.sample_id for i in items)  # the union is the whole manifest
    assert sum(map(len, ids)) == len(items)  # disjoint
    videos = [{i.ytid for i in shard} for shard in shards]
    assert not (videos[0] & videos[1] or videos[0] & videos[2] or videos[1] & videos[2])  # grouped by video
    assert all(abs(len(s) - len(items) / 3) < 0.06 * len(items) for s in shards)  # about even
    # deterministic, and independent of the other rows
    assert [shard_of(i, 3) for i in items[:50]] == [shard_of(i, 3) for i in reversed(items[:50])][::-1]
    assert select_shard(items[::-1], (1, 3)) == shards[1][::-1]


@pytest.mark.parametrize("text", ["3/3", "-1/3", "1", "a/b", "0/0"])
def test_bad_shard_is_refused(text):
    with pytest.raises(MacsError, match="^shard '"):
        parse_shard(text)


@pytest.fixture
def world(tmp_path, long_video):
    videos = tmp_path / "yt"
    videos.mkdir()
    rows = []
    for i in range(8):
        ytid = f"-shardvid{i:02d}"
        os.symlink(long_video, videos / f"{ytid}.mp4")
        rows.append(clip_row(ytid, i, i + 10, frame=i % 10))
        if i % 3 == 0:  # a second clip of the same video: must land in the same shard
            rows.append(clip_row(ytid, i + 5, i + 15, frame=2))
    removed = {"-shardvid05"}
    return videos, write_manifest(tmp_path / "manifest", rows), rows, removed


def tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.parts[len(root.parts)] in ("audio", "frames", "frames_all")}


@pytest.mark.slow
def test_merge_of_three_shards_equals_one_fetch(tmp_path, world):
    videos, manifest, rows, removed = world
    options = dict(quality=None, backoff=0.0, jobs=2, all_frames=True)
    whole = fetch(manifest, tmp_path / "whole", downloader=FakeDownloader(videos, removed=removed),
                  options=FetchOptions(**options))
    parts = []
    for k in range(3):
        report = fetch(manifest, tmp_path / f"part{k}", downloader=FakeDownloader(videos, removed=removed),
                       options=FetchOptions(**options, shard=(k, 3)))
        assert report.shard == f"{k}/3"
        parts.append(report)
    assert sum(p.n_samples for p in parts) == len(rows)
    assert sum(p.n_ok for p in parts) == whole.n_ok == len(rows) - 1
    merged = merge_media(tmp_path / "merged", [tmp_path / f"part{k}" for k in range(3)])
    assert (tmp_path / "merged" / "available.txt").read_bytes() == (tmp_path / "whole" / "available.txt").read_bytes()
    assert tree(tmp_path / "merged") == tree(tmp_path / "whole")  # same files, same bytes
    assert merged["by_label_count"] == whole.by_label_count  # the manifest is found from the shards' reports
    assert merged["unavailable_reasons"] == {"removed": 1}
    # the merged folder is a MEDIA folder like any other: a fetch of the whole has nothing left to do
    again = fetch(manifest, tmp_path / "merged", downloader=FakeDownloader(videos, state=tmp_path / "calls2"),
                  options=FetchOptions(**options))
    assert again.this_run == {"skipped_ok": len(rows) - 1, "skipped_unavailable": 1}
    # merging again, or a source into itself, changes nothing
    merge_media(tmp_path / "part0", [tmp_path / "part0", tmp_path / "merged"])
    assert tree(tmp_path / "part0") == tree(tmp_path / "whole")


def test_merge_keeps_the_best_state_and_refuses_conflicts(tmp_path, world):
    videos, manifest, rows, _ = world
    one = [rows[0]]
    write_manifest(tmp_path / "one", one)
    fetch(tmp_path / "one", tmp_path / "a", downloader=FakeDownloader(videos, removed={rows[0]["ytid"]}),
          options=FetchOptions(quality=None))
    fetch(tmp_path / "one", tmp_path / "b", downloader=FakeDownloader(videos, state=tmp_path / "c1"),
          options=FetchOptions(quality=None))
    sid = rows[0]["sample_id"]
    merge_media(tmp_path / "m", [tmp_path / "a", tmp_path / "b"])  # unavailable in a, ok in b
    with Ledger(tmp_path / "m" / "ledger.sqlite") as ledger:
        assert ledger.get(sid).status == "ok"
    assert (tmp_path / "m" / "available.txt").read_text().split() == [sid]
    # ok in two folders with different audio: refused, nothing written
    wav = tmp_path / "b" / "audio" / f"{sid}.wav"
    fetch(tmp_path / "one", tmp_path / "c", downloader=FakeDownloader(videos, state=tmp_path / "c2"),
          options=FetchOptions(quality=None))
    data = bytearray(wav.read_bytes())
    data[-1] ^= 1
    wav.write_bytes(bytes(data))
    with pytest.raises(MacsError, match=f"1 conflicting samples, nothing merged; first: {sid} is ok in"):
        merge_media(tmp_path / "n", [tmp_path / "b", tmp_path / "c"])
    assert not (tmp_path / "n" / "audio").exists()
    with pytest.raises(MacsError, match="not a MEDIA folder"):
        merge_media(tmp_path / "n", [tmp_path / "nothing"])


def test_best_state_order():
    from macs_bench.media.ledger import Entry
    from macs_bench.media.merge import choose

    failed, unavailable = Entry("x", "failed", "transient", 3, {}), Entry("x", "unavailable", "removed", 1, {})
    assert choose([(Path("a"), failed), (Path("b"), unavailable)]) == (Path("b"), unavailable)
    assert choose([(Path("a"), unavailable), (Path("b"), failed)]) == (Path("a"), unavailable)


def test_merge_media_cli(tmp_path, world):
    videos, manifest, rows, _ = world
    write_manifest(tmp_path / "one", rows[:1])
    fetch(tmp_path / "one", tmp_path / "a", downloader=FakeDownloader(videos), options=FetchOptions(quality=None))
    out = subprocess.run([str(BIN), "datasets", "merge-media", str(tmp_path / "a"), "--out", str(tmp_path / "m")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "1 samples ok in" in out.stdout and "(1 of the manifest's 1)" in out.stdout
    report = json.loads((tmp_path / "m" / "fetch_report.json").read_text())
    assert report["merged_from"][0]["root"] == str(tmp_path / "a")


def test_merge_refuses_shards_fetched_with_different_quality_settings(tmp_path, world):
    """A shard fetched with the filter off keeps clips a filtered shard would judge again: merging the two would
    bring back what one setting rejects."""
    from macs_bench.media.quality import QualityThresholds

    videos, _, rows, _ = world
    write_manifest(tmp_path / "m0", rows[:1])
    write_manifest(tmp_path / "m1", rows[1:2])
    fetch(tmp_path / "m0", tmp_path / "a", downloader=FakeDownloader(videos), options=FetchOptions(quality=None))
    fetch(tmp_path / "m1", tmp_path / "b", downloader=FakeDownloader(videos, state=tmp_path / "s1"),
          options=FetchOptions(quality=QualityThresholds(min_motion=0.0)))
    fetch(tmp_path / "m1", tmp_path / "c", downloader=FakeDownloader(videos, state=tmp_path / "s2"),
          options=FetchOptions(quality=QualityThresholds(min_motion=0.0, min_rms_dbfs=-50.0)))
    with pytest.raises(MacsError, match=f"^{tmp_path / 'a'} and {tmp_path / 'b'} were fetched with different "
                       r"quality settings \(filter off vs min_frame_std=2.0, min_motion=0.0, min_rms_dbfs=-60.0\)"):
        merge_media(tmp_path / "m", [tmp_path / "a", tmp_path / "b"])
    with pytest.raises(MacsError, match=r"different quality settings \(min_rms_dbfs=-60.0 vs min_rms_dbfs=-50.0\)"):
        merge_media(tmp_path / "m", [tmp_path / "b", tmp_path / "c"])
    assert not (tmp_path / "m" / "audio").exists()
    # the merged folder counts too: a shard of other settings is refused when merged into it later
    merge_media(tmp_path / "m", [tmp_path / "a"])
    with pytest.raises(MacsError, match="different quality settings"):
        merge_media(tmp_path / "m", [tmp_path / "c"])
    out = subprocess.run([str(BIN), "datasets", "merge-media", str(tmp_path / "a"), str(tmp_path / "c"), "--out",
                          str(tmp_path / "n")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert "different quality settings" in out.stderr and str(tmp_path / "c") in out.stderr
