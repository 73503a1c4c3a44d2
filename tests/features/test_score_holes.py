"""The holes issue #13 found in the scoring engine, each pinned by a test that failed before its fix."""

import csv
import json
import warnings

import numpy as np
import pytest
from PIL import Image

from macs_bench.errors import MacsError
from macs_bench.features import encoders
from macs_bench.features.inputs import load_image
from macs_bench.metrics import paired_scores
from macs_bench.metrics.scoring import ScoreConfig, compute_metrics, resolve_device, score


def run(case, tmp_path, model="m", out=True, encoders_=None, **kw):
    config = ScoreConfig(**{"preset": "tiny", "cache_dir": str(tmp_path / "cache"), "kid_subset_size": 4, **kw})
    return score(case.manifest, case.pred, case.media, model_name=model, config=config, encoders=encoders_,
                 out=tmp_path / f"{model}.json" if out is True else out)


def test_duplicate_sample_id_in_the_manifest_is_refused(tmp_path, scoring_case):
    manifest = scoring_case.manifest / "manifest.csv"
    lines = manifest.read_text().splitlines(keepends=True)
    manifest.write_text("".join([*lines, lines[3]]))
    with pytest.raises(MacsError, match=rf"manifest.csv: sample_id {scoring_case.ids[2]} appears 2 times"):
        run(scoring_case, tmp_path)


@pytest.mark.parametrize("target", ["manifest", "stats", "pred", "media"])
def test_out_may_not_name_an_input(tmp_path, scoring_case, target):
    (scoring_case.manifest / "stats.json").write_text("{}")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    out = {"manifest": scoring_case.manifest / "manifest.csv", "stats": scoring_case.manifest / "stats.json",
           "pred": scoring_case.pred / "r.json", "media": scoring_case.media / "frames" / "r.json"}[target]
    with pytest.raises(MacsError, match="the output .* input"):
        run(scoring_case, tmp_path, out=out)
    assert {p: p.read_bytes() for p in before} == before


def test_out_beside_the_manifest_is_fine(tmp_path, scoring_case):
    assert run(scoring_case, tmp_path, out=scoring_case.manifest / "result.json")["n"] == 8


def test_non_cuda_accelerator_is_one_error_not_a_traceback():
    for name in ("mps", "xpu", "meta"):
        with pytest.raises(MacsError, match=rf"device {name}"):
            resolve_device(name)
    assert resolve_device("cpu").type == "cpu"


def test_kid_seed_checked_before_any_encoding(tmp_path, scoring_case):
    with pytest.raises(MacsError, match=r"KID seed must be in \[0, 2\*\*32\)"):
        run(scoring_case, tmp_path, kid_seed=2**32)
    assert not (tmp_path / "cache").exists()


def test_huge_features_refuse_kid_with_a_warning():
    """--preset random gives Inception features of 1e9-1e11: the cubic kernel's terms (1e60) cancel in float64."""
    rng = np.random.default_rng(0)
    gen, gt = rng.normal(size=(20, 16)), rng.normal(size=(20, 16)) + 0.5
    clip_gen, clip_gt, audio = rng.normal(size=(20, 8)), rng.normal(size=(20, 8)), rng.normal(size=(20, 8))
    config = ScoreConfig(kid_subset_size=10)
    sane, _, notes = compute_metrics(gen, gt, clip_gen, clip_gt, audio, config)
    assert sane["kid"] is not None and not notes
    huge, _, notes = compute_metrics(gen * 1e10 + 3e10, gt * 1e10 + 3e10, clip_gen, clip_gt, audio, config)
    assert huge["kid"] is None and huge["kid_std"] is None
    assert any("KID refused" in n for n in notes)
    # the Frechet distance is translation invariant and computed on centred features: it stays exact
    assert huge["fid"] == pytest.approx(sane["fid"] * 1e20, rel=1e-6)
    assert any("Inception features reach" in n for n in notes)


def test_allow_missing_run_is_not_comparable_with_the_paper(tmp_path, scoring_case, monkeypatch):
    tiny = encoders.build_encoders("tiny")
    monkeypatch.setattr(encoders, "published_hash", lambda name: tiny[name].weights)
    assert run(scoring_case, tmp_path, encoders_=tiny)["comparable_with_paper"] is True
    (scoring_case.pred / f"{scoring_case.ids[0]}.png").unlink()
    result = run(scoring_case, tmp_path, encoders_=tiny, allow_missing=True)
    assert result["comparable_with_paper"] is False
    assert any("scored 7 of 8 samples" in w for w in result["warnings"])


def test_trust_on_first_use_weights_never_count_as_published(tmp_path, monkeypatch):
    from macs_bench import weights
    from macs_bench.metrics.scoring import published_weights

    monkeypatch.setenv("MACS_HOME", str(tmp_path))
    file = weights.local_path("wav2clip")
    file.parent.mkdir(parents=True)
    file.write_bytes(b"random bytes, not wav2clip")
    weights.path("wav2clip")  # records the hash on first use
    recorded = f"sha256:{weights.expected_sha256('wav2clip')}"
    tiny = encoders.build_encoders("tiny")
    tiny["wav2clip"].weights = recorded
    assert published_weights({"wav2clip": tiny["wav2clip"]}) is False


def test_tiny_inception_and_clip_are_different_networks(tmp_path, scoring_case, image_file):
    tiny = encoders.build_encoders("tiny")
    x_inc, x_clip = tiny["inception"].preprocess(image_file), tiny["clip"].preprocess(image_file)
    import torch

    a = tiny["inception"].encode([x_inc], torch.device("cpu"))
    b = tiny["clip"].encode([x_clip], torch.device("cpu"))
    assert not np.allclose(a, b)
    result = run(scoring_case, tmp_path)
    assert result["metrics"]["fid"] != pytest.approx(result["metrics"]["clip_fid"], rel=1e-3)


def test_encoders_passed_in_are_recorded_as_such(tmp_path, scoring_case):
    tiny = encoders.build_encoders("tiny")
    result = score(scoring_case.manifest, scoring_case.pred, scoring_case.media, model_name="m", encoders=tiny,
                   config=ScoreConfig(cache_dir=str(tmp_path / "c"), kid_subset_size=4))
    assert result["config"]["preset"] == "tiny"
    random_like = {k: v for k, v in tiny.items()}
    random_like["clip"] = encoders.tiny("clip", seed=1)
    random_like["clip"].weights = "sha256:" + "0" * 64
    result = score(scoring_case.manifest, scoring_case.pred, scoring_case.media, model_name="m",
                   encoders=random_like, config=ScoreConfig(cache_dir=str(tmp_path / "c"), kid_subset_size=4))
    assert result["config"]["preset"] == "custom"


def test_result_records_input_hashes_commit_and_audio_libraries(tmp_path, scoring_case):
    from macs_bench.io import sha256_file

    result = run(scoring_case, tmp_path)
    inputs = result["inputs"]
    assert len(inputs["predictions_sha256"]) == 64 and len(inputs["media_sha256"]) == 64
    rows = list(csv.DictReader(open(tmp_path / "m.per_sample.csv")))
    sid = scoring_case.ids[1]
    row = next(r for r in rows if r["sample_id"] == sid)
    assert row["pred_sha256"] == sha256_file(scoring_case.pred / f"{sid}.png")
    assert row["audio_sha256"] == sha256_file(scoring_case.media / "audio" / f"{sid}.wav")
    assert row["frame_sha256"] == sha256_file(scoring_case.media / "frames" / f"{sid}.jpg")
    libraries = result["tool"]["libraries"]
    assert libraries["torchaudio"] and libraries["soundfile"]
    assert "source_commit" in result["tool"]
    # a changed prediction changes the predictions hash
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(scoring_case.pred / f"{sid}.png")
    assert run(scoring_case, tmp_path, model="m2")["inputs"]["predictions_sha256"] != inputs["predictions_sha256"]


def test_undefined_z_is_an_empty_csv_cell(tmp_path, scoring_case):
    same = (scoring_case.pred / f"{scoring_case.ids[0]}.png").read_bytes()
    for sid in scoring_case.ids:
        (scoring_case.pred / f"{sid}.png").write_bytes(same)
    run(scoring_case, tmp_path)
    rows = list(csv.DictReader(open(tmp_path / "m.per_sample.csv")))
    assert {r["ais_z"] for r in rows} == {""} and all(r["ais"] for r in rows)
    assert json.loads((tmp_path / "m.json").read_text())["metrics"]["ais_z"] is None


def test_sixteen_bit_image_that_saturates_warns(tmp_path):
    wide = np.random.default_rng(1).integers(0, 60000, (20, 30)).astype(np.uint16)
    Image.fromarray(wide).save(tmp_path / "wide.png")
    with pytest.warns(UserWarning, match=r"wide.png: .*16-bit.*saturate"):
        load_image(tmp_path / "wide.png")
    Image.fromarray((wide // 300).astype(np.uint16)).save(tmp_path / "narrow.png")  # 0..199: nothing lost
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_image(tmp_path / "narrow.png")


def test_sixteen_bit_predictions_are_named_in_the_result_whatever_the_cache(tmp_path, scoring_case):
    sid = scoring_case.ids[3]
    wide = np.random.default_rng(2).integers(0, 60000, (48, 64)).astype(np.uint16)
    Image.fromarray(wide).save(scoring_case.pred / f"{sid}.png")
    for model in ("first", "cached"):  # the second run decodes nothing: the warning must not depend on that
        result = run(scoring_case, tmp_path, model=model)
        (warning,) = [w for w in result["warnings"] if "16- or 32-bit" in w]
        assert warning.startswith("1 predictions are") and f"{sid}.png" in warning
    assert result["encoded_now"]["gen_inception"] == 0


def test_undefined_z_option_is_checked():
    x = np.random.default_rng(0).normal(size=(5, 4))
    with pytest.raises(MacsError, match="undefined_z must be 'raise' or 'nan'"):
        paired_scores(x, x, undefined_z="nna")
