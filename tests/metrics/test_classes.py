"""torchmetrics classes give the functional code's numbers, batch by batch and after merging process states."""

import numpy as np
import pytest
import torch

from macs_bench.metrics import paired_scores
from macs_bench.metrics.classes import CMMD, PairedSimilarity, SourceCoverage
from macs_bench.metrics.cmmd import cmmd, unit_rows
from macs_bench.metrics.coverage import source_coverage


def batches(*arrays, size=7):
    n = arrays[0].shape[0]
    for start in range(0, n, size):
        yield tuple(torch.from_numpy(a[start:start + size]) for a in arrays)


def test_paired_similarity_equals_paired_scores(rng):
    q, g = rng.normal(size=(30, 8)), rng.normal(size=(30, 8))
    metric = PairedSimilarity()
    for qb, gb in batches(q, g):
        metric.update(qb, gb)
    got = metric.compute()
    expected = paired_scores(q, g)
    assert float(got["mean"]) == pytest.approx(expected.mean, rel=1e-12)
    assert float(got["z_mean"]) == pytest.approx(expected.z_mean, rel=1e-12)


def test_merged_states_equal_one_process(rng):
    """What dist_sync does: each process's rows concatenated (here two metric objects merged)."""
    q, g = rng.normal(size=(20, 6)), rng.normal(size=(20, 6))
    first, second = PairedSimilarity(), PairedSimilarity()
    first.update(torch.from_numpy(q[:12]), torch.from_numpy(g[:12]))
    second.update(torch.from_numpy(q[12:]), torch.from_numpy(g[12:]))
    first.merge_state(second)
    assert float(first.compute()["z_mean"]) == pytest.approx(paired_scores(q, g).z_mean, rel=1e-12)


def test_source_coverage_class_equals_the_function(rng):
    images, classes = rng.normal(size=(25, 5)), rng.normal(size=(9, 5))
    label_sets = [sorted(rng.choice(9, size=rng.integers(1, 4), replace=False).tolist()) for _ in range(25)]
    multi_hot = np.zeros((25, 9), dtype=bool)
    for i, labels in enumerate(label_sets):
        multi_hot[i, labels] = True
    metric = SourceCoverage(torch.from_numpy(classes))
    for ib, lb in batches(images, multi_hot):
        metric.update(ib, lb)
    got = metric.compute()
    expected = source_coverage(images, classes, label_sets)
    assert float(got["coverage"]) == pytest.approx(expected.mean, rel=1e-12)
    assert float(got["aic"]) == pytest.approx(expected.aic_mean, rel=1e-12)


def test_cmmd_class_equals_the_function(rng):
    real, fake = rng.normal(size=(18, 6)), rng.normal(size=(15, 6)) + 0.2
    metric = CMMD()
    for (rb,) in batches(real):
        metric.update(rb, real=True)
    for (fb,) in batches(fake):
        metric.update(fb, real=False)
    assert float(metric.compute()) == pytest.approx(cmmd(unit_rows(real), unit_rows(fake)), rel=1e-12)


WORKER = """
import json, pathlib, sys
import numpy as np, torch, torch.distributed as dist
from macs_bench.metrics.classes import PairedSimilarity
dist.init_process_group("gloo")
rank = dist.get_rank()
data = np.random.default_rng(7)
q, g = data.normal(size=(21, 6)), data.normal(size=(21, 6))
rows = slice(0, 11) if rank == 0 else slice(11, 21)  # unequal shards
metric = PairedSimilarity()
metric.update(torch.from_numpy(q[rows]), torch.from_numpy(g[rows]))
got = metric.compute()
# one file per process: two processes printing at once can interleave their lines on a shared stdout
pathlib.Path(sys.argv[1], f"result{rank}.json").write_text(json.dumps([rank, float(got["mean"]), float(got["z_mean"])]))
dist.destroy_process_group()
"""


@pytest.mark.slow
def test_distributed_sync_gathers_every_process(tmp_path):
    """Two processes under torchrun, each with its own rows: compute() syncs and gives the one-process value."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "worker.py").write_text(WORKER)
    torchrun = Path(sys.executable).parent / "torchrun"
    done = subprocess.run([str(torchrun), "--nproc_per_node", "2", "--master_port", "29641",
                           str(tmp_path / "worker.py"), str(tmp_path)], capture_output=True, text=True, timeout=180,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    results = [json.loads(path.read_text()) for path in sorted(tmp_path.glob("result*.json"))]
    data = np.random.default_rng(7)
    expected = paired_scores(data.normal(size=(21, 6)), data.normal(size=(21, 6)))
    assert sorted(r[0] for r in results) == [0, 1]
    for _, mean, z_mean in results:
        assert mean == pytest.approx(expected.mean, rel=1e-12) and z_mean == pytest.approx(expected.z_mean, rel=1e-12)
