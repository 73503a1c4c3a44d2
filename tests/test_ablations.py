"""``macs-model ablations``: the ablation flags change the computation they name, the plan and the argument checks
of both paths, and (slow) the command on a tiny world fold writing its table with paired intervals."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import pytest
import torch
from typer.testing import CliRunner

from macs_bench.errors import MacsError
from macs_model.ablation_plan import REFERENCE, ROW_NAMES, SEPARATORS, AblationPlan
from macs_model.ablations import check_real
from macs_model.separation.alignment import ClapAlignment
from macs_model.separation.clap import TinyClap
from macs_model.separation.training import make_mixture_of_mixtures

M = 6


def _batch(seed=0, samples=16000):
    g = torch.Generator().manual_seed(seed)
    clips = 0.3 * torch.randn(4, samples, generator=g)
    mixture, mix1, mix2 = make_mixture_of_mixtures(clips)
    labels = [["Hum"], ["Rain", "Clicks"], ["Whistle"], ["Hum", "Rain"]]
    return {"audio": clips, "labels": labels, "mixture": mixture, "mix1": mix1, "mix2": mix2}


def _grad(alignment, sources, batch, pick):
    sources = sources.clone().requires_grad_(True)
    l_cl, l_rank = alignment(sources, batch)
    pick(l_cl, l_rank).backward()
    return l_cl.detach(), l_rank.detach(), sources.grad


@pytest.mark.parametrize("flag, kept", [("contrastive", 1), ("ranking", 0)])
def test_an_ablated_loss_is_zero_and_its_gradient_is_gone(flag, kept):
    """no-CL (no-RL): the contrastive (ranking) term is exactly 0 and the gradient that reaches the separator is
    that of the other term of the full alignment alone, which differs from the full gradient."""
    torch.manual_seed(0)
    clap = TinyClap()
    sources = 0.2 * torch.randn(4, M, 16000, generator=torch.Generator().manual_seed(1))
    batch = _batch()
    full_cl, full_rank, full = _grad(ClapAlignment(clap, M, prompts="interleaved"), sources, batch,
                                     lambda a, b: a + b)
    _, _, other_only = _grad(ClapAlignment(clap, M, prompts="interleaved"), sources, batch,
                             lambda a, b: (a, b)[kept])
    ablated = ClapAlignment(clap, M, prompts="interleaved", **{flag: False})
    l_cl, l_rank, grad = _grad(ablated, sources, batch, lambda a, b: a + b)
    off = (l_cl, l_rank)[1 - kept]
    assert off.item() == 0.0 and (full_cl, full_rank)[1 - kept].item() != 0.0
    torch.testing.assert_close(grad, other_only)
    assert not torch.allclose(grad, full)


def test_plan_rows_separators_and_jobs():
    plan = AblationPlan.quick(rows=("slots 4,5,6", "no-CL"), baselines=False)
    assert plan.rows == (REFERENCE, "slots 4,5,6", "no-CL") and plan.folds == (0,)
    assert plan.separators() == ["full", "no-cl"]
    jobs = plan.jobs()
    assert "fold 0: train adapter MACS" in jobs and "fold 0: train adapter slots 4,5,6" not in jobs  # reuses MACS
    assert "fold 0: generate + score slots 4,5,6" in jobs
    full = AblationPlan()
    assert set(full.separators()) == set(SEPARATORS) and full.rows == ROW_NAMES
    assert sum(j.startswith("fold 0: train adapter") for j in full.jobs()) == 7
    assert full.folds == (0, 1, 2, 3, 4)  # 120 test clips per number of sources over the folds
    assert full.processes() == min(5, os.cpu_count()) and AblationPlan(world=False).processes() == 1
    assert AblationPlan(workers=3).processes() == 3 and AblationPlan.quick().processes() == 1
    with pytest.raises(MacsError, match="workers must be a positive number"):
        AblationPlan(workers=0)
    with pytest.raises(MacsError, match="unknown ablation row 'no-XY'"):
        AblationPlan(rows=("no-XY",))
    with pytest.raises(MacsError, match="folds must be distinct fold numbers 0-4"):
        AblationPlan(folds=(0, 0))
    assert SEPARATORS["no-rl"] == {"kind": "stft-unet", "contrastive": True, "ranking": False}
    assert SEPARATORS["waveform"]["kind"] == "waveform"


def test_marks_follow_holm_over_the_row_and_the_metric_direction():
    from macs_model.ablation_table import mark

    def cell(value, p, row_p):
        return {"value": value, "p": p, "p_adjusted": row_p}

    # 1000 rounds: no p below 1/1001; over these 112 cells Holm could reach no adjusted p below 0.11
    found = {f"row {i}": {m: cell(0.1, 1 / 1001, 8 / 1001) for m in ("ais", "iis", "fid", "kid", "ais_z",
                                                                     "iis_z", "clip_fid", "source_coverage")}
             for i in range(14)}
    found["row 0"]["ais"] = cell(-0.2, 0.003, 0.02)
    found["row 0"]["fid"] = cell(0.5, 0.03, 0.2)
    found["row 1"]["ais"] = cell(0.0, 1 / 1001, 0.008)
    marked = mark(found)
    assert all(d["p_holm_table"] >= 0.11 for row in marked.values() for d in row.values())
    assert marked["row 0"]["ais"]["verdict"] == "worse"  # higher is better, value below MACS
    assert marked["row 0"]["fid"]["verdict"] == ""  # not significant in its row
    assert marked["row 1"]["ais"]["verdict"] == ""  # no difference, no mark
    assert marked["row 2"]["fid"]["verdict"] == "worse" and marked["row 2"]["iis"]["verdict"] == "better"
    assert marked["row 2"]["source_coverage"]["verdict"] == "better"


def test_real_benchmark_argument_checks(tmp_path):
    from macs_model.cli import app, parse_rows

    assert parse_rows("no-RL,slots 4,5,6,top-1") == ["no-RL", "slots 4,5,6", "top-1"]

    with pytest.raises(MacsError, match="need --manifest and --media"):
        check_real(None, tmp_path, tmp_path, "cpu")
    with pytest.raises(MacsError, match="--pretrain-media is not a folder"):
        check_real(tmp_path, tmp_path, tmp_path / "absent", "cpu")
    with pytest.raises(MacsError, match="they need a GPU"):
        check_real(tmp_path, tmp_path, tmp_path, "cpu")
    runner = CliRunner()
    result = runner.invoke(app, ["ablations", "--manifest", str(tmp_path), "--media", str(tmp_path),
                                 "--pretrain-media", str(tmp_path), "--folds", "0,1", "--rows", "no-DC",
                                 "--dry-run"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("stage 1: separator full") and "fold 1: train adapter no-DC" in lines
    assert not any("world baselines" in line or "no-RL" in line for line in lines)
    result = runner.invoke(app, ["ablations", "--world", "--media", str(tmp_path)])
    assert isinstance(result.exception, MacsError) and "--world brings its own benchmark" in str(result.exception)


@pytest.mark.slow
def test_tiny_world_fold_writes_its_table_with_paired_intervals(tmp_path):
    from macs_model.ablations import run_ablations

    plan = AblationPlan(clips=40, pretrain_clips=16, folds=(0,), separator_steps=2, generator_steps=4,
                        rows=("no-sep M slots", "slots 4,5,6"), baselines=False, rounds=50)
    lines = []
    result = run_ablations(tmp_path / "abl", plan=plan, progress=False, log=lines.append)
    record = json.loads(result.record.read_text())
    assert record["models"] == [REFERENCE, "no-sep M slots", "slots 4,5,6"]
    assert {"oracle", "shuffled", "noise"} <= set(record["controls"])
    for row in ("no-sep M slots", "slots 4,5,6"):
        d = record["differences"][row]["ais"]
        assert d["a"] == row and d["b"] == REFERENCE and d["low"] <= d["value"] <= d["high"]
        assert d["p_holm_table"] is not None
        assert row in result.table.read_text()
    assert "paired" in result.table.read_text() and "(control)" in result.table.read_text()
    # the world judge's coverage, paired like AIS: the means and the difference are the judge's on the images
    from macs_model.demo import _labels, fold_coverage
    from macs_model.generation.api import fold_ids

    bench = tmp_path / "abl" / "data"
    test, labels = fold_ids(bench / "manifest", 0)[1], _labels(bench / "manifest")
    judged = {row: fold_coverage(tmp_path / "abl" / "pred" / folder, test, labels)["coverage"]
              for row, folder in ((REFERENCE, "MACS"), ("no-sep M slots", "no-sep_M_slots"), ("oracle", "oracle"))}
    assert record["means"][REFERENCE]["source_coverage"] == pytest.approx(judged[REFERENCE])
    assert record["means"]["oracle"]["source_coverage"] == pytest.approx(judged["oracle"])
    d = record["differences"]["no-sep M slots"]["source_coverage"]
    assert d["value"] == pytest.approx(judged["no-sep M slots"] - judged[REFERENCE])
    assert d["low"] <= d["value"] <= d["high"] and d["p_holm_table"] is not None
    assert "world's judge" in result.table.read_text()
    assert record["run_seconds"] > 0 and result.radar.is_file() and result.grid.is_file()
    assert result.seconds == record["total_seconds"] >= record["run_seconds"] + record["table_seconds"] - 1
    for row in ("no-sep M slots", "slots 4,5,6"):  # the marks follow Holm over the row's metrics
        for d in record["differences"][row].values():
            assert (d["verdict"] != "") == (d["p_adjusted"] is not None and d["p_adjusted"] < 0.05 and d["value"] != 0)
            assert d["p_holm_table"] is None or d["p_holm_table"] >= d["p_adjusted"]
    m_slots = json.loads((tmp_path / "abl" / "generators" / "no-sep_M_slots-fold0" / "config.json").read_text())
    assert m_slots["run_info"]["conditioning"]["mixture_slots"] == M
    stage1 = json.loads((tmp_path / "abl" / "separators" / "full" / "config.json").read_text())
    assert stage1["train_config"]["ramp"] is True  # the paper's loss ramp, as the demo runs it
    again = run_ablations(tmp_path / "abl", plan=plan, progress=False, log=lines.append)  # all reused
    assert json.loads(again.record.read_text())["means"] == record["means"]
    fewer = run_ablations(tmp_path / "abl", plan=replace(plan, rows=("slots 4,5,6",)), progress=False,
                          log=lines.append)  # a row fewer: reused, and the table shows the plan's rows only
    assert json.loads(fewer.record.read_text())["models"] == [REFERENCE, "slots 4,5,6"]
    with pytest.raises(MacsError, match="another plan"):
        run_ablations(tmp_path / "abl", plan=AblationPlan(folds=(1,)), progress=False, log=lines.append)


@pytest.mark.slow
def test_folds_in_worker_processes_give_the_same_table_as_one_process(tmp_path):
    from macs_model.ablations import run_ablations

    plan = AblationPlan(clips=40, pretrain_clips=16, folds=(0, 1), separator_steps=2, generator_steps=4,
                        rows=("no-sep 1 token",), baselines=False, rounds=50, workers=2)
    two = json.loads(run_ablations(tmp_path / "two", plan=plan, progress=False, log=lambda _: None).record.read_text())
    one = json.loads(run_ablations(tmp_path / "one", plan=replace(plan, workers=1), progress=False,
                                   log=lambda _: None).record.read_text())
    assert (two["processes"], one["processes"]) == (2, 1)
    assert {"fold 0: MACS", "fold 1: MACS", "fold 1: controls"} <= set(two["seconds"])
    assert two["means"] == one["means"] and two["differences"] == one["differences"]
    for name in ("MACS-fold1.json", "no-sep 1 token-fold0.json"):
        assert (json.loads((tmp_path / "two" / "results" / name).read_text())["metrics"]
                == json.loads((tmp_path / "one" / "results" / name).read_text())["metrics"])
