import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # media_helpers and fake_downloader, for tests and subprocesses

from media_helpers import make_video  # noqa: E402


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
