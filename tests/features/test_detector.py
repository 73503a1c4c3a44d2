"""An independent open_clip detector for per-source coverage: its features and text tower decide coverage,
the CLIP of AIS/IIS is left as it was, and offline published weights are one clear line."""

import csv

import numpy as np
import pytest
import torch

from macs_bench.errors import MacsError
from macs_bench.features.detector import open_clip_detector
from macs_bench.metrics.coverage import class_text_embeddings, source_coverage
from macs_bench.scoring import ScoreConfig, score


@pytest.mark.slow
def test_coverage_follows_the_chosen_detector(tmp_path, scoring_case):
    config = dict(preset="tiny", kid_subset_size=4, metrics="coverage")
    plain = score(scoring_case.manifest, scoring_case.pred, scoring_case.media, model_name="m",
                  config=ScoreConfig(cache_dir=str(tmp_path / "c"), **config))
    other = score(scoring_case.manifest, scoring_case.pred, scoring_case.media, model_name="m",
                  config=ScoreConfig(cache_dir=str(tmp_path / "c"), coverage_detector="ViT-S-32/unused", **config))
    assert other["encoders"]["detector"]["id"].startswith("detector/random:0/open_clip-ViT-S-32")
    assert "independent open_clip detector" in other["coverage"]["detector"]
    assert {k: other.metrics[k] for k in ("fid", "clip_fid", "iis")} == {k: plain.metrics[k] for k in
                                                                          ("fid", "clip_fid", "iis")}
    detector = open_clip_detector("ViT-S-32/unused", "tiny")  # the same seed: the same random network
    images = torch.stack([detector.preprocess(scoring_case.pred / f"{sid}.png") for sid in scoring_case.ids])
    gen = detector.encode(list(images), torch.device("cpu"))
    rows = {r["sample_id"]: r["labels"].split(";") for r in csv.DictReader(open(scoring_case.manifest /
                                                                                "manifest.csv"))}
    classes = sorted({x for labels in rows.values() for x in labels})
    labels = [[classes.index(x) for x in rows[sid]] for sid in scoring_case.ids]
    expected = source_coverage(gen, class_text_embeddings(detector.text, classes), labels).mean
    assert other.metrics["source_coverage"] == pytest.approx(expected, abs=1e-6)
    assert np.isfinite(other.metrics["source_coverage_gt"])


def test_detector_errors_are_one_line(monkeypatch, tmp_path, scoring_case):
    with pytest.raises(MacsError, match="give ARCH/PRETRAINED"):
        open_clip_detector("ViT-S-32")
    with pytest.raises(MacsError, match="open_clip has no model 'Nope'"):
        open_clip_detector("Nope/x")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(MacsError, match="cannot load its weights") as err:
        open_clip_detector("ViT-S-32/no_such_tag")
    assert "\n" not in str(err.value)
    with pytest.raises(MacsError, match="add coverage to the metrics"):
        score(scoring_case.manifest, scoring_case.pred, scoring_case.media, model_name="m",
              config=ScoreConfig(preset="tiny", coverage_detector="ViT-S-32/x", cache_dir=str(tmp_path / "c")))
