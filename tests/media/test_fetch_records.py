"""What fetch records and says: available.txt from the whole ledger, structured quality columns, exit codes,
case-insensitive video suffixes."""

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from media_helpers import clip_row, make_video, write_manifest

from macs_bench.media.fetch import FetchOptions, fetch
from macs_bench.media.ledger import Ledger
from macs_bench.media.quality import QualityThresholds

BIN = Path(sys.executable).parent / "macs-bench"


def test_available_txt_is_the_ledgers_ok_set(tmp_path, long_video):
    """Fetching a subset into a shared MEDIA folder must not cut the list the next build reads."""
    src = tmp_path / "videos"
    src.mkdir()
    rows = [clip_row(f"sharedmedi{i}", i, i + 10) for i in range(3)]
    for row in rows:
        (src / f"{row['ytid']}.mp4").symlink_to(long_video)
    media = tmp_path / "media"
    whole = fetch(write_manifest(tmp_path / "all", rows), media, source_dir=src, options=FetchOptions(quality=None))
    assert whole.n_ok == 3
    subset = fetch(write_manifest(tmp_path / "one", rows[:1]), media, source_dir=src,
                   options=FetchOptions(quality=None))
    assert (media / "available.txt").read_text().split() == sorted(r["sample_id"] for r in rows)
    assert subset.n_ok == 1 and subset.n_ok_in_ledger == 3


def test_quality_measurements_are_columns(tmp_path):
    src = tmp_path / "videos"
    src.mkdir()
    make_video(src / "silentclip1.mp4", 10, audio="silent")
    make_video(src / "goodclip001.mp4", 10)
    rows = [clip_row("silentclip1", 0, 10), clip_row("goodclip001", 0, 10)]
    result = fetch(write_manifest(tmp_path / "m", rows), tmp_path / "media", source_dir=src,
                   options=FetchOptions(quality=QualityThresholds()))
    with sqlite3.connect(tmp_path / "media" / "ledger.sqlite") as db:
        got = dict((r[0], r[1:]) for r in db.execute(
            "SELECT sample_id, rms_dbfs, frame_std, motion, problems FROM samples"))
    rms, std, motion, problems = got["silentclip1_0_10"]
    assert rms == -200.0 and isinstance(std, float) and isinstance(motion, float) and problems == "silent"
    rms, std, motion, problems = got["goodclip001_0_10"]
    assert abs(rms - (-21.07)) < 0.3 and motion > 5 and problems == ""
    with Ledger(tmp_path / "media" / "ledger.sqlite") as ledger:
        entry = ledger.get("silentclip1_0_10")
    assert entry.quality["rms_dbfs"] == -200.0 and entry.quality["problems"] == ["silent"]
    assert "quality" not in entry.detail and "{" not in entry.detail["detail"]  # no Python repr in the ledger
    (excluded,) = result.poor_quality_excluded
    assert excluded["problems"] == ["silent"] and excluded["rms_dbfs"] == -200.0


def test_old_ledger_gains_the_quality_columns(tmp_path):
    path = tmp_path / "ledger.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE samples (sample_id TEXT PRIMARY KEY, status TEXT NOT NULL, reason TEXT NOT NULL "
                   "DEFAULT '', attempts INTEGER NOT NULL DEFAULT 0, detail TEXT NOT NULL DEFAULT '{}')")
        db.execute("INSERT INTO samples VALUES ('a_0_10', 'ok', '', 1, '{}')")
    with Ledger(path) as ledger:
        assert ledger.get("a_0_10").status == "ok" and ledger.get("a_0_10").quality == {}


def test_video_suffixes_match_in_any_case(tmp_path):
    src = tmp_path / "videos"
    src.mkdir()
    make_video(src / "capssuffix1.MP4", 10)
    result = fetch(write_manifest(tmp_path / "m", [clip_row("capssuffix1", 0, 10)]), tmp_path / "media",
                   source_dir=src, options=FetchOptions(quality=None))
    assert result.n_ok == 1, result.unavailable_reasons


def fetch_cli(manifest, media, src):
    return subprocess.run([str(BIN), "datasets", "fetch", "--manifest", str(manifest), "--media", str(media), "--source-dir",
                           str(src)], capture_output=True, text=True, timeout=120)


def test_exit_status_says_whether_anything_was_fetched(tmp_path):
    src = tmp_path / "videos"
    src.mkdir()
    manifest = write_manifest(tmp_path / "m", [clip_row("notthere001", 0, 10), clip_row("arrivesnow1", 0, 10)])
    out = fetch_cli(manifest, tmp_path / "media", src)
    assert out.returncode == 1, out.stderr
    assert "nothing could be fetched" in out.stderr
    assert json.loads((tmp_path / "media" / "fetch_report.json").read_text())["n_ok"] == 0
    make_video(src / "arrivesnow1.mp4", 10)
    out = fetch_cli(manifest, tmp_path / "media", src)
    assert out.returncode == 0, out.stderr
    assert "1 of 2 samples available" in out.stdout


def test_exit_status_3_when_some_failed_transiently(tmp_path, long_video):
    import os

    videos = tmp_path / "yt"
    videos.mkdir()
    rows = [clip_row("flakyvideo0", 0, 10), clip_row("steadyvideo", 0, 10)]
    for row in rows:
        (videos / f"{row['ytid']}.mp4").symlink_to(long_video)
    path = os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path, "FAKE_VIDEOS": str(videos),
           "FAKE_TRANSIENT": json.dumps({"flakyvideo0": 99})}
    out = subprocess.run([str(BIN), "datasets", "fetch", "--manifest", str(write_manifest(tmp_path / "m", rows)), "--media",
                          str(tmp_path / "media"), "--retries", "1", "--downloader",
                          "fake_downloader:FakeDownloader"], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 3, out.stderr
    assert "flakyvideo0_0_10: failed (transient, 1 attempts): HTTP Error 503" in out.stderr
    assert "1 samples failed transiently: rerun" in out.stderr
