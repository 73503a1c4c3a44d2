import numpy as np
import pytest
import soundfile as sf
import torch

from macs_bench.datasets import Manifest, Sample
from macs_bench.datasets.manifest import manifest_rows as read_manifest
from macs_bench.errors import MacsError
from macs_model.separation.data import ClipDataset, open_clips
from macs_model.separation.training import collate

SR = 16000
CLIP = 4000  # 0.25 s


def _wav(media, sample_id, data, rate=SR, subtype="PCM_16"):
    path = media / "audio" / f"{sample_id}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, rate, subtype=subtype)
    return path


def _noise(n, channels=None, seed=0):
    shape = (n,) if channels is None else (n, channels)
    return np.random.default_rng(seed).uniform(-0.5, 0.5, shape).astype(np.float32)


def _source(path):
    return sf.read(path, dtype="float32", always_2d=True)[0].mean(axis=1)


def _manifest(tmp_path, samples):
    out = tmp_path / "manifest"
    Manifest("test", [Sample(sid, tuple(labels), "train") for sid, labels in samples]).write(out)
    return out


def _dominant_hz(x, rate):
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.fft.rfftfreq(len(x), 1 / rate)[int(np.argmax(spectrum))]


def test_shapes_dtype_and_fields(tmp_path):
    _wav(tmp_path, "a", _noise(3 * CLIP))
    _wav(tmp_path, "b", _noise(CLIP // 2, seed=1))
    ds = ClipDataset([("a", ("Dog", "Bark")), ("b", ())], tmp_path, SR, CLIP)
    assert len(ds) == 2
    for i, (sid, labels) in enumerate([("a", ["Dog", "Bark"]), ("b", [])]):
        item = ds[i]
        assert item["audio"].dtype == torch.float32 and tuple(item["audio"].shape) == (CLIP,)
        assert item["labels"] == labels and item["sample_id"] == sid
    batch = collate([ds[0], ds[1]])
    assert tuple(batch["audio"].shape) == (2, CLIP) and batch["labels"] == [["Dog", "Bark"], []]


def test_crop_start_is_the_first_samples(tmp_path):
    path = _wav(tmp_path, "a", _noise(3 * CLIP))
    audio = ClipDataset([("a", ())], tmp_path, SR, CLIP, crop="start")[0]["audio"].numpy()
    np.testing.assert_array_equal(audio, _source(path)[:CLIP])


def test_short_clip_is_zero_padded_at_the_end(tmp_path):
    path = _wav(tmp_path, "a", _noise(CLIP // 3) + 0.1)
    for crop in ("random", "start"):
        audio = ClipDataset([("a", ())], tmp_path, SR, CLIP, crop=crop)[0]["audio"].numpy()
        np.testing.assert_array_equal(audio[: CLIP // 3], _source(path))
        assert not audio[CLIP // 3:].any()


def test_stereo_is_averaged_to_mono(tmp_path):
    stereo = _noise(CLIP, channels=2)
    stereo[:, 1] *= -0.3  # channels differ, so taking one channel or summing would not match
    path = _wav(tmp_path, "s", stereo, subtype="FLOAT")
    audio = ClipDataset([("s", ())], tmp_path, SR, CLIP, crop="start")[0]["audio"].numpy()
    written = sf.read(path, dtype="float32", always_2d=True)[0]
    np.testing.assert_allclose(audio, written.mean(axis=1), atol=1e-7)
    assert not np.allclose(audio, written[:, 0], atol=1e-3)


def test_other_rates_are_resampled(tmp_path):
    rate = 44100
    t = np.arange(rate) / rate  # 1 s
    stereo = np.stack([0.5 * np.sin(2 * np.pi * 1000 * t), 0.2 * np.sin(2 * np.pi * 1000 * t)], axis=1)
    _wav(tmp_path, "hi", stereo.astype(np.float32), rate=rate)
    audio = ClipDataset([("hi", ())], tmp_path, SR, 2 * SR, crop="start")[0]["audio"].numpy()
    assert audio.shape == (2 * SR,)
    assert abs(_dominant_hz(audio[:SR], SR) - 1000) < 5  # unresampled it would read as ~363 Hz
    assert np.abs(audio[SR - 200:SR]).max() > 0.2  # 1 s of signal at 16 kHz ...
    assert not audio[SR + 5:].any()  # ... then padding
    assert abs(np.sqrt(np.mean(audio[100:SR - 100] ** 2)) - 0.35 / np.sqrt(2)) < 0.01  # mean of 0.5 and 0.2


def _offset(window, source):
    hits = [k for k in range(len(source) - len(window) + 1) if source[k] == window[0]
            and np.array_equal(source[k:k + len(window)], window)]
    assert len(hits) == 1, "the crop is not a contiguous window of the source"
    return hits[0]


def test_random_crop_is_a_reproducible_window_from_the_global_rng(tmp_path):
    path = _wav(tmp_path, "a", _noise(10 * CLIP))
    source = _source(path)
    ds = ClipDataset([("a", ())], tmp_path, SR, CLIP)
    offsets = {}
    for seed in (0, 1, 0):
        torch.manual_seed(seed)
        audio = ds[0]["audio"].numpy()
        offset = _offset(audio, source)
        assert offsets.setdefault(seed, offset) == offset
    assert offsets[0] != offsets[1]
    assert 0 <= min(offsets.values()) and max(offsets.values()) <= len(source) - CLIP

    state = torch.get_rng_state()  # a checkpointed RNG state replays the same crop ...
    first = ds[0]["audio"]
    assert not torch.equal(torch.get_rng_state(), state)  # ... because the crop draws from the global RNG
    torch.set_rng_state(state)
    assert torch.equal(ds[0]["audio"], first)


def test_start_crop_and_short_clips_leave_the_rng_alone(tmp_path):
    _wav(tmp_path, "long", _noise(3 * CLIP))
    _wav(tmp_path, "short", _noise(CLIP // 2))
    state = torch.get_rng_state()
    ClipDataset([("long", ())], tmp_path, SR, CLIP, crop="start")[0]
    ClipDataset([("short", ())], tmp_path, SR, CLIP)[0]
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("content", [b"RIFF\x10\x00\x00\x00WAVEjunkjunk", b""])
def test_unreadable_wav_names_the_file(tmp_path, content):
    path = tmp_path / "audio" / "bad.wav"
    path.parent.mkdir()
    path.write_bytes(content)
    with pytest.raises(MacsError, match="bad.wav"):
        ClipDataset([("bad", ())], tmp_path, SR, CLIP)[0]


def test_empty_wav_names_the_file(tmp_path):
    _wav(tmp_path, "empty", np.zeros(0, dtype=np.float32))
    with pytest.raises(MacsError, match=r"empty\.wav: the audio file is empty"):
        ClipDataset([("empty", ())], tmp_path, SR, CLIP)[0]


def test_audio_removed_after_opening_names_the_file(tmp_path):
    manifest = _manifest(tmp_path, [("gone", ["Dog"])])
    path = _wav(tmp_path / "media", "gone", _noise(CLIP))
    ds = open_clips(str(manifest), tmp_path / "media", SR, CLIP)
    path.unlink()
    with pytest.raises(MacsError, match=r"gone\.wav: the audio file is missing"):
        ds[0]


def test_bad_crop_is_refused(tmp_path):
    with pytest.raises(MacsError, match="crop"):
        ClipDataset([], tmp_path, SR, CLIP, crop="middle")


def test_open_clips_keeps_samples_with_audio_and_counts_the_rest(tmp_path):
    manifest = _manifest(tmp_path, [("s1", ["Dog"]), ("s2", ["Cat", "Rain"]), ("s3", ["Car"]), ("s4", [])])
    media = tmp_path / "media"
    _wav(media, "s2", _noise(CLIP))
    _wav(media, "s4", _noise(CLIP))
    (media / "audio" / "s3.jpg").write_bytes(b"not audio")
    ds = open_clips(str(manifest), media, SR, CLIP, crop="start")
    assert [e[0] for e in ds.entries] == ["s2", "s4"]
    assert ds.missing == 2 and ds.crop == "start"
    assert ds[0]["labels"] == ["Cat", "Rain"] and ds[1]["labels"] == []


def test_open_clips_without_any_audio_says_what_to_fetch(tmp_path):
    manifest = _manifest(tmp_path, [("s1", ["Dog"]), ("s2", ["Cat"]), ("s3", ["Car"])])
    media = tmp_path / "media"
    with pytest.raises(MacsError) as err:
        open_clips(str(manifest), media, SR, CLIP)
    message = str(err.value)
    assert str(media) in message and "3 samples" in message
    assert f"macs-bench datasets fetch --manifest {manifest} --media {media}" in message
    (media / "audio").mkdir(parents=True)  # an empty audio folder is no better
    with pytest.raises(MacsError, match="3 samples"):
        open_clips(str(manifest), media, SR, CLIP)


def test_open_clips_refuses_bad_data(tmp_path):
    with pytest.raises(MacsError, match="nonsense"):
        open_clips("nonsense", tmp_path, SR, CLIP)
    (tmp_path / "empty").mkdir()
    with pytest.raises(MacsError, match="manifest.csv"):
        open_clips(str(tmp_path / "empty"), tmp_path, SR, CLIP)


def test_open_clips_fsd50k_uses_dev_and_eval(tmp_path, manifests):
    samples = manifests("fsd50k").samples
    dev = next(s for s in samples if s.split == "dev" and len(s.labels) > 1)
    ev = next(s for s in samples if s.split == "eval")
    media = tmp_path / "media"
    _wav(media, dev.sample_id, _noise(3 * CLIP))
    _wav(media, ev.sample_id, _noise(CLIP // 2))
    work = tmp_path / "work"
    ds = open_clips("fsd50k", media, SR, CLIP, work_dir=work)
    assert sorted(e[0] for e in ds.entries) == sorted([dev.sample_id, ev.sample_id])
    assert ds.missing == len(samples) - 2
    items = {ds[i]["sample_id"]: ds[i] for i in range(len(ds))}
    assert items[dev.sample_id]["labels"] == list(dev.labels)
    assert items[ev.sample_id]["labels"] == list(ev.labels)
    assert len(read_manifest(work)) == len(samples)  # the manifest used is kept in work_dir


def test_open_clips_fsd50k_without_audio_asks_for_the_fsd50k_folder(tmp_path):
    with pytest.raises(MacsError) as err:
        open_clips("fsd50k", tmp_path / "media", SR, CLIP)
    assert "macs-bench datasets fetch" in str(err.value) and "--source-dir" in str(err.value)
