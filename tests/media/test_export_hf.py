"""Exports load in Hugging Face ``datasets`` as decoded features: ``load_dataset("parquet")`` and
``load_dataset("webdataset")`` give audio arrays equal to the fetched WAVs and PIL images equal to the frames."""

import io
import wave

import numpy as np
import pytest
from PIL import Image

from macs_bench.media.export import export

datasets = pytest.importorskip("datasets")


def wav_array(path):
    with wave.open(str(path)) as fh:
        return fh.getframerate(), np.frombuffer(fh.readframes(fh.getnframes()), dtype="<i2") / 32768.0


def check(example, sample_id, media):
    rate, want = wav_array(media / "audio" / f"{sample_id}.wav")
    assert example["wav"]["sampling_rate"] == rate == 16000
    np.testing.assert_allclose(example["wav"]["array"], want, atol=1e-6)
    image = example["jpg"]
    assert isinstance(image, Image.Image)
    frame = Image.open(io.BytesIO((media / "frames" / f"{sample_id}.jpg").read_bytes()))
    assert np.array_equal(np.asarray(image.convert("RGB")), np.asarray(frame.convert("RGB")))


@pytest.mark.slow
def test_parquet_loads_as_audio_and_image_features(tmp_path, fetched, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    manifest, media, rows = fetched
    index = export(manifest, media, tmp_path / "pq", fmt="parquet", shard_size=3)
    files = [str(tmp_path / "pq" / s["name"]) for s in index["shards"]]
    ds = datasets.load_dataset("parquet", data_files=files, split="train", cache_dir=str(tmp_path / "cache"))
    assert isinstance(ds.features["wav"], datasets.Audio) and isinstance(ds.features["jpg"], datasets.Image)
    assert ds.features["wav"].sampling_rate == 16000
    assert ds["sample_id"] == [r["sample_id"] for r in rows]
    for example in ds:
        check(example, example["sample_id"], media)
        assert example["labels"] == rows[ds["sample_id"].index(example["sample_id"])]["labels"].split(";")


@pytest.mark.slow
def test_webdataset_loads_as_audio_and_image_features(tmp_path, fetched, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    manifest, media, rows = fetched
    index = export(manifest, media, tmp_path / "wds", shard_size=2)
    files = [str(tmp_path / "wds" / s["name"]) for s in index["shards"]]
    ds = datasets.load_dataset("webdataset", data_files=files, split="train", cache_dir=str(tmp_path / "cache"))
    assert isinstance(ds.features["wav"], datasets.Audio) and isinstance(ds.features["jpg"], datasets.Image)
    assert [e["json"]["sample_id"] for e in ds] == [r["sample_id"] for r in rows]
    for example in ds:
        check(example, example["json"]["sample_id"], media)
        assert example["__key__"] == example["json"]["sample_id"].replace(".", ",")
