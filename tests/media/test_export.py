"""datasets export: shards read back with webdataset / pyarrow give the same audio samples, frame bytes and
labels; a killed export resumes to the same bytes."""

import io
import json
import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
from fake_downloader import FakeDownloader
from media_helpers import clip_row, write_manifest

from macs_bench.datasets.manifest import manifest_rows
from macs_bench.errors import MacsError
from macs_bench.media import export as export_module
from macs_bench.media.export import export
from macs_bench.media.fetch import FetchOptions, fetch


def pcm(data: bytes):
    with wave.open(io.BytesIO(data)) as fh:
        return fh.getframerate(), np.frombuffer(fh.readframes(fh.getnframes()), dtype="<i2")


@pytest.fixture(scope="module")
def fetched(tmp_path_factory, long_video):
    tmp = tmp_path_factory.mktemp("export")
    videos = tmp / "yt"
    videos.mkdir()
    rows = []
    for i in range(6):
        ytid = f"exportvid{i:02d}"
        os.symlink(long_video, videos / f"{ytid}.mp4")
        start = f"{i}.5" if i % 2 else str(i)  # ids with dots: webdataset's key separator
        end = f"{i + 10}.5" if i % 2 else str(i + 10)
        rows.append({**clip_row(ytid, start, end, frame=i % 10), "fold": str(i % 3), "labels": f"Dog;Cat{i}",
                     "mids": f"/m/0{i};/m/1{i}"})
    manifest = write_manifest(tmp / "m", rows)
    fetch(manifest, tmp / "media", downloader=FakeDownloader(videos, removed={"exportvid03"}),
          options=FetchOptions(quality=None, jobs=2))
    return manifest, tmp / "media", [r for r in manifest_rows(manifest) if r["ytid"] != "exportvid03"]


def check_sample(meta, wav, jpg, media, rows):
    row = rows[meta["sample_id"]]
    assert meta["labels"] == row["labels"].split(";") and meta["mids"] == row["mids"].split(";")
    assert (meta["fold"], meta["split"], meta["frame_seconds"]) == (int(row["fold"]), row["split"],
                                                                     [int(row["frame_seconds"])])
    rate, got = pcm(wav)
    want_rate, want = pcm((media / "audio" / f"{row['sample_id']}.wav").read_bytes())
    assert rate == want_rate == 16000 and np.array_equal(got, want)
    assert jpg == (media / "frames" / f"{row['sample_id']}.jpg").read_bytes()


def test_webdataset_round_trip(tmp_path, fetched):
    import webdataset as wds

    manifest, media, rows = fetched
    index = export(manifest, media, tmp_path / "wds", fmt="webdataset", shard_size=2)
    assert index["complete"] and index["n_samples"] == 5 and [s["n_samples"] for s in index["shards"]] == [2, 2, 1]
    urls = [str(tmp_path / "wds" / s["name"]) for s in index["shards"]]
    samples = list(wds.WebDataset(urls, shardshuffle=False))
    by_id = {r["sample_id"]: r for r in rows}
    seen = []
    for sample in samples:
        meta = json.loads(sample["json"])
        assert sample["__key__"] == meta["sample_id"].replace(".", ",")
        check_sample(meta, sample["wav"], sample["jpg"], media, by_id)
        seen.append(meta["sample_id"])
    assert seen == [r["sample_id"] for r in rows]  # manifest order, the removed clip left out
    sums = (tmp_path / "wds" / "SHA256SUMS").read_text()
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=tmp_path / "wds", capture_output=True, text=True)
    assert check.returncode == 0 and sums.count("shard-") == 3


def test_parquet_round_trip(tmp_path, fetched):
    import pyarrow.parquet as pq

    manifest, media, rows = fetched
    index = export(manifest, media, tmp_path / "pq", fmt="parquet", shard_size=4)
    assert [s["name"] for s in index["shards"]] == ["part-000000.parquet", "part-000001.parquet"]
    table = pq.read_table([str(tmp_path / "pq" / s["name"]) for s in index["shards"]])
    by_id = {r["sample_id"]: r for r in rows}
    got = table.to_pylist()
    assert [r["sample_id"] for r in got] == [r["sample_id"] for r in rows]
    for record in got:
        meta = {k: record[k] for k in ("sample_id", "labels", "mids", "fold", "split", "frame_seconds")}
        check_sample(meta, record["wav"], record["jpg"], media, by_id)
        assert json.loads(record["json"])["sha256"]["jpg"] == __import__("hashlib").sha256(record["jpg"]).hexdigest()


def test_killed_export_resumes_to_the_same_bytes(tmp_path, fetched, monkeypatch):
    manifest, media, _ = fetched
    clean = export(manifest, media, tmp_path / "clean", shard_size=2)
    calls = []
    original = export_module._write_tar

    def dies_on_the_second(path, records):
        calls.append(path.name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        original(path, records)

    monkeypatch.setattr(export_module, "_write_tar", dies_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        export(manifest, media, tmp_path / "resumed", shard_size=2)
    assert json.loads((tmp_path / "resumed" / "index.json").read_text())["complete"] is False
    calls.clear()
    monkeypatch.setattr(export_module, "_write_tar", lambda path, records: (calls.append(path.name),
                                                                           original(path, records)))
    resumed = export(manifest, media, tmp_path / "resumed", shard_size=2)
    assert calls == [".shard-000001.tar.tmp", ".shard-000002.tar.tmp"]  # the finished shard was kept
    assert resumed["shards"] == clean["shards"]  # same names, sizes and sha256
    assert not list((tmp_path / "resumed").glob(".*.tmp"))
    with pytest.raises(MacsError, match="another selection, format or shard size"):
        export(manifest, media, tmp_path / "resumed", shard_size=3)
    # overwrite starts afresh: the same shards as a clean export of size 3, none of the size-2 export left
    again = export(manifest, media, tmp_path / "resumed", shard_size=3, overwrite=True)
    assert again["shards"] == export(manifest, media, tmp_path / "clean3", shard_size=3)["shards"]
    assert sorted(p.name for p in (tmp_path / "resumed").glob("shard-*")) == [s["name"] for s in again["shards"]]


def test_export_cli(tmp_path, fetched):
    manifest, media, _ = fetched
    bin_ = Path(sys.executable).parent / "macs-bench"
    out = subprocess.run([str(bin_), "datasets", "export", "--manifest", str(manifest), "--media", str(media), "--out",
                          str(tmp_path / "x"), "--format", "parquet"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "5 samples in 1 parquet shards" in out.stdout
    bad = subprocess.run([str(bin_), "datasets", "export", "--manifest", str(manifest), "--media", str(tmp_path), "--out",
                          str(tmp_path / "y")], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "not a MEDIA folder" in bad.stderr
