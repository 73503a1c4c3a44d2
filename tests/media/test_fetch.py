import json
import os
import wave

import pytest

from macs_bench.datasets import build
from macs_bench.media.fetch import FetchOptions, fetch
from macs_bench.media.ledger import Ledger
from macs_bench.media.quality import QualityThresholds

from fake_downloader import FakeDownloader
from media_helpers import clip_row, frame_colour, make_video, write_manifest


def wav_shape(path):
    with wave.open(str(path)) as fh:
        return fh.getnchannels(), fh.getframerate(), fh.getnframes()


def opts(**kw):
    base = dict(jobs=2, backoff=0.0, quality=QualityThresholds())
    base.update(kw)
    return FetchOptions(**base)


@pytest.fixture
def served(tmp_path, long_video):
    """A folder of 'YouTube' videos for the fake downloader: ids with '-', '_' and a fractional range."""
    videos = tmp_path / "yt"
    videos.mkdir()
    for ytid in ("-dashStart1", "under_sc_re", "plainvideo1"):
        os.symlink(long_video, videos / f"{ytid}.mp4")
    rows = [clip_row("-dashStart1", 3, 13, frame=4), clip_row("under_sc_re", 10, 20, frame=0),
            clip_row("plainvideo1", "2.5", "12.5", frame=9, n_labels=3)]
    return videos, write_manifest(tmp_path / "manifest", rows), rows


def test_layout_durations_and_frame_content(tmp_path, served):
    videos, manifest, rows = served
    media = tmp_path / "media"
    result = fetch(manifest, media, downloader=FakeDownloader(videos), options=opts(all_frames=True))
    assert result["n_ok"] == 3
    for row in rows:
        sid, start, k = row["sample_id"], float(row["start"]), int(row["frame_seconds"])
        assert wav_shape(media / "audio" / f"{sid}.wav") == (1, 16000, 160000)
        red, green = frame_colour(media / "frames" / f"{sid}.jpg")
        # the frame shows source second start + k, taken from the middle of that second
        second = start + k + 0.5
        assert abs(red - (int(second) % 12) * 20) < 4, (sid, red)
        assert abs(green - (second - int(second)) * 255) < 25, (sid, green)
        all_frames = sorted((media / "frames_all" / sid).iterdir())
        assert [p.name for p in all_frames] == [f"{j:02d}.jpg" for j in range(10)]
        for j, path in enumerate(all_frames):
            assert abs(frame_colour(path)[0] - (int(start + j + 0.5) % 12) * 20) < 4
    assert (media / "available.txt").read_text().split() == sorted(r["sample_id"] for r in rows)
    assert not (media / ".tmp").exists()
    report = json.loads((media / "fetch_report.json").read_text())
    assert report["by_label_count"] == {
        "2": {"total": 2, "ok": 2, "unavailable": 0, "failed": 0, "pending": 0},
        "3": {"total": 1, "ok": 1, "unavailable": 0, "failed": 0, "pending": 0},
    }


def test_ledger_transitions_and_reruns(tmp_path, served, monkeypatch):
    videos, manifest, rows = served
    a, b, c = (r["sample_id"] for r in rows)
    sleeps = []
    media = tmp_path / "media"
    fake = FakeDownloader(videos, transient={"-dashStart1": 1, "under_sc_re": 99}, removed={"plainvideo1"})
    options = opts(retries=3, backoff=0.5)

    def run():
        return fetch(manifest, media, downloader=fake, options=options)

    from macs_bench.media.fetch import Fetcher

    with monkeypatch.context() as patch:  # record the fetcher's backoff pauses instead of waiting
        patch.setattr(Fetcher, "pause", lambda self, seconds: sleeps.append(seconds))
        run()
    with Ledger(media / "ledger.sqlite") as ledger:
        entries = ledger.all()
    assert (entries[a].status, entries[a].attempts) == ("ok", 2)  # one transient failure, then served
    assert (entries[b].status, entries[b].reason, entries[b].attempts) == ("failed", "transient", 3)
    assert (entries[c].status, entries[c].reason) == ("unavailable", "removed")
    assert sorted(sleeps) == [0.5, 0.5, 1.0]  # backoff doubles: a's one retry, b's two
    calls = {y: fake.calls(y) for y in ("-dashStart1", "under_sc_re", "plainvideo1")}

    # a rerun skips ok, retries failed, keeps unavailable
    fake.transient = {}
    result = run()
    assert fake.calls("-dashStart1") == calls["-dashStart1"]
    assert fake.calls("under_sc_re") == calls["under_sc_re"] + 1
    assert fake.calls("plainvideo1") == calls["plainvideo1"]
    with Ledger(media / "ledger.sqlite") as ledger:
        entries = ledger.all()
    assert (entries[b].status, entries[b].attempts) == ("ok", 4)
    assert entries[c].status == "unavailable"
    assert result["unavailable_reasons"] == {"removed": 1}

    # --retry-unavailable asks again; deleted outputs are fetched again
    (media / "audio" / f"{a}.wav").unlink()
    fake.removed = set()
    options.retry_unavailable = True
    result = run()
    assert result["n_ok"] == 3
    assert fake.calls("-dashStart1") == calls["-dashStart1"] + 1


def test_dry_run_writes_nothing(tmp_path, served):
    videos, manifest, _ = served
    result = fetch(manifest, tmp_path / "media", downloader=FakeDownloader(videos), dry_run=True)
    assert result == {"dry_run": True, "n_samples": 3, "to_fetch": 3, "skipped": {}}
    assert not (tmp_path / "media").exists()


def test_bad_clips_are_unavailable_with_reasons(tmp_path):
    src = tmp_path / "videos"
    src.mkdir()
    make_video(src / "noaudio0001.mp4", 10, audio=None)
    make_video(src / "shortclip01.mp4", 6)
    (src / "corruptfile.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    make_video(src / "-startsdash.mp4", 10)
    rows = [clip_row("noaudio0001", 30, 40), clip_row("shortclip01", 30, 40), clip_row("corruptfile", 30, 40),
            clip_row("-startsdash", 30, 40), clip_row("notprovided", 30, 40)]
    result = fetch(write_manifest(tmp_path / "m", rows), tmp_path / "media", source_dir=src, options=opts())
    with Ledger(tmp_path / "media" / "ledger.sqlite") as ledger:
        reasons = {sid.split("_")[0]: (e.status, e.reason) for sid, e in ledger.all().items()}
    assert reasons == {
        "noaudio0001": ("unavailable", "no-audio"),
        "shortclip01": ("unavailable", "too-short"),
        "corruptfile": ("unavailable", "corrupt"),
        "-startsdash": ("ok", ""),
        "notprovided": ("unavailable", "not-in-source-dir"),
    }
    assert result["n_ok"] == 1
    assert (tmp_path / "media" / "audio" / "-startsdash_30_40.wav").is_file()


def test_quality_filter(tmp_path):
    src = tmp_path / "videos"
    src.mkdir()
    make_video(src / "silentclip1.mp4", 10, audio="silent")
    make_video(src / "blackframes.mp4", 10, video="black")
    make_video(src / "frozenvideo.mp4", 10, video="still")
    make_video(src / "goodclip001.mp4", 10)
    rows = [clip_row(y, 0, 10) for y in ("silentclip1", "blackframes", "frozenvideo", "goodclip001")]
    manifest = write_manifest(tmp_path / "m", rows)
    result = fetch(manifest, tmp_path / "media", source_dir=src, options=opts())
    excluded = {e["sample_id"].split("_")[0]: e["why"] for e in result["poor_quality_excluded"]}
    assert set(excluded) == {"silentclip1", "blackframes", "frozenvideo"}
    assert excluded["silentclip1"].startswith("silent ") and "rms_dbfs" in excluded["silentclip1"]
    assert "blank-frame" in excluded["blackframes"] and "frozen-video" in excluded["frozenvideo"]
    assert result["n_ok"] == 1
    with Ledger(tmp_path / "media" / "ledger.sqlite") as ledger:
        good = ledger.get("goodclip001_0_10")
    # lavfi's sine has amplitude 1/8: RMS 20*log10(0.125/sqrt(2)) = -21.07 dBFS
    assert abs(good.quality["rms_dbfs"] - (-21.07)) < 0.3
    assert good.quality["motion"] > 5
    # the filter switched off keeps blank and frozen clips, never digital silence
    result = fetch(manifest, tmp_path / "media2", source_dir=src, options=opts(quality=None))
    assert result["n_ok"] == 3 and result["unavailable_reasons"] == {"silent": 1}


def test_source_dir_full_length_and_trimmed(tmp_path, long_video):
    src = tmp_path / "videos"
    src.mkdir()
    os.symlink(long_video, src / "fulllength1.mp4")  # the whole video (a link the user made): cut at the start
    make_video(src / "trimmedclip_5_15.mp4", 10, t0=5)  # already trimmed, named by sample id
    rows = [clip_row("fulllength1", 5, 15, frame=2), clip_row("trimmedclip", 5, 15, frame=2)]
    result = fetch(write_manifest(tmp_path / "m", rows), tmp_path / "media", source_dir=src, options=opts())
    assert result["n_ok"] == 2
    with Ledger(tmp_path / "media" / "ledger.sqlite") as ledger:
        layouts = {sid: e.detail["layout"] for sid, e in ledger.all().items()}
    assert layouts == {"fulllength1_5_15": "full", "trimmedclip_5_15": "trimmed"}
    for sid in layouts:  # both show source second 7
        assert abs(frame_colour(tmp_path / "media" / "frames" / f"{sid}.jpg")[0] - 7 * 20) < 4


def test_source_dir_mapping_cannot_escape(tmp_path):
    from macs_bench.errors import MacsError
    from macs_bench.media.sources import LocalVideos, Unavailable

    jail = tmp_path / "jail"
    jail.mkdir()
    make_video(tmp_path / "secret.mp4", 10)
    videos = LocalVideos(jail)
    for name in ("../secret", "..", "/etc/passwd", ".hidden"):
        with pytest.raises(Unavailable, match="would leave"):
            videos.find(name, "")
    assert videos.find("secret", "") is None
    # a manifest cannot smuggle a path in through its ids
    bad = clip_row("validytid01", 0, 10)
    for field, value in (("sample_id", "../../secret"), ("ytid", "../secret")):
        write_manifest(tmp_path / "m", [{**bad, field: value}])
        with pytest.raises(MacsError, match=r"manifest.csv:2: (sample_id|ytid) '\.\./"):
            fetch(tmp_path / "m", tmp_path / "media", source_dir=jail)


def test_available_list_feeds_build(tmp_path, long_video):
    landscape = build("landscape")
    rows = []
    src = tmp_path / "videos"
    src.mkdir()
    for s in landscape.samples[:3]:
        os.symlink(long_video, src / f"{s.ytid}.mp4") if float(s.end) <= 24 else make_video(
            src / f"{s.sample_id}.mp4", 10)
        rows.append({"sample_id": s.sample_id, "ytid": s.ytid, "start": s.start, "end": s.end, "labels": s.labels[0],
                     "n_labels": "1", "frame_seconds": "4", "split": s.split})
    fetch(write_manifest(tmp_path / "m", rows), tmp_path / "media", source_dir=src, options=opts())
    restricted = build("landscape", available=tmp_path / "media" / "available.txt")
    assert [s.sample_id for s in restricted.samples] == [s.sample_id for s in landscape.samples[:3]]


def test_fsd50k_import(tmp_path):
    import subprocess

    root = tmp_path / "FSD50K"
    (root / "FSD50K.dev_audio").mkdir(parents=True)
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "sine=frequency=300:sample_rate=44100:duration=3.3", "-ac", "2",
                    str(root / "FSD50K.dev_audio" / "64760.wav")], check=True)
    rows = [{"sample_id": "dev_64760", "labels": "Electric guitar", "n_labels": "1", "split": "dev"},
            {"sample_id": "dev_99999", "labels": "Dog", "n_labels": "1", "split": "dev"}]
    result = fetch(write_manifest(tmp_path / "m", rows), tmp_path / "media", source_dir=root, options=opts())
    assert wav_shape(tmp_path / "media" / "audio" / "dev_64760.wav") == (1, 16000, round(3.3 * 16000))
    assert result["unavailable_reasons"] == {"not-in-source-dir": 1}
    assert not (tmp_path / "media" / "frames").exists()
