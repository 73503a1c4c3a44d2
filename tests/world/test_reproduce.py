"""The shipped world weights come from tools/train_world.py: retraining a part gives the same bytes (and, for the
CLAP, the same gate)."""

import json

import pytest


@pytest.mark.slow
def test_the_clap_pair_retrains_bit_for_bit(tmp_path):
    import torch

    from macs_bench.io import sha256_file
    from macs_bench.world import CLAP_FILE, REPORT_FILE, SUMS_FILE, WORLD_DIR
    from macs_bench.world.checksums import read_sums
    from macs_bench.world.train import train_world

    threads = torch.get_num_threads()
    report = train_world(tmp_path, parts=("clap",), log=lambda _: None)
    assert torch.get_num_threads() == threads  # settings restored
    assert report["files"] == [CLAP_FILE]
    assert sha256_file(tmp_path / CLAP_FILE) == read_sums(WORLD_DIR / SUMS_FILE)[CLAP_FILE]
    assert report["clap"]["single_source_top1"] > report["clap"]["chance_single_source_top1"] + 0.8
    shipped = json.loads((WORLD_DIR / REPORT_FILE).read_text())
    assert report["gate"] == shipped["gate"] and report["gate"]["holds"]  # the gate ran on the fresh CLAP
