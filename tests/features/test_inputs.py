import numpy as np
import pytest
import soundfile
from PIL import Image

from macs_bench.errors import MacsError
from macs_bench.features.inputs import load_audio, load_image


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16", "CMYK"])
def test_odd_image_modes_convert_like_clean_fid(tmp_path, mode):
    rgb = Image.fromarray(np.random.default_rng(1).integers(0, 255, (20, 30, 3), dtype=np.uint8))
    img = rgb.convert(mode) if mode != "I;16" else Image.fromarray(
        np.random.default_rng(1).integers(0, 300, (20, 30)).astype(np.uint16))
    path = tmp_path / ("x.tiff" if mode == "CMYK" else "x.png")
    img.save(path)
    got = load_image(path)
    expected = np.asarray(Image.open(path).convert("RGB"))  # clean-fid's conversion
    assert got.dtype == np.uint8 and got.shape == (20, 30, 3)
    np.testing.assert_array_equal(got, expected)


def test_bad_images(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    with pytest.raises(MacsError, match=r"broken.png: unreadable or corrupt image"):
        load_image(tmp_path / "broken.png")
    with pytest.raises(MacsError, match=r"nothere.png: unreadable"):
        load_image(tmp_path / "nothere.png")


def test_audio_resampled_to_16k_mono(tmp_path):
    t = np.arange(44100) / 44100
    stereo = np.stack([np.sin(2 * np.pi * 300 * t), np.sin(2 * np.pi * 300 * t)], axis=1) * 0.5
    soundfile.write(tmp_path / "s.wav", stereo.astype(np.float32), 44100)
    wave = load_audio(tmp_path / "s.wav")
    assert wave.dtype == np.float32 and abs(wave.size - 16000) <= 1
    spectrum = np.abs(np.fft.rfft(wave))
    assert abs(np.argmax(spectrum) * 16000 / wave.size - 300) < 3


def test_bad_audio(tmp_path):
    soundfile.write(tmp_path / "silent.wav", np.zeros(16000, np.float32), 16000)
    with pytest.raises(MacsError, match=r"silent.wav: silent audio"):
        load_audio(tmp_path / "silent.wav")
    soundfile.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    with pytest.raises(MacsError, match=r"empty.wav: (empty|unreadable) audio"):
        load_audio(tmp_path / "empty.wav")
    (tmp_path / "junk.wav").write_bytes(b"RIFFjunk")
    with pytest.raises(MacsError, match=r"junk.wav: unreadable audio"):
        load_audio(tmp_path / "junk.wav")


def test_too_short_audio(tmp_path):
    soundfile.write(tmp_path / "blip.wav", (0.5 * np.ones(200)).astype(np.float32), 16000)
    with pytest.raises(MacsError, match=r"blip.wav: audio too short \(0.013 s"):
        load_audio(tmp_path / "blip.wav")
