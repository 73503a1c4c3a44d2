import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # media_helpers and fake_downloader, for tests and subprocesses

from media_helpers import make_video  # noqa: E402


@pytest.fixture(scope="session")
def long_video(tmp_path_factory):
    """A 'full-length' 24 s video whose frames encode their own source second."""
    return make_video(tmp_path_factory.mktemp("src") / "long.mp4", 24)
