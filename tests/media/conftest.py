import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # media_helpers and fake_downloader, for tests and subprocesses

import os  # noqa: E402

from fake_downloader import FakeDownloader  # noqa: E402
from media_helpers import clip_row, make_video, write_manifest  # noqa: E402

from macs_bench.datasets.manifest import manifest_rows  # noqa: E402
from macs_bench.media.fetch import FetchOptions, fetch  # noqa: E402


@pytest.fixture(scope="session")
def long_video(tmp_path_factory):
    """A 'full-length' 24 s video whose frames encode their own source second."""
    return make_video(tmp_path_factory.mktemp("src") / "long.mp4", 24)


@pytest.fixture(autouse=True)
def youtube_answers(monkeypatch):
    """Tests run offline: the connectivity probe before a yt-dlp run says YouTube answers, unless a test
    patches it to say otherwise."""
    from macs_bench.media import network

    monkeypatch.setattr(network, "probe", lambda *args, **kwargs: None)


@pytest.fixture(scope="session")
def fetched(tmp_path_factory, long_video):
    """A MEDIA folder of five fetched clips (one of six removed) and its manifest, for the export tests; read
    only: a test that changes it copies it first."""
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
