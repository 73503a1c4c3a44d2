"""The front door and the typed result: ScoreResult round-trips, read_manifest and the leaderboard as DataFrames,
and ``import macs_bench`` stays torch-free."""

import csv
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from macs_bench.errors import MacsError
from macs_bench.results import ScoreResult, per_sample_frame


def _record(**changes):
    record = {"model": "m", "dataset": "synthetic", "fold": 0, "split": None, "n": 3,
              "metrics": {"fid": 1.5, "clip_fid": 2.0, "kid": 0.01, "kid_std": 0.0, "ais": 0.2, "ais_z": None,
                          "iis": 0.9, "iis_z": 0.1},
              "directions": {"fid": "lower"}, "metrics_selected": ["paper"], "metric_version": "macs-metrics-v1",
              "encoders": {"clip": {"id": "c", "weights": "tiny-random:0"}}, "comparable_with_paper": False,
              "config": {"preset": "tiny"}, "warnings": ["w"]}
    record.update(changes)
    return record


def test_score_result_round_trips_through_json_and_files(tmp_path):
    table = per_sample_frame(["a", "b", "c"], {"ais": np.array([0.1, np.nan, 0.3]), "iis": np.array([1.0, 0.5, 0.25]),
                                               "pred_sha256": ["x" * 64, "y" * 64, "0" * 64]})
    result = ScoreResult.from_dict(_record())
    result.per_sample = table
    text = result.to_json()
    assert list(json.loads(text)) == list(_record())  # the file's key order is kept
    again = ScoreResult.from_json(text)
    assert again.to_json() == text and again.metrics == result.metrics and again.fold == 0
    result.save(tmp_path / "r.json")
    loaded = ScoreResult.from_json(tmp_path / "r.json")
    assert loaded.to_json() == text and loaded.source == str(tmp_path / "r.json")
    pd.testing.assert_frame_equal(loaded.per_sample, table, check_dtype=False)
    assert loaded.per_sample.loc["c", "pred_sha256"] == "0" * 64  # hashes stay text
    assert (tmp_path / "r.per_sample.csv").read_text().splitlines()[2] == "b,,0.5," + "y" * 64
    assert loaded["n"] == 3 and loaded.signature == result.signature


@pytest.mark.parametrize("change, problem", [
    ({"fold": "0"}, "'fold' must be an integer or null"),
    ({"n": -1}, "'n' must be a non-negative integer"),
    ({"metrics": {"fid": 1.0}}, "no metric 'clip_fid'"),
    ({"comparable_with_paper": "no"}, "'comparable_with_paper' must be true or false"),
])
def test_score_result_refuses_a_bad_record_in_one_line(change, problem):
    with pytest.raises(MacsError, match=f"^src: not a macs score result \\({problem}\\)$"):
        ScoreResult.from_dict(_record(**change), "src")


def test_read_manifest_is_a_dataframe_of_the_csv(tmp_path):
    from macs_bench import read_manifest
    from macs_bench.world.synthetic import write_synthetic

    synthetic = write_synthetic(tmp_path / "syn", n_clips=6, seconds=0.1, image_size=16)
    frame = read_manifest(synthetic.manifest)
    with open(synthetic.manifest / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(frame.index) == [r["sample_id"] for r in rows]
    assert [";".join(v) for v in frame["labels"]] == [r["labels"] for r in rows]
    assert list(frame["fold"]) == [int(r["fold"]) for r in rows]


def test_leaderboard_frame_matches_its_json():
    from macs_bench.boards import board_dict, paper_leaderboard

    board = paper_leaderboard(1)
    frame = board.to_frame()
    data = board_dict(board)
    assert list(frame.index) == [r["name"] for r in data["rows"]]
    assert list(frame["fid"]) == [r["mean"]["fid"] for r in data["rows"]]
    assert list(frame["iis_z_mark"]) == [r["marks"].get("iis_z", "") for r in data["rows"]]


def test_front_door_is_lazy_and_torch_free():
    code = ("import sys, macs_bench; assert 'torch' not in sys.modules; "
            "from macs_bench import ScoreResult, read_manifest, leaderboard, build, fetch; "
            "assert 'torch' not in sys.modules, 'front door pulled torch'; "
            "from macs_bench import score, score_folders; import macs_bench.metrics.scoring as s; "
            "assert score is s.score and score_folders is s.score_folders; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
