"""Scoring end to end on a small case with tiny encoders; the math itself is checked in tests/metrics."""

import csv
import json
import shutil

import numpy as np
import pytest
from PIL import Image
from scoring_helpers import make_scoring_case

from macs_bench.errors import MacsError
from macs_bench.features import encoders
from macs_bench.features.cache import FeatureCache
from macs_bench.features.extract import content_hash, encode_files
from macs_bench.metrics import frechet_distance, kernel_inception_distance, paired_scores
from macs_bench.metrics.scoring import ScoreConfig, score


def run(case, tmp_path, model="m", **kw):
    config = ScoreConfig(preset="tiny", cache_dir=str(tmp_path / "cache"), kid_subset_size=4, **kw)
    return score(case.manifest, case.pred, case.media, model_name=model, out=tmp_path / f"{model}.json",
                 config=config)


def test_result_files_and_values(tmp_path, scoring_case):
    result = run(scoring_case, tmp_path)
    saved = json.loads((tmp_path / "m.json").read_text())
    assert saved == json.loads(result.to_json())
    assert saved["n"] == 8 and set(saved["metrics"]) == {"fid", "clip_fid", "kid", "kid_std", "ais", "ais_z", "iis",
                                                        "iis_z"}
    assert saved["tool"]["version"] and saved["metric_version"] and saved["seeds"] == {"kid": 0}
    assert saved["encoders"]["clip"]["weights"] == "tiny-random:0" and saved["comparable_with_paper"] is False
    assert saved["inputs"]["manifest_sha256"] and saved["encoded_now"]["gen_clip"] == 8
    # the same numbers from the features directly (one encoding each, independent of the score pipeline)
    tiny = encoders.build_encoders("tiny")
    cache = FeatureCache(tmp_path / "other-cache")

    def feats(name, folder, suffix):
        paths = [folder / f"{sid}{suffix}" for sid in scoring_case.ids]
        return encode_files(paths, [content_hash(p) for p in paths], tiny[name], cache, device="cpu")[0]

    gen_i, gt_i = feats("inception", scoring_case.pred, ".png"), feats("inception", scoring_case.media / "frames", ".jpg")
    gen_c, gt_c = feats("clip", scoring_case.pred, ".png"), feats("clip", scoring_case.media / "frames", ".jpg")
    aud = feats("wav2clip", scoring_case.media / "audio", ".wav")
    m = saved["metrics"]
    assert m["fid"] == pytest.approx(frechet_distance(gen_i, gt_i), rel=1e-9)
    assert m["clip_fid"] == pytest.approx(frechet_distance(gen_c, gt_c), rel=1e-9)
    assert m["kid"] == pytest.approx(kernel_inception_distance(gen_i, gt_i, max_subset_size=4, seed=0)[0], rel=1e-9)
    assert m["ais_z"] == pytest.approx(paired_scores(aud, gen_c).z_mean, rel=1e-9)
    assert m["iis"] == pytest.approx(paired_scores(gt_c, gen_c).mean, rel=1e-9)
    rows = list(csv.DictReader(open(tmp_path / "m.per_sample.csv")))
    assert [r["sample_id"] for r in rows] == scoring_case.ids
    assert np.mean([float(r["ais"]) for r in rows]) == pytest.approx(m["ais"], rel=1e-6)


def test_second_model_encodes_only_its_own_images(tmp_path, scoring_case):
    first = run(scoring_case, tmp_path, model="a")
    assert first["encoded_now"] == {"gen_inception": 8, "gt_inception": 8, "gen_clip": 8, "gt_clip": 8,
                                    "audio_wav2clip": 8}
    other = tmp_path / "pred_b"
    shutil.copytree(scoring_case.pred, other)
    for i, sid in enumerate(scoring_case.ids[:3]):  # model b differs on three samples
        Image.fromarray(np.full((30, 30, 3), 40 * i, np.uint8)).save(other / f"{sid}.png")
    scoring_case.pred = other
    second = run(scoring_case, tmp_path, model="b")
    assert second["encoded_now"] == {"gen_inception": 3, "gt_inception": 0, "gen_clip": 3, "gt_clip": 0,
                                     "audio_wav2clip": 0}
    again = run(scoring_case, tmp_path, model="b")
    assert sum(again["encoded_now"].values()) == 0
    assert again["metrics"] == second["metrics"]  # cached features give the same numbers; KID is seeded


def test_fold_and_missing_or_extra_predictions(tmp_path, scoring_case):
    result = score(scoring_case.manifest, scoring_case.pred, scoring_case.media, model_name="m", fold=1,
                   config=ScoreConfig(preset="tiny", cache_dir=str(tmp_path / "c"), kid_subset_size=3))
    assert result["n"] == 4 and result["fold"] == 1
    (scoring_case.pred / f"{scoring_case.ids[0]}.png").unlink()
    (scoring_case.pred / "stranger_1_2.png").write_bytes((scoring_case.pred / f"{scoring_case.ids[1]}.png").read_bytes())
    with pytest.raises(MacsError, match=r"1 missing \(e.g. vid00000000_0_10\); 1 not in the manifest \(e.g. stranger_1_2\)"):
        run(scoring_case, tmp_path)
    result = run(scoring_case, tmp_path, allow_missing=True)
    assert result["n"] == 7
    assert result["inputs"]["left_out_missing"] == [scoring_case.ids[0]]
    assert result["inputs"]["left_out_extra"] == ["stranger_1_2"]


@pytest.mark.parametrize("damage, message", [
    ("corrupt_pred", r"\.png: unreadable or corrupt image"),
    ("silent_audio", r"\.wav: silent audio"),
    ("missing_frame", r"\.jpg: ground-truth frame missing"),
    ("too_few", r"2 scorable samples; the metrics need at least 3"),
])
def test_bad_inputs_name_the_file(tmp_path, damage, message):
    import soundfile

    case = make_scoring_case(tmp_path, n=5)
    sid = case.ids[2]
    if damage == "corrupt_pred":
        (case.pred / f"{sid}.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    elif damage == "silent_audio":
        soundfile.write(case.media / "audio" / f"{sid}.wav", np.zeros(32000, np.float32), 16000)
    elif damage == "missing_frame":
        (case.media / "frames" / f"{sid}.jpg").unlink()
    else:
        for extra_sid in case.ids[2:]:
            (case.pred / f"{extra_sid}.png").unlink()
    kwargs = {"allow_missing": True} if damage == "too_few" else {}
    with pytest.raises(MacsError, match=message):
        run(case, tmp_path, **kwargs)


def test_cache_rejects_damaged_entries(tmp_path):
    cache = FeatureCache(tmp_path)
    cache.put("enc/x", "ab" * 32, np.ones(4, np.float32))
    assert cache.get("enc/x", "ab" * 32, 4) is not None
    assert cache.get("enc/x", "ab" * 32, 5) is None  # wrong dimension
    assert cache.get("enc/other", "ab" * 32, 4) is None  # another encoder id never sees it
    path = next(tmp_path.rglob("*.npy"))
    path.write_bytes(path.read_bytes()[:-3])  # truncated
    assert cache.get("enc/x", "ab" * 32, 4) is None
    cache.put("enc/x", "cd" * 32, np.array([1, np.nan, 0, 0], np.float32))
    assert cache.get("enc/x", "cd" * 32, 4) is None
    assert cache.encoders() == ["enc/x"]


def test_nan_features_name_the_file(tmp_path, scoring_case):
    import torch

    tiny = encoders.build_encoders("tiny")
    tiny["clip"].forward = lambda model, x: torch.full((x.shape[0], encoders.TINY_DIM), float("nan"))
    with pytest.raises(MacsError, match=r"pred/vid\d+_\d+_\d+\.png: clip produced NaN or infinite features"):
        score(scoring_case.manifest, scoring_case.pred, scoring_case.media, model_name="m", encoders=tiny,
              config=ScoreConfig(preset="tiny", cache_dir=str(tmp_path / "c")))


def test_constant_model_still_scored_with_undefined_z(tmp_path, scoring_case):
    same = (scoring_case.pred / f"{scoring_case.ids[0]}.png").read_bytes()
    for sid in scoring_case.ids:
        (scoring_case.pred / f"{sid}.png").write_bytes(same)
    result = run(scoring_case, tmp_path)
    assert result["metrics"]["ais_z"] is None and result["metrics"]["iis_z"] is None
    assert result["metrics"]["fid"] is not None
    assert sum("is undefined" in w for w in result["warnings"]) == 2
    assert json.loads((tmp_path / "m.json").read_text())["metrics"]["iis_z"] is None  # valid JSON, no NaN


def test_split_and_output_checked_before_encoding(tmp_path, scoring_case):
    rows = (scoring_case.manifest / "manifest.csv").read_text().replace(",eval\n", ",test\n", 3)
    (scoring_case.manifest / "manifest.csv").write_text(rows)
    result = score(scoring_case.manifest, scoring_case.pred, scoring_case.media, model_name="m", split="test",
                   config=ScoreConfig(preset="tiny", cache_dir=str(tmp_path / "c"), kid_subset_size=3))
    assert result["n"] == 3 and result["split"] == "test"
    (tmp_path / "adir").mkdir()
    with pytest.raises(MacsError, match="adir: the output is a folder"):
        score(scoring_case.manifest, scoring_case.pred, scoring_case.media, model_name="m", out=tmp_path / "adir",
              config=ScoreConfig(preset="tiny", cache_dir=str(tmp_path / "c")))
    assert not list(tmp_path.glob("adir*.csv"))


def test_published_weights_decide_comparability(tmp_path, monkeypatch):
    from macs_bench.metrics import scoring as score_module

    tiny = encoders.build_encoders("tiny")
    assert score_module.published_weights(tiny) is False
    monkeypatch.setattr(encoders, "published_hash", lambda name: tiny[name].weights)
    assert score_module.published_weights(tiny) is True
