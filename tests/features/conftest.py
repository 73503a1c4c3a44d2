import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

from scoring_helpers import make_scoring_case  # noqa: E402


@pytest.fixture
def scoring_case(tmp_path):
    return make_scoring_case(tmp_path, n=8)


@pytest.fixture
def image_file(tmp_path):
    path = tmp_path / "img.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture
def audio_file(tmp_path):
    path = tmp_path / "a.wav"
    t = np.arange(16000) / 16000
    soundfile.write(path, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000, subtype="PCM_16")
    return path
