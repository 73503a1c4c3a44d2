"""Behaviour kept: a tiny-preset score of the synthetic benchmark gives the numbers recorded before the scoring
code was reorganised (issue 12), for the paper's metrics on one fold and for ``--metrics all`` with a bootstrap.

The expected files were written by the pre-refactor code on the same inputs (``data/score_regression``). Issue
19 changed three things on purpose, so they are checked apart: the intervals (subsampling by video instead of
a bootstrap over rows with duplicates: ``tests/metrics/test_resample.py``), ``cmmd_unbiased`` and the small-N
CMMD warning (added), and the per-sample table's ``video_id`` column (added)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageOps

from legacy_synthetic import write_synthetic
from macs_bench.metrics.scoring import ScoreConfig, score

DATA = Path(__file__).parent / "data" / "score_regression"


def _close(got, want, where):
    if isinstance(want, dict):
        assert set(got) == set(want), where
        for key in want:
            _close(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, float):
        assert got == pytest.approx(want, rel=1e-6, abs=1e-12), where
    else:
        assert got == want, where


@pytest.mark.slow
def test_scores_match_the_numbers_recorded_before_the_refactor(tmp_path):
    synthetic = write_synthetic(tmp_path / "syn", n_clips=40, seconds=1.0, image_size=48)
    pred = tmp_path / "pred"
    pred.mkdir()
    for frame in sorted((synthetic.media / "frames").glob("*.jpg")):
        ImageOps.mirror(Image.open(frame)).save(pred / f"{frame.stem}.png")
    expected = json.loads((DATA / "expected.json").read_text())
    runs = {"paper-fold0": dict(fold=0, config=ScoreConfig(preset="tiny", cache_dir=str(tmp_path / "c"))),
            "all": dict(config=ScoreConfig(preset="tiny", cache_dir=str(tmp_path / "c"), metrics="all",
                                           bootstrap=20))}
    for name, kwargs in runs.items():
        result = score(synthetic.manifest, pred, synthetic.media, model_name="M", out=tmp_path / f"{name}.json",
                       **kwargs)
        want = expected[name]
        added = {"cmmd_unbiased"} if "cmmd" in want["metrics"] else set()
        assert set(result.metrics) == set(want["metrics"]) | added
        _close({k: result.metrics[k] for k in want["metrics"]}, want["metrics"], f"{name}.metrics")
        if want["intervals"] is None:
            assert result.provenance.get("intervals") is None
        else:
            assert set(result["intervals"]["metrics"]) == set(want["intervals"]["metrics"]) | added
        assert {k: result["inputs"][k] for k in want["inputs_sha256"]} == want["inputs_sha256"]
        assert [w for w in result.warnings if not w.startswith("cmmd:")] == want["warnings"]
        got = pd.read_csv(tmp_path / f"{name}.per_sample.csv", index_col="sample_id").drop(columns="video_id")
        old = pd.read_csv(DATA / f"{name}.per_sample.csv", index_col="sample_id")
        assert list(got.columns) == list(old.columns) and list(got.index) == list(old.index)
        numeric = [c for c in old.columns if not c.endswith("sha256")]
        np.testing.assert_allclose(got[numeric].to_numpy(float), old[numeric].to_numpy(float), rtol=1e-6)
        assert (got.drop(columns=numeric) == old.drop(columns=numeric)).all().all()
