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
    assert two["encoded_now"] == one["encoded_now"]  # summed over both processes: no file encoded twice
    assert two["metrics"] == one["metrics"]
    assert (tmp_path / "two.per_sample.csv").read_text() == (tmp_path / "one.per_sample.csv").read_text()


@pytest.mark.slow
def test_an_error_in_one_process_stops_all_with_one_line(tmp_path):
    case = make_scoring_case(tmp_path, n=9)
    bad = sorted(case.pred.iterdir())[4]
    bad.write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    multi = subprocess.run([str(BIN / "torchrun"), "--nproc_per_node", "2", "--master_port", "29632", "-m",
                            "macs_bench", "score", "--manifest", str(case.manifest), "--pred", str(case.pred),
                            "--media", str(case.media), "--model-name", "m", "--preset", "tiny",
                            "--out", str(tmp_path / "r.json"), "--cache-dir", str(tmp_path / "c")],
                           capture_output=True, text=True, timeout=300)
    assert multi.returncode != 0
    # each worker prints the same one-line error (possibly after the other's progress bar on the same line)
    assert multi.stderr.count(f"{bad.name}: unreadable or corrupt image") == 2, multi.stderr
    # both workers exit with the error themselves (torchrun then reports their exit codes); no worker dies
    # inside a collective waiting for a peer that already left
    assert "Connection closed by peer" not in multi.stderr and "macs_bench/" not in multi.stderr
