"""Sharded encoding under a 2-process launch gives the single process's numbers."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from scoring_helpers import make_scoring_case

BIN = Path(sys.executable).parent


@pytest.mark.slow
def test_two_processes_equal_one(tmp_path):
    case = make_scoring_case(tmp_path, n=9)
    args = ["score", "--manifest", str(case.manifest), "--pred", str(case.pred), "--media", str(case.media),
            "--model-name", "m", "--preset", "tiny"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # the same kernels' thread count in both runs
    single = subprocess.run([str(BIN / "macs-bench"), *args, "--out", str(tmp_path / "one.json"),
                             "--cache-dir", str(tmp_path / "c1")], env=env, capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr
    # torchrun is what `accelerate launch` runs for several GPUs; on CPU accelerate itself would need MPI
    multi = subprocess.run([str(BIN / "torchrun"), "--nproc_per_node", "2", "--master_port", "29631", "-m",
                            "macs_bench", *args, "--out", str(tmp_path / "two.json"), "--cache-dir", str(tmp_path / "c2")],
                           env=env, capture_output=True, text=True, timeout=300)
    assert multi.returncode == 0, multi.stderr
    one, two = (json.loads((tmp_path / f).read_text()) for f in ("one.json", "two.json"))
    assert two["tool"]["processes"] == 2
    assert sum(two["encoded_now"].values()) < sum(one["encoded_now"].values())  # the work was shared
    assert two["metrics"] == one["metrics"]
    assert (tmp_path / "two.per_sample.csv").read_text() == (tmp_path / "one.per_sample.csv").read_text()
