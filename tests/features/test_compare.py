"""``macs_bench.compare`` / ``macs-bench compare`` on two scored models: the same videos, refusals, the CLI."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import macs_bench
from macs_bench.errors import MacsError
from macs_bench.metrics import frechet_distance
from macs_bench.metrics.scoring import ScoreConfig, score
from scoring_helpers import make_scoring_case

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """Two models on 16 samples of 8 videos (two clips each): b's images are a's darkened."""
    root = tmp_path_factory.mktemp("compare")
    case = make_scoring_case(root, n=16, folds=1)
    path = case.manifest / "manifest.csv"
    rows = list(csv.reader(open(path)))
    for i, row in enumerate(rows[1:]):
        row[1] = f"video{i // 2:06d}"
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    dark = root / "dark"
    dark.mkdir()
    for p in case.pred.iterdir():
        Image.fromarray((np.asarray(Image.open(p)) * 0.5).astype(np.uint8)).save(dark / p.name)
    config = ScoreConfig(preset="tiny", cache_dir=str(root / "cache"), kid_subset_size=4, metrics="cmmd")
    a = score(case.manifest, case.pred, case.media, model_name="a", out=root / "a.json", config=config)
    b = score(case.manifest, dark, case.media, model_name="b", out=root / "b.json", config=config)
    return root, case, a, b, config


def test_differences_are_the_metrics_differences_on_the_same_videos(scored):
    root, _, a, b, _ = scored
    c = macs_bench.compare([root / "a.json", root / "b.json"], rounds=40, seed=0)
    assert c.models == ["a", "b"] and c.n == 16 and c.units == 8 and c.unit == "video"
    for m in ("iis", "fid", "kid", "cmmd", "cmmd_unbiased"):
        assert c.get(m, "a", "b").value == pytest.approx(a.metrics[m] - b.metrics[m], rel=1e-5, abs=1e-9), m
    iis = c.get("iis", "a", "b")
    per = a.per_sample["iis"] - b.per_sample["iis"]
    assert iis.value == pytest.approx(per.mean()) and iis.low <= iis.value <= iis.high
    assert 0 < iis.p <= 1 and iis.p <= iis.p_adjusted <= 1
    features = np.load(root / "a.features.npz")
    assert frechet_distance(features["gen_inception"], features["gt_inception"]) == pytest.approx(a.metrics["fid"])
    assert c.to_dict()["differences"][0]["metric"] == "ais"


def test_other_sample_sets_are_refused_or_intersected(scored, tmp_path):
    root, case, _, _, config = scored
    partial = tmp_path / "partial"
    partial.mkdir()
    for p in sorted(case.pred.iterdir())[:-2]:
        (partial / p.name).write_bytes(p.read_bytes())
    score(case.manifest, partial, case.media, model_name="c", out=tmp_path / "c.json",
          config=ScoreConfig(**{**config.__dict__, "allow_missing": True}))
    with pytest.raises(MacsError, match="scored on different samples .*pass --intersect"):
        macs_bench.compare([root / "a.json", tmp_path / "c.json"], rounds=8)
    c = macs_bench.compare([root / "a.json", tmp_path / "c.json"], rounds=8, intersect=True, metrics=["fid"])
    assert c.n == 14 and c.left_out == {"a": 2, "c": 0} and c.metrics == ["fid"]


def test_a_changed_features_file_is_refused(scored, tmp_path):
    root = scored[0]
    for name in ("a.json", "a.per_sample.csv", "a.features.npz", "b.json", "b.per_sample.csv"):
        (tmp_path / name).write_bytes((root / name).read_bytes())
    np.savez(tmp_path / "b.features.npz", sample_ids=np.array(["x"]))
    with pytest.raises(MacsError, match="b.features.npz: sha256 differs"):
        macs_bench.compare([tmp_path / "a.json", tmp_path / "b.json"], rounds=8, metrics=["fid"])
    assert macs_bench.compare([tmp_path / "a.json", tmp_path / "b.json"], rounds=8, metrics=["iis"]).n == 16


def test_compare_command_prints_intervals_and_p_values(scored):
    root = scored[0]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-m", "macs_bench", "compare", str(root / "a.json"), str(root / "b.json"),
                          "--rounds", "20", "--metrics", "iis,fid", "--out", str(root / "cmp.json")],
                         capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "95% interval" in run.stdout and "Holm" in run.stdout
    line = next(x for x in run.stdout.splitlines() if x.startswith("fid"))
    assert "[" in line and "]" in line
    data = json.loads((root / "cmp.json").read_text())
    assert {d["metric"] for d in data["differences"]} == {"iis", "fid"}
    alone = subprocess.run([sys.executable, "-m", "macs_bench", "compare", str(root / "a.json")],
                           capture_output=True, text=True, env=env, timeout=120)
    assert alone.returncode == 2 and alone.stderr.count("\n") == 1 and "at least two models" in alone.stderr


def test_score_intervals_resample_videos_and_record_the_unit(scored, tmp_path):
    _, case, _, _, config = scored
    r = score(case.manifest, case.pred, case.media, model_name="a", out=tmp_path / "r.json",
              config=ScoreConfig(**{**config.__dict__, "bootstrap": 12}))
    ci = r["intervals"]
    assert ci["unit"].startswith("video") and ci["n_units"] == 8 and ci["metrics"]["fid"]["method"] == "set"
    assert ci["metrics"]["iis"]["method"] == "mean"
    assert ci["metrics"]["fid"]["low"] <= r.metrics["fid"] <= ci["metrics"]["fid"]["high"]
    assert list(r.per_sample["video_id"][:4]) == ["video000000", "video000000", "video000001", "video000001"]


def test_every_metric_says_what_it_is_and_the_signature_holds_the_kid_seed(scored):
    _, _, a, _, _ = scored
    defs = a["definitions"]
    assert set(defs) == set(a.metrics)
    assert defs["kid"]["seed"] == 0 and defs["kid"]["subset_size"] == 4 and defs["kid"]["scale"] == "raw"
    assert defs["cmmd"]["scale"] == "x1000" and "biased" in defs["cmmd"]["estimator"]
    assert defs["cmmd_unbiased"]["estimator"].startswith("unbiased")
    assert defs["fid"]["features"][0]["id"] == a["encoders"]["inception"]["id"]
    assert defs["fid"]["features"][0]["input"].startswith("32 x 32")
    data = a.to_dict()
    other_seed = macs_bench.ScoreResult.from_dict({**data, "config": {**data["config"], "kid_seed": 1}})
    other_version = macs_bench.ScoreResult.from_dict({**data, "extra_metric_versions": {"cmmd": "cmmd-v0"}})
    assert len({a.signature, other_seed.signature, other_version.signature}) == 3
    assert any(w.startswith("cmmd: N = 16 < 1000") and "cmmd_unbiased" in w for w in a.warnings)


def test_too_few_interval_rounds_fail_before_encoding(scored, tmp_path):
    _, case, _, _, config = scored
    with pytest.raises(MacsError, match="at least 4, got 2"):
        score(case.manifest, case.pred, case.media, model_name="a", out=tmp_path / "r.json",
              config=ScoreConfig(**{**config.__dict__, "bootstrap": 2, "cache_dir": str(tmp_path / "c")}))
    assert not (tmp_path / "c").exists()


def test_the_table_prints_long_model_names_whole(scored):
    from dataclasses import replace

    root = scored[0]
    c = macs_bench.compare([root / "a.json", root / "b.json"], rounds=8, seed=0, metrics=["iis", "fid"])
    c.differences = [replace(d, a="MACS-world", b="no-separation-world-with-a-longer-name") for d in c.differences]
    lines = c.table().splitlines()
    rows = [line for line in lines[2:] if line.startswith(("iis", "fid"))]
    assert len(rows) == 2 and all("MACS-world - no-separation-world-with-a-longer-name " in r for r in rows)
    start = lines[1].index("difference")  # every value sits in the difference column
    assert all(r[start - 2:start + len("difference")].strip() for r in rows)
