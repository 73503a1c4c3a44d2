"""The README's main job in its shortened form: every stage runs offline and the outputs are real files."""

import json

import pytest
from PIL import Image

from macs_model.demo import MODELS, NOTICE, DemoPlan, run_demo


@pytest.mark.slow
def test_quick_demo_runs_end_to_end_and_reruns_without_redoing_work(tmp_path):
    out = tmp_path / "demo"
    lines = []
    summary = run_demo(out, plan=DemoPlan.quick(), progress=False, log=lines.append)
    board = json.loads((out / "leaderboard" / "leaderboard.json").read_text())
    names = [row["name"] for row in board["rows"]]
    assert sorted(names) == sorted(MODELS)
    assert all(row["folds"] == [0] for row in board["rows"])
    markdown = (out / "leaderboard" / "leaderboard.md").read_text()
    assert NOTICE in markdown and "MACS-tiny" in markdown
    for model in MODELS:
        result = json.loads((out / "results" / f"{model}-fold0.json").read_text())
        assert result["model"] == model and result["fold"] == 0 and not result["comparable_with_paper"]
        assert all(isinstance(result["metrics"][k], float) for k in ("fid", "kid", "ais", "iis"))
        images = sorted((out / "pred" / model).glob("*.png"))
        assert len(images) == result["n"] >= 3
    with Image.open(out / "leaderboard" / "radar.png") as radar:
        assert radar.format == "PNG" and radar.size == (800, 800)
    with Image.open(out / "leaderboard" / "grid.png") as grid:
        assert grid.format == "PNG" and grid.size[0] > grid.size[1] / 10
    assert summary["notice"] == NOTICE and any("stage 1" in line for line in lines)

    mtimes = {p: p.stat().st_mtime_ns for p in (out / "pred").rglob("*.png")}
    again = run_demo(out, plan=DemoPlan.quick(), progress=False, log=lines.append)
    assert {p: p.stat().st_mtime_ns for p in (out / "pred").rglob("*.png")} == mtimes
    assert again["total_seconds"] < summary["total_seconds"]


def test_a_demo_folder_refuses_another_plan_before_writing(tmp_path):
    from macs_bench.errors import MacsError

    out = tmp_path / "demo"
    out.mkdir()
    (out / "plan.json").write_text(json.dumps({"clips": 80}))
    with pytest.raises(MacsError, match="holds a demo run with another plan"):
        run_demo(out, plan=DemoPlan.quick(), progress=False, log=lambda _: None)
    assert sorted(p.name for p in out.iterdir()) == ["plan.json"]
