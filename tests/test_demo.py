"""The README's main job in its shortened form: every stage runs offline, the outputs are real files, and the
trained pipeline draws the sounds (coverage and IIS-z well above the control rows)."""

import json

import pytest
from PIL import Image

from macs_model.demo import CONTROLS, MODELS, NOTICE, ROWS, DemoPlan, run_demo, scope_note, stage1_notes

# Measured on the quick run in the first (4-class) world: MACS-world coverage 0.944 vs noise 0.583, IIS-z 1.83 vs
# shuffled -0.05; an untrained adapter (generator_steps=1) failed both. On the harder world the quick run gets
# coverage 0.340 vs noise 0.310, so the learning test is an expected failure until the world's SD base is mended.
MIN_COVERAGE_GAP = 0.15
MIN_IIS_Z_GAP = 0.8


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """One quick demo run shared by the tests below: its folder, summary and log lines."""
    out = tmp_path_factory.mktemp("quick") / "demo"
    lines: list[str] = []
    return out, run_demo(out, plan=DemoPlan.quick(), progress=False, log=lines.append), lines


@pytest.mark.slow
def test_quick_demo_learns(quick):
    out, summary, _ = quick
    # learning: MACS-world's images show their own clips' sound classes, beyond the same images on the wrong
    # clips (the shuffled control; on 12 test clips the noise and colour-only rows' coverage swings with
    # chance: 0.31 and 0.40 here, chance 0.25); the paired test of learning is the full demo's
    coverage, metrics = summary["coverage"], summary["metrics"]
    assert coverage["MACS-world"]["coverage"] > coverage["shuffled"]["coverage"] + MIN_COVERAGE_GAP
    assert metrics["MACS-world"]["iis_z"] > metrics["shuffled"]["iis_z"] + MIN_IIS_Z_GAP


@pytest.mark.slow
def test_quick_demo_runs_end_to_end_and_reruns_without_redoing_work(quick):
    out, summary, lines = quick
    board = json.loads((out / "leaderboard" / "leaderboard.json").read_text())
    assert sorted(row["name"] for row in board["rows"]) == sorted(ROWS)
    assert all(row["folds"] == [0] for row in board["rows"])
    kinds = {row["name"]: row["row"]["kind"] for row in board["rows"]}
    assert kinds == {name: "control" if name in CONTROLS else "model" for name in ROWS}
    markdown = (out / "leaderboard" / "leaderboard.md").read_text()
    assert "**" not in next(line for line in markdown.splitlines() if line.startswith("| oracle"))
    assert NOTICE in markdown and "MACS-world" in markdown and "coverage" in markdown
    for model in ROWS:
        result = json.loads((out / "results" / f"{model}-fold0.json").read_text())
        assert result["model"] == model and result["fold"] == 0 and not result["comparable_with_paper"]
        assert all(isinstance(result["metrics"][k], float) for k in ("fid", "kid", "ais", "iis"))
        assert len(sorted((out / "pred" / model).glob("*.png"))) == result["n"] >= 3

    coverage, metrics = summary["coverage"], summary["metrics"]
    assert coverage["oracle"]["coverage"] > 0.95
    assert abs(metrics["shuffled"]["ais_z"]) < 0.5
    assert any("orders oracle above shuffled and noise" in line for line in summary["metric_checks"])
    # issue 19's acceptance: compare on two demo rows gives a difference interval and a p-value
    import macs_bench

    c = macs_bench.compare([out / "results" / "MACS-world-fold0.json", out / "results" / "noise-fold0.json"],
                           metrics=["iis", "fid"], rounds=100)
    for d in c.differences:
        assert d.low <= d.value <= d.high and 0 < d.p <= d.p_adjusted <= 1
    assert "p (Holm)" in c.table()

    with Image.open(out / "leaderboard" / "radar.png") as radar:
        assert radar.format == "PNG" and radar.size == (800 + 320, 800)  # legend beside the chart
    with Image.open(out / "leaderboard" / "grid.png") as grid:
        assert grid.format == "PNG" and grid.size[0] > grid.size[1] / 10
    assert summary["notice"] == NOTICE and any("stage 1" in line for line in lines)
    # issue 21 item 5: stage 1 runs the paper's ramp, and the board says where the recipe deviates
    assert json.loads((out / "separator" / "config.json").read_text())["train_config"]["ramp"] is True
    assert stage1_notes(DemoPlan.quick()) in markdown and scope_note(DemoPlan.quick()) in markdown
    assert (summary["separation"]["iis"]["a"], summary["separation"]["iis"]["b"]) == MODELS
    assert (out / "leaderboard" / "separation.txt").read_text().startswith("2 models on the same 12 samples")

    mtimes = {p: p.stat().st_mtime_ns for p in (out / "pred").rglob("*.png") if p.parent.name in MODELS}
    again = run_demo(out, plan=DemoPlan.quick(), progress=False, log=lines.append)
    assert {p: p.stat().st_mtime_ns for p in (out / "pred").rglob("*.png") if p.parent.name in MODELS} == mtimes
    assert again["total_seconds"] < summary["total_seconds"]
    assert again["coverage"] == summary["coverage"]


def test_stage1_note_names_the_ramp_and_each_deviation_from_the_paper():
    note = stage1_notes(DemoPlan())
    assert "loss ramp" in note and "13 epochs of 96" in note  # 96 clips / batch 8 = 12 steps an epoch, 150 steps
    for deviation in ("grad_accum 1 (paper 2)", "lr 0.003 (paper 0.001)", "mixed_precision no (paper fp16)",
                      "base_width 8 (paper 64)", "clip_seconds 2.0 (paper 8.0)"):
        assert deviation in note
    assert "ramp" not in note.split("Deviations")[1]  # the ramp is the paper's, so it is no deviation


def test_a_demo_folder_refuses_another_plan_before_writing(tmp_path):
    from macs_bench.errors import MacsError

    out = tmp_path / "demo"
    out.mkdir()
    (out / "plan.json").write_text(json.dumps({"clips": 80}))
    with pytest.raises(MacsError, match="holds a demo run with another plan"):
        run_demo(out, plan=DemoPlan.quick(), progress=False, log=lambda _: None)
    assert sorted(p.name for p in out.iterdir()) == ["plan.json"]


def test_metric_checks_name_a_metric_that_cannot_tell_the_oracle_from_a_control():
    from macs_model.demo import metric_checks

    oracle = {"fid": 1.0, "clip_fid": 0.2, "kid": 0.0, "ais": 0.9, "ais_z": 2.0, "iis": 0.9, "iis_z": 2.0}
    shuffled = {"fid": 2.0, "clip_fid": 0.5, "kid": 0.1, "ais": 0.1, "ais_z": 0.01, "iis": 0.2, "iis_z": -0.02}
    noise = {"fid": 10.0, "clip_fid": 9.0, "kid": 1.0, "ais": 0.2, "ais_z": 0.1, "iis": 0.95, "iis_z": 0.3}
    macs = {"fid": 2.0 + 1e-12, "clip_fid": 0.5, "kid": 0.1}
    lines = metric_checks({"oracle": oracle, "shuffled": shuffled, "noise": noise, "MACS-world": macs})
    assert lines[0] == "FID: orders oracle above shuffled and noise"  # lower is better
    assert "IIS: CANNOT TELL the oracle from noise" in lines
    assert sum("orders oracle above" in line for line in lines) == 6
    assert any(line.startswith("FID, CLIP-FID, KID: the shuffled row equals MACS-world") for line in lines)
    assert "IIS-z of the shuffled control: -0.020 (expected near 0)" in lines
