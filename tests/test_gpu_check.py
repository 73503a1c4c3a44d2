"""benchmarks/gpu_check.py at its small CPU setting (what CI runs), and the fencing of its parts."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "benchmarks" / "gpu_check.py"
PARTS = ("torchsort", "generation", "stage1", "stage2", "scoring")


def _import_gpu_check():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import gpu_check
    finally:
        sys.path.remove(str(SCRIPT.parent))
    return gpu_check


@pytest.mark.slow
def test_small_setting_runs_every_part_on_cpu_and_prints_one_json(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": ""}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(SCRIPT), "--small", "--threads", "2", "--out", str(tmp_path / "r.json")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - started
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report == json.loads((tmp_path / "r.json").read_text())
    assert report["setting"] == "small" and report["device"] == "cpu"
    assert report["versions"]["torch"] and report["weights"].startswith("random")
    for part in PARTS:
        assert "error" not in report[part] and "skipped" not in report[part], (part, report[part])
        assert report[part]["seconds"] > 0
    assert report["torchsort"]["max_abs_rank_diff"] == 0 and report["torchsort"]["max_abs_grad_diff"] == 0
    numbers = [report["generation"]["ratio"], report["stage1"]["ratio_fp32_over_fp16"],
               report["stage2"]["ratio_without_over_warm"], report["scoring"]["both_images_per_second"]]
    assert all(math.isfinite(x) and x > 0 for x in numbers)
    assert report["generation"]["resolution"] == [32, 32]
    print(f"gpu_check --small: {seconds:.1f} s wall")  # the acceptance target is under a minute in CI


def test_a_failing_part_is_recorded_and_later_parts_past_the_budget_are_skipped():
    gpu_check = _import_gpu_check()
    failed = gpu_check.run_part("x", lambda: 1 / 0, time.perf_counter(), budget=100)
    assert failed["error"].startswith("ZeroDivisionError") and failed["seconds"] >= 0
    late = gpu_check.run_part("y", lambda: {"ran": True}, time.perf_counter() - 10, budget=5)
    assert "skipped" in late and "ran" not in late
    assert gpu_check.run_part("z", lambda: {"ran": True}, time.perf_counter(), budget=5)["ran"] is True
