"""``macs-bench datasets fetch`` as a process: kill -9 and Ctrl-C mid-run, then a rerun completes the set."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import wave
from pathlib import Path

import pytest
from media_helpers import clip_row, frame_colour, write_manifest

HERE = Path(__file__).parent
BIN = Path(sys.executable).parent / "macs-bench"


@pytest.fixture
def twelve_clips(tmp_path, long_video):
    videos = tmp_path / "yt"
    videos.mkdir()
    rows = []
    for i in range(12):
        ytid = f"-clip{i:02d}_abcd"[:11]
        os.symlink(long_video, videos / f"{ytid}.mp4")
        rows.append(clip_row(ytid, i, i + 10, frame=4))
    return videos, write_manifest(tmp_path / "manifest", rows), rows


def start(manifest, media, videos, delay, *extra, transient=None):
    path = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])  # the code under test stays first
    env = {**os.environ, "PYTHONPATH": path, "FAKE_VIDEOS": str(videos), "FAKE_DELAY": str(delay),
           "FAKE_STATE": str(media.parent / "calls"), "FAKE_TRANSIENT": json.dumps(transient or {})}
    backoff = [] if "--backoff" in extra else ["--backoff", "0"]
    cmd = [str(BIN), "datasets", "fetch", "--manifest", str(manifest), "--media", str(media), "--jobs", "2", *backoff,
           "--downloader", "fake_downloader:FakeDownloader", *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def n_ok(media):
    db = media / "ledger.sqlite"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db) as con:
            return con.execute("SELECT count(*) FROM samples WHERE status='ok'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def wait_for(predicate, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def check_complete(media, rows, final=True):
    for row in rows:
        sid, start = row["sample_id"], int(row["start"])
        with wave.open(str(media / "audio" / f"{sid}.wav")) as fh:
            assert (fh.getnchannels(), fh.getframerate(), fh.getnframes()) == (1, 16000, 160000)
        assert abs(frame_colour(media / "frames" / f"{sid}.jpg")[0] - ((start + 4) % 12) * 20) < 4
    if final:
        assert sorted((media / "available.txt").read_text().split()) == sorted(r["sample_id"] for r in rows)
        assert not (media / ".tmp").exists()


def test_kill_9_then_rerun_completes(tmp_path, twelve_clips):
    videos, manifest, rows = twelve_clips
    media = tmp_path / "media"
    proc = start(manifest, media, videos, 0.4)
    wait_for(lambda: n_ok(media) >= 3)
    proc.kill()  # SIGKILL: no handler runs
    proc.wait()
    done_before = n_ok(media)
    assert 3 <= done_before < 12
    # whatever the ledger calls ok is complete and valid; nothing else is counted
    with sqlite3.connect(media / "ledger.sqlite") as con:
        ok_ids = [r[0] for r in con.execute("SELECT sample_id FROM samples WHERE status='ok'")]
    check_complete(media, [r for r in rows if r["sample_id"] in ok_ids], final=False)
    rerun = start(manifest, media, videos, 0)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert "12 of 12 samples available" in out
    check_complete(media, rows)
    calls = len(list((tmp_path / "calls").iterdir()))
    assert calls <= 12 + 2 + 1  # finished clips were not fetched again (at most the ones in flight were)


def test_ctrl_c_exits_130_and_resumes(tmp_path, twelve_clips):
    videos, manifest, rows = twelve_clips
    media = tmp_path / "media"
    proc = start(manifest, media, videos, 1.0)  # slow enough that a loaded machine still interrupts mid-run
    wait_for(lambda: n_ok(media) >= 2)
    assert n_ok(media) < 12
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted" in err and "rerun" in err
    rerun = start(manifest, media, videos, 0)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    check_complete(media, rows)
    report = json.loads((media / "fetch_report.json").read_text())
    assert report["this_run"]["skipped_ok"] >= 2


def test_ctrl_c_does_not_wait_out_the_backoff(tmp_path, twelve_clips):
    videos, manifest, rows = twelve_clips
    media = tmp_path / "media"
    proc = start(manifest, media, videos, 0, "--backoff", "600", transient={r["ytid"]: 99 for r in rows})
    wait_for(lambda: (tmp_path / "calls").is_dir() and len(list((tmp_path / "calls").iterdir())) >= 2)
    time.sleep(0.3)  # both workers are now in their 600 s backoff
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)  # far less than the backoff
    assert proc.returncode == 130, err
    assert n_ok(media) == 0


def test_cli_report_dry_run_and_bad_options(tmp_path, twelve_clips):
    videos, manifest, rows = twelve_clips
    media = tmp_path / "media"
    dry = start(manifest, media, videos, 0, "--dry-run")
    out, err = dry.communicate(timeout=60)
    assert dry.returncode == 0 and "12 of 12 samples would be fetched" in out
    assert not media.exists()
    bad = start(manifest, media, videos, 0, "--frames", "some")
    out, err = bad.communicate(timeout=60)
    assert bad.returncode == 2 and len(err.strip().splitlines()) == 1 and "'some' is not one of 'selected', 'all'" in err
    run = start(manifest, media, videos, 0, "--frames", "all")
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    assert "availability in" in out and "100.0" in out
    assert len(list((media / "frames_all").iterdir())) == 12
