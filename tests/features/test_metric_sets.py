"""--metrics: the paper's seven unchanged with the extras off, the extras equal to their functions, intervals."""

import csv
import json

import numpy as np
import pytest
import torch

from macs_bench.errors import MacsError
from macs_bench.features import encoders
from macs_bench.features.cache import FeatureCache
from macs_bench.features.encoders_extra import text_tower
from macs_bench.features.extract import content_hash, encode_files
from macs_bench.metric_sets import EXTRAS, parse_metrics
from macs_bench.metrics import frechet_distance
from macs_bench.metrics.cmmd import cmmd, unit_rows
from macs_bench.metrics.coverage import class_text_embeddings, source_coverage
from macs_bench.metrics.prdc import prdc
from macs_bench.scoring import ScoreConfig, score

PAPER_KEYS = ["fid", "clip_fid", "kid", "kid_std", "ais", "ais_z", "iis", "iis_z"]


def run(case, tmp_path, model, **kw):
    config = ScoreConfig(**{"preset": "tiny", "cache_dir": str(tmp_path / "cache"), "kid_subset_size": 4, **kw})
    return score(case.manifest, case.pred, case.media, model_name=model, out=tmp_path / f"{model}.json",
                 config=config)


def label_case(case):
    """Give the samples different label sets of 1-3 sources from five classes."""
    path = case.manifest / "manifest.csv"
    rows = list(csv.reader(open(path)))
    names = ["dog", "car", "rain", "speech", "bird"]
    for i, row in enumerate(rows[1:]):
        labels = [names[(i + j) % 5] for j in range(1 + i % 3)]
        row[4], row[6] = ";".join(labels), str(len(labels))
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)


def test_paper_numbers_are_byte_identical_with_the_extras_off_or_on(tmp_path, scoring_case):
    label_case(scoring_case)
    paper = run(scoring_case, tmp_path, "paper")
    every = run(scoring_case, tmp_path, "every", metrics="all")
    assert list(paper["metrics"]) == PAPER_KEYS
    assert json.dumps([paper["metrics"][k] for k in PAPER_KEYS]) == json.dumps([every["metrics"][k] for k in PAPER_KEYS])
    assert set(every["metrics"]) - set(PAPER_KEYS) == {k for s in EXTRAS.values() for k in s.keys}
    # the extras off encode nothing beyond the paper's five jobs
    assert set(paper["encoded_now"]) == {"gen_inception", "gt_inception", "gen_clip", "gt_clip", "audio_wav2clip"}
    assert every["encoded_now"]["gen_dinov2"] == 8 and every["encoded_now"]["gen_inception"] == 0
    rows_a = list(csv.DictReader(open(tmp_path / "paper.per_sample.csv")))
    rows_b = list(csv.DictReader(open(tmp_path / "every.per_sample.csv")))
    assert [{k: r[k] for k in rows_a[0]} for r in rows_b] == rows_a


def test_extras_equal_their_functions_on_independently_encoded_features(tmp_path, scoring_case):
    label_case(scoring_case)
    result = run(scoring_case, tmp_path, "m", metrics="coverage,cmmd,fd_dinov2,prdc_dinov2")
    tiny = encoders.build_encoders("tiny", names=["clip", "clip_l336", "dinov2"])
    cache = FeatureCache(tmp_path / "other")

    def feats(name, folder, suffix):
        paths = [folder / f"{sid}{suffix}" for sid in scoring_case.ids]
        return encode_files(paths, [content_hash(p) for p in paths], tiny[name], cache, device="cpu")[0]

    gen = {n: feats(n, scoring_case.pred, ".png") for n in tiny}
    gt = {n: feats(n, scoring_case.media / "frames", ".jpg") for n in tiny}
    m = result["metrics"]
    assert m["cmmd"] == pytest.approx(cmmd(unit_rows(gt["clip_l336"]), unit_rows(gen["clip_l336"])), rel=1e-12)
    assert m["fd_dinov2"] == pytest.approx(frechet_distance(gen["dinov2"], gt["dinov2"]), rel=1e-12)
    expected = prdc(gt["dinov2"], gen["dinov2"])
    assert {k: m[f"{k}_dinov2"] for k in expected} == pytest.approx(expected, abs=1e-12)
    classes = ["bird", "car", "dog", "rain", "speech"]
    label_sets = [[classes.index(x) for x in row.split(";")] for row in
                  [r["labels"] for r in csv.DictReader(open(scoring_case.manifest / "manifest.csv"))]]
    class_emb = class_text_embeddings(text_tower(tiny["clip"]), classes)
    assert m["source_coverage"] == pytest.approx(source_coverage(gen["clip"], class_emb, label_sets).mean)
    assert m["source_coverage_gt"] == pytest.approx(source_coverage(gt["clip"], class_emb, label_sets).mean)
    by = result["breakdown"]["source_coverage_by_sources"]
    assert sorted(by) == ["1", "2", "3"] and sum(v["n"] for v in by.values()) == 8
    assert result["coverage"]["n_classes"] == 5 and result["directions"]["cmmd"] == "lower"
    assert result["coverage"]["chance_level"] == pytest.approx(np.mean([len(y) / 5 for y in label_sets]))
    assert all(v["chance"] == pytest.approx(int(k) / 5) for k, v in by.items())
    assert set(result["extra_metric_versions"]) == {"coverage", "cmmd", "fd_dinov2", "prdc_dinov2"}
    assert any("fd_dinov2: N = 8 is not above the feature dimension" in w for w in result["warnings"])


def test_metric_names_are_checked_before_encoding(tmp_path, scoring_case):
    assert parse_metrics("paper") == () and parse_metrics("all") == tuple(EXTRAS)
    assert parse_metrics("cmmd, paper,cmmd") == ("cmmd",)
    assert parse_metrics(("paper", "cmmd", "coverage")) == ("cmmd", "coverage") == parse_metrics(["cmmd", "coverage"])
    assert parse_metrics(["all"]) == tuple(EXTRAS)
    with pytest.raises(MacsError, match="metrics: unknown 'fdd'"):
        parse_metrics(["cmmd", "fdd"])
    with pytest.raises(MacsError, match="metrics: unknown 'fdd'"):
        run(scoring_case, tmp_path, "m", metrics="cmmd,fdd")
    assert not (tmp_path / "cache").exists()


def test_bootstrap_intervals_are_seeded(tmp_path, scoring_case):
    a = run(scoring_case, tmp_path, "a", bootstrap=20, bootstrap_seed=3, metrics="prdc_inception")
    b = run(scoring_case, tmp_path, "b", bootstrap=20, bootstrap_seed=3, metrics="prdc_inception")
    c = run(scoring_case, tmp_path, "c", bootstrap=20, bootstrap_seed=4, metrics="prdc_inception")
    assert a["intervals"] == b["intervals"] and a["intervals"]["metrics"] != c["intervals"]["metrics"]
    ci = a["intervals"]["metrics"]
    assert set(ci) == set(a["metrics"]) - {"kid_std"}
    ais = ci["ais"]
    assert ais["low"] <= a["metrics"]["ais"] <= ais["high"] and ais["rounds"] == 20
    per_sample = np.array([float(r["ais"]) for r in csv.DictReader(open(tmp_path / "a.per_sample.csv"))])
    rng = np.random.default_rng(3)  # the same draws, restated
    means = [per_sample[rng.integers(0, 8, size=8)].mean() for _ in range(20)]
    assert ais["low"] == pytest.approx(np.quantile(means, 0.025), abs=1e-7)


def test_text_tower_of_real_clip_is_its_encode_text():
    import open_clip

    clip = encoders.clip(None, seed=0)
    got = text_tower(clip)(["a photo of a dog.", "rain"])
    with torch.no_grad():
        expected = clip.model.encode_text(open_clip.get_tokenizer("ViT-B-32")(["a photo of a dog.", "rain"]))
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-5, atol=1e-6)
    assert got.shape == (2, 512)


def test_encoders_passed_in_must_cover_the_extras(tmp_path, scoring_case):
    tiny = encoders.build_encoders("tiny")
    with pytest.raises(MacsError, match="metrics cmmd: need the clip_l336 encoder"):
        score(scoring_case.manifest, scoring_case.pred, scoring_case.media, model_name="m", encoders=tiny,
              config=ScoreConfig(cache_dir=str(tmp_path / "c"), metrics="cmmd"))


def test_another_text_tower_can_be_plugged_in(tmp_path, scoring_case):
    label_case(scoring_case)
    tiny = encoders.build_encoders("tiny")

    def tower(sentences):  # e.g. a miniature world's own learned text encoder
        return np.array([[len(s) % 7, s.count("o"), s.count("r") + 1.0] + [0.0] * (encoders.TINY_DIM - 3)
                         for s in sentences])

    tiny["clip"].text = tower
    result = score(scoring_case.manifest, scoring_case.pred, scoring_case.media, model_name="m", encoders=tiny,
                   config=ScoreConfig(cache_dir=str(tmp_path / "c"), kid_subset_size=4, metrics="coverage"))
    cache = FeatureCache(tmp_path / "other")
    paths = [scoring_case.pred / f"{sid}.png" for sid in scoring_case.ids]
    gen = encode_files(paths, [content_hash(p) for p in paths], tiny["clip"], cache, device="cpu")[0]
    classes = ["bird", "car", "dog", "rain", "speech"]
    label_sets = [[classes.index(x) for x in r["labels"].split(";")]
                  for r in csv.DictReader(open(scoring_case.manifest / "manifest.csv"))]
    expected = source_coverage(gen, class_text_embeddings(tower, classes), label_sets).mean
    assert result["metrics"]["source_coverage"] == pytest.approx(expected, abs=1e-12)
    assert "caller's text tower" in result["coverage"]["detector"]
    default = encoders.build_encoders("tiny")["clip"]
    assert expected != source_coverage(gen, class_text_embeddings(text_tower(default), classes), label_sets).mean
