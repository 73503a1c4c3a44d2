"""Where the audio really starts and ends decides ``too-short`` and the padding, in every container.

Matroska and WebM state no stream duration, only a ``DURATION`` tag (the stream's end time); before, the
container's duration stood in for the audio's, so missing audio became silence marked ``ok``.
"""

import wave

import numpy as np
import pytest
from media_helpers import clip_row, make_av, write_manifest

from macs_bench.media.fetch import FetchOptions, fetch
from macs_bench.media.ledger import Ledger


def only_entry(media):
    with Ledger(media / "ledger.sqlite") as ledger:
        (entry,) = ledger.all().values()
    return entry


def samples(path):
    with wave.open(str(path)) as fh:
        return np.frombuffer(fh.readframes(fh.getnframes()), dtype="<i2").astype(float)


@pytest.mark.parametrize("suffix", [".mkv", ".webm", ".mp4"])
def test_audio_ending_before_the_clip_is_unavailable(tmp_path, suffix):
    """Audio to 25 s in a 40 s video, clip 30-40 s: no audio at all in the range."""
    src = tmp_path / "videos"
    src.mkdir()
    ytid = f"earlyend{suffix[1:]:_<3}"[:11]
    make_av(src / f"{ytid}{suffix}", 40, 25)
    result = fetch(write_manifest(tmp_path / "m", [clip_row(ytid, 30, 40)]), tmp_path / "media", source_dir=src,
                   options=FetchOptions(quality=None))
    entry = only_entry(tmp_path / "media")
    assert (entry.status, entry.reason) == ("unavailable", "too-short"), entry
    assert "audio ends at 25.0" in entry.detail["detail"]
    assert result.n_ok == 0
    assert not (tmp_path / "media" / "audio" / f"{ytid}_30_40.wav").exists()


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_late_audio_in_a_trimmed_file_is_padded_at_the_start(tmp_path, suffix):
    """A 10 s trimmed clip whose audio stream starts at 1.5 s and ends at 10 s."""
    src = tmp_path / "videos"
    src.mkdir()
    make_av(src / f"lateaudio01{suffix}", 10, 8.5, audio_start=1.5)
    result = fetch(write_manifest(tmp_path / "m", [clip_row("lateaudio01", 30, 40)]), tmp_path / "media",
                   source_dir=src, options=FetchOptions(quality=None))
    entry = only_entry(tmp_path / "media")
    assert (entry.status, entry.detail["layout"]) == ("ok", "trimmed"), entry
    assert result.n_ok == 1
    # AAC and Opus priming move the stream start a few tens of ms before 1.5 s
    assert 1.35 < entry.detail["pad_start"] < 1.55 and entry.detail["pad_end"] < 0.05
    x = samples(tmp_path / "media" / "audio" / "lateaudio01_30_40.wav")
    assert x.size == 160000
    onset = np.flatnonzero(np.abs(x) > 1000)[0] / 16000
    assert abs(onset - entry.detail["pad_start"]) < 0.08  # the recorded padding is where the silence is
    assert np.abs(x[int(2 * 16000):]).max() > 3000  # the tone is there after it


def test_audio_a_little_short_is_padded_at_the_end_and_recorded(tmp_path):
    src = tmp_path / "videos"
    src.mkdir()
    make_av(src / "shorttail01.mkv", 10, 9.7)
    fetch(write_manifest(tmp_path / "m", [clip_row("shorttail01", 0, 10)]), tmp_path / "media", source_dir=src,
          options=FetchOptions(quality=None))
    entry = only_entry(tmp_path / "media")
    assert entry.status == "ok", entry
    assert entry.detail["pad_start"] < 0.05 and 0.25 < entry.detail["pad_end"] < 0.35
    x = samples(tmp_path / "media" / "audio" / "shorttail01_0_10.wav")
    assert np.abs(x[-int(0.25 * 16000):]).max() == 0 and np.abs(x[-int(0.5 * 16000):-int(0.4 * 16000)]).max() > 1000


def test_probe_reads_the_real_audio_range(tmp_path):
    from macs_bench.media.ffmpeg import probe

    for suffix in (".mkv", ".webm", ".mp4"):
        info = probe(make_av(tmp_path / f"a{suffix}", 10, 6, audio_start=2))
        assert abs(info.audio_start - 2) < 0.1 and abs(info.audio_end - 8) < 0.05, (suffix, info)
        assert abs(info.duration - 10) < 0.1
