"""Decoding: each image is read once for all its encoders, in parallel by default with the same bits as a
serial pass; webp, bmp and tif are accepted; every file a folder holds but scoring does not read is named."""

import numpy as np
import torch
from PIL import Image

from macs_bench.features import encoders, extract
from macs_bench.features.cache import FeatureCache
from macs_bench.features.encoders import build_encoders
from macs_bench.features.extract import content_hash, encode_sets
from macs_bench.scoring import ScoreConfig, score_folders


def _count_decodes(monkeypatch):
    calls = []
    real = extract.load_image

    def counted(path):
        calls.append(str(path))
        return real(path)

    monkeypatch.setattr(extract, "load_image", counted)
    monkeypatch.setattr(encoders, "load_image", counted)  # an encoder that read its file itself would count
    return calls


def test_each_image_is_decoded_once_for_all_encoders(tmp_path, scoring_case, monkeypatch):
    calls = _count_decodes(monkeypatch)
    config = ScoreConfig(preset="tiny", cache_dir=str(tmp_path / "c"), kid_subset_size=4,
                         metrics="cmmd,fd_dinov2,prdc_inception")  # five image encoders read every file
    result = score_folders(scoring_case.pred, scoring_case.media / "frames", config=config)
    assert sorted(calls) == sorted(str(p) for p in [*scoring_case.pred.iterdir(),
                                                    *(scoring_case.media / "frames").iterdir()])
    assert result["encoded_now"]["gen_dinov2"] == result["encoded_now"]["gt_clip_l336"] == 8
    calls.clear()
    score_folders(scoring_case.pred, scoring_case.media / "frames", config=config)
    assert calls == []  # all cached: nothing decoded


def test_parallel_decoding_gives_the_serial_bits(tmp_path, scoring_case):
    paths = sorted(scoring_case.pred.iterdir())
    hashes = [content_hash(p) for p in paths]
    tiny = build_encoders("tiny", names=["inception", "clip"])
    runs = {}
    for workers in (0, None, 1):  # serial, thread pool (the default), one DataLoader worker process
        got = encode_sets(paths, hashes, tiny, FeatureCache(tmp_path / f"cache-{workers}"),
                          device=torch.device("cpu"), batch_size=3, num_workers=workers)
        runs[workers] = {k: v[0] for k, v in got.items()}
    for workers in (None, 1):
        for key in tiny:
            np.testing.assert_array_equal(runs[workers][key], runs[0][key])
    assert extract.decode_workers(None) >= 1 and extract.decode_workers(3) == 3


def test_webp_bmp_and_tif_are_read_and_skipped_files_named(tmp_path):
    rng = np.random.default_rng(0)
    pred, ref = tmp_path / "pred", tmp_path / "ref"
    pred.mkdir()
    ref.mkdir()
    suffixes = [".png", ".webp", ".bmp", ".tif", ".tiff", ".jpg"]
    for i, suffix in enumerate(suffixes):
        array = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
        options = {"lossless": True} if suffix == ".webp" else {}
        Image.fromarray(array).save(pred / f"s{i}{suffix}", **options)
        Image.fromarray(array).save(ref / f"s{i}.png")
    (pred / "notes.txt").write_text("not an image")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(ref / "anim.gif")
    (ref / ".hidden").write_text("")
    result = score_folders(pred, ref, config=ScoreConfig(preset="tiny", cache_dir=str(tmp_path / "c"),
                                                         kid_subset_size=4))
    assert result.n == len(suffixes)
    assert result["inputs"]["skipped_files"] == [str(pred / "notes.txt"), str(ref / "anim.gif")]
    assert any(str(pred / "notes.txt") in w and str(ref / "anim.gif") in w for w in result.warnings)
    # lossless formats decode to the png's pixels: the same features, so IIS is 1 on those pairs
    iis = result.per_sample["iis"]
    assert all(iis[f"s{i}"] > 1 - 1e-5 for i, s in enumerate(suffixes) if s != ".jpg")
