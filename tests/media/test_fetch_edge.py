"""Edge cases of fetching: stream timing, low frame rates, naming ambiguities, re-judging, bad inputs."""

import json
import subprocess
import wave

import numpy as np
import pytest
from media_helpers import clip_row, frame_colour, make_video, write_manifest

from macs_bench.errors import MacsError
from macs_bench.media.fetch import FetchOptions, fetch
from macs_bench.media.ledger import Ledger
from macs_bench.media.quality import QualityThresholds
from macs_bench.media.sources import Unavailable


def entries(media):
    with Ledger(media / "ledger.sqlite") as ledger:
        return ledger.all()


def test_late_streams_stay_on_the_file_timeline(tmp_path):
    """A trimmed clip whose audio starts 0.5 s late and whose video starts 1 s late."""
    src = tmp_path / "videos"
    src.mkdir()
    path = src / "latestreams.mp4"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
                    "-itsoffset", "1", "-f", "lavfi", "-i",
                    "nullsrc=s=64x48:r=10:d=9,geq=r='mod(floor(T),12)*20':g='(T-floor(T))*255':b='X*3'",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=22050:duration=9.5,adelay=500:all=1",
                    "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-pix_fmt", "yuv444p", "-qp", "0",
                    "-c:a", "aac", str(path)], check=True)
    result = fetch(write_manifest(tmp_path / "m", [clip_row("latestreams", 30, 40, frame=5)]), tmp_path / "media",
                   source_dir=src, options=FetchOptions(quality=None, all_frames=True))
    assert result["n_ok"] == 1, result
    with wave.open(str(tmp_path / "media" / "audio" / "latestreams_30_40.wav")) as fh:
        assert fh.getnframes() == 160000
        samples = np.frombuffer(fh.readframes(fh.getnframes()), dtype="<i2").astype(float)
    onset = np.flatnonzero(np.abs(samples) > 1000)[0] / 16000
    assert 0.45 < onset < 0.6  # the tone starts where the file says, not pulled to 0
    # at file time k + 0.5 the video shows its own time k + 0.5 - 1 (it starts 1 s late)
    frames = sorted((tmp_path / "media" / "frames_all" / "latestreams_30_40").iterdir())
    for k in range(1, 10):
        assert abs(frame_colour(frames[k])[0] - ((k - 1) % 12) * 20) < 4, k


def test_one_frame_per_second_video_gives_every_second(tmp_path):
    src = tmp_path / "videos"
    src.mkdir()
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "nullsrc=s=64x48:r=1:d=10,geq=r='mod(floor(T),12)*20':g=0:b='X*3'",
                    "-f", "lavfi", "-i", "sine=duration=10", "-c:v", "libx264", "-pix_fmt", "yuv444p", "-qp", "0",
                    "-c:a", "aac", "-shortest", str(src / "onefpsvideo.mp4")], check=True)
    result = fetch(write_manifest(tmp_path / "m", [clip_row("onefpsvideo", 0, 10, frame=9)]), tmp_path / "media",
                   source_dir=src, options=FetchOptions(quality=None))
    assert result["n_ok"] == 1, result
    assert abs(frame_colour(tmp_path / "media" / "frames" / "onefpsvideo_0_10.jpg")[0] - 9 * 20) < 4


def test_trimmed_file_named_by_a_shared_ytid_is_refused(tmp_path):
    src = tmp_path / "videos"
    src.mkdir()
    make_video(src / "sharedytid1.mp4", 10, t0=5)
    make_video(src / "ownytid0001.mp4", 10, t0=5)
    rows = [clip_row("sharedytid1", 5, 15), clip_row("sharedytid1", 6, 16), clip_row("ownytid0001", 5, 15)]
    fetch(write_manifest(tmp_path / "m", rows), tmp_path / "media", source_dir=src, options=FetchOptions(quality=None))
    got = {sid: (e.status, e.reason) for sid, e in entries(tmp_path / "media").items()}
    assert got == {"sharedytid1_5_15": ("unavailable", "ambiguous-trimmed"),
                   "sharedytid1_6_16": ("unavailable", "ambiguous-trimmed"),
                   "ownytid0001_5_15": ("ok", "")}
    # naming the files by sample id (or Landscape's <ytid>#<start>#<end>) resolves it on the next run
    (src / "sharedytid1.mp4").rename(src / "sharedytid1_5_15.mp4")
    make_video(src / "sharedytid1#6#16.mp4", 10, t0=6)
    result = fetch(tmp_path / "m", tmp_path / "media", source_dir=src, options=FetchOptions(quality=None))
    assert result["n_ok"] == 3


def test_short_start_offset_trimmed_clip(tmp_path):
    src = tmp_path / "videos"
    src.mkdir()
    make_video(src / "smallstart1_0.4_10.4.mp4", 10, t0=0.4)
    fetch(write_manifest(tmp_path / "m", [clip_row("smallstart1", "0.4", "10.4", frame=3)]), tmp_path / "media",
          source_dir=src, options=FetchOptions(quality=None))
    (entry,) = entries(tmp_path / "media").values()
    assert (entry.status, entry.detail["layout"], entry.detail["offset"]) == ("ok", "trimmed", 0.0)


def test_missing_files_are_looked_for_again(tmp_path):
    src = tmp_path / "videos"
    src.mkdir()
    manifest = write_manifest(tmp_path / "m", [clip_row("arriveslate", 0, 10)])
    assert fetch(manifest, tmp_path / "media", source_dir=src, options=FetchOptions(quality=None))["n_ok"] == 0
    make_video(src / "arriveslate.mp4", 10)
    assert fetch(manifest, tmp_path / "media", source_dir=src, options=FetchOptions(quality=None))["n_ok"] == 1


def test_changed_thresholds_are_applied_on_rerun(tmp_path):
    src = tmp_path / "videos"
    src.mkdir()
    make_video(src / "tonevideo01.mp4", 10)  # -21 dBFS
    manifest = write_manifest(tmp_path / "m", [clip_row("tonevideo01", 0, 10)])
    assert fetch(manifest, tmp_path / "media", source_dir=src, options=FetchOptions())["n_ok"] == 1  # filter off
    strict = FetchOptions(quality=QualityThresholds(min_rms_dbfs=-10))
    result = fetch(manifest, tmp_path / "media", source_dir=src, options=strict)
    assert result["n_ok"] == 0 and result["unavailable_reasons"] == {"poor-quality": 1}
    assert result["options"]["quality"]["min_rms_dbfs"] == -10
    lenient = FetchOptions(quality=QualityThresholds(min_rms_dbfs=-30))
    assert fetch(manifest, tmp_path / "media", source_dir=src, options=lenient)["n_ok"] == 1


def test_quality_filter_defaults_to_audioset_eval_only(tmp_path):
    src = tmp_path / "videos"
    src.mkdir()
    make_video(src / "frozenvideo.mp4", 10, video="still")  # a still picture: only the paper's filter minds
    for dataset, n_ok in (("llp-multi", 1), ("audioset-eval", 0)):
        manifest = write_manifest(tmp_path / dataset, [clip_row("frozenvideo", 0, 10)])
        (manifest / "stats.json").write_text(json.dumps({"dataset": dataset}))
        assert fetch(manifest, tmp_path / f"media-{dataset}", source_dir=src)["n_ok"] == n_ok


@pytest.mark.parametrize(
    "rows, message",
    [
        ([clip_row("duplicated1", 0, 10), clip_row("duplicated1", 0, 10)], r"manifest.csv:3: sample_id .* repeats"),
        ([{**clip_row("framesbad01", 0, 10), "frame_seconds": "4;4"}], r"manifest.csv:2: frame_seconds '4;4'"),
        ([{**clip_row("framesbad01", 0, 10), "frame_seconds": "-1"}], r"manifest.csv:2: frame_seconds '-1'"),
        ([{**clip_row("framesbad01", 0, 10), "frame_seconds": "10"}], r"manifest.csv:2: frame_seconds '10'"),
        ([{**clip_row("rangebad001", 0, 10), "end": "0"}], r"manifest.csv:2: end is not after start"),
    ],
)
def test_bad_manifest_rows(tmp_path, rows, message):
    with pytest.raises(MacsError, match=message):
        fetch(write_manifest(tmp_path / "m", rows), tmp_path / "media", source_dir=tmp_path)


def test_short_row_and_bad_root_and_damaged_ledger(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "manifest.csv").write_text(
        "sample_id,ytid,start,end,labels,mids,n_labels,frame_seconds,fold,split\nabc_0_10,abcdefghijk,0\n")
    with pytest.raises(MacsError, match=r"manifest.csv:2: wrong number of cells"):
        fetch(tmp_path / "m", tmp_path / "media", source_dir=tmp_path)
    manifest = write_manifest(tmp_path / "m2", [clip_row("abcdefghijk", 0, 10)])
    (tmp_path / "afile").write_text("")
    with pytest.raises(MacsError, match="afile: exists and is not a folder$"):
        fetch(manifest, tmp_path / "afile", source_dir=tmp_path)
    media = tmp_path / "media"
    media.mkdir()
    (media / "ledger.sqlite").write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(MacsError, match="ledger.sqlite: not a usable ledger"):
        fetch(manifest, media, source_dir=tmp_path)


def test_file_without_a_stated_duration(tmp_path):
    """Matroska written to a pipe has no duration in its header: the packets tell it."""
    src = tmp_path / "videos"
    src.mkdir()
    with open(src / "pipedvideo1.mkv", "wb") as fh:
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                        "nullsrc=s=64x48:r=10:d=10,geq=r='mod(floor(T),12)*20':g=0:b='X*3'", "-f", "lavfi", "-i",
                        "sine=duration=10", "-c:v", "libx264", "-c:a", "libopus", "-f", "matroska", "-"],
                       stdout=fh, check=True)
    from macs_bench.media.ffmpeg import probe

    assert 9.5 < probe(src / "pipedvideo1.mkv").duration < 10.5
    result = fetch(write_manifest(tmp_path / "m", [clip_row("pipedvideo1", 30, 40)]), tmp_path / "media",
                   source_dir=src, options=FetchOptions(quality=None))
    assert result["n_ok"] == 1, result


@pytest.mark.parametrize("dataset, quality", [("llp-multi", "auto"), ("audioset-eval", None),
                                              ("audioset-eval", QualityThresholds(min_rms_dbfs=-300))])
def test_digital_silence_is_never_ok(tmp_path, dataset, quality):
    """All zeros is unavailable ('silent') whatever the filter: off by default for LLP, off, or set below it."""
    src = tmp_path / "videos"
    src.mkdir()
    make_video(src / "silentvideo.mp4", 10, audio="silent")
    manifest = write_manifest(tmp_path / dataset, [clip_row("silentvideo", 0, 10)])
    (manifest / "stats.json").write_text(json.dumps({"dataset": dataset}))
    result = fetch(manifest, tmp_path / "media", source_dir=src, options=FetchOptions(quality=quality))
    assert result["n_ok"] == 0
    reason = "poor-quality" if quality == "auto" and dataset == "audioset-eval" else "silent"
    assert result["unavailable_reasons"] == {reason: 1}
    with Ledger(tmp_path / "media" / "ledger.sqlite") as ledger:
        entry = ledger.get("silentvideo_0_10")
    assert entry.quality["rms_dbfs"] == -200.0 and "digital silence" in entry.detail["detail"]


def test_a_quiet_clip_above_the_digital_floor_stays_ok(tmp_path):
    """The floor is digital silence, not quiet: a -60 dBFS tone is ok with the filter off."""
    from macs_bench.media.clip import reject_digital_silence

    for amplitude, silent in ((0.0, True), (10 ** (-95 / 20), True), (10 ** (-60 / 20), False)):
        wav = tmp_path / f"{amplitude}.wav"
        samples = (amplitude * np.sqrt(2) * 32768 * np.sin(np.linspace(0, 880 * np.pi, 16000))).astype("<i2")
        with wave.open(str(wav), "wb") as fh:
            fh.setnchannels(1), fh.setsampwidth(2), fh.setframerate(16000), fh.writeframes(samples.tobytes())
        if silent:
            with pytest.raises(Unavailable, match="digital silence"):
                reject_digital_silence(wav)
        else:
            reject_digital_silence(wav)
