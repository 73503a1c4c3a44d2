"""The Python API as the README shows it: paths may start with '~', and errors speak of the API's own
arguments, never of CLI flags (a notebook user has no --source-dir)."""

import os

import pytest

from macs_bench.errors import MacsError
from macs_bench.media.export import export
from macs_bench.media.fetch import FetchOptions, fetch
from macs_bench.media.items import parse_shard
from macs_bench.media.merge import merge_media
from macs_bench.media.sources import YtDlpDownloader, load_downloader

from media_helpers import clip_row, write_manifest


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def test_api_paths_expand_the_home_folder(home, long_video):
    (home / "LLP" / "videos").mkdir(parents=True)
    os.symlink(long_video, home / "LLP" / "videos" / "tildeVideo0.mp4")
    write_manifest(home / "runs" / "mine", [clip_row("tildeVideo0", 1, 11)])
    report = fetch("~/runs/mine", "~/media", source_dir="~/LLP/videos", options=FetchOptions(jobs=1))
    assert report.n_ok == 1 and report.options["source_dir"] == str(home / "LLP" / "videos")
    assert (home / "media" / "audio" / "tildeVideo0_1_11.wav").is_file()
    assert not (home / "~").exists()
    merge_media("~/merged", ["~/media"], manifest="~/runs/mine")
    assert (home / "merged" / "available.txt").read_text() == "tildeVideo0_1_11\n"
    index = export("~/runs/mine", "~/media", "~/shards")
    assert index["n_samples"] == 1 and (home / "shards" / "shard-000000.tar").is_file()


def _message(call) -> str:
    with pytest.raises(MacsError) as info:
        call()
    return str(info.value)


def test_api_errors_name_no_cli_flag(home, tmp_path):
    manifest = write_manifest(home / "m", [clip_row("someVideo00", 0, 10)])
    (home / "afile").write_text("")
    messages = [
        _message(lambda: fetch(manifest, home / "media", source_dir="~/missing")),
        _message(lambda: fetch(manifest, "~/afile", source_dir=home)),
        _message(lambda: parse_shard("3/3")),
        _message(lambda: YtDlpDownloader(cookies="~/nope.txt")),
        _message(lambda: YtDlpDownloader(extractor_args=("nocolon",))),
        _message(lambda: load_downloader("nocolon")),
        _message(lambda: export(manifest, home, home / "x", fmt="zip")),
        _message(lambda: export(manifest, home, home / "x", shard_size=0)),
    ]
    assert messages[0] == f"{home / 'missing'}: not a folder"
    assert messages[1] == f"{home / 'afile'}: exists and is not a folder"
    for message in messages:
        assert "--" not in message, message
