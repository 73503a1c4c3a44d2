"""The shipped world weights come from tools/train_world.py: retraining a part gives the same bytes."""

import pytest


@pytest.mark.slow
def test_the_clap_pair_retrains_bit_for_bit(tmp_path):
    import torch

    from macs_bench.io import sha256_file
    from macs_bench.world import CLAP_FILE, SUMS_FILE, WORLD_DIR
    from macs_bench.world.checksums import read_sums
    from macs_bench.world.train import train_world

    threads = torch.get_num_threads()
    report = train_world(tmp_path, parts=("clap",), log=lambda _: None)
    assert torch.get_num_threads() == threads  # settings restored
    assert report["files"] == [CLAP_FILE]
    assert sha256_file(tmp_path / CLAP_FILE) == read_sums(WORLD_DIR / SUMS_FILE)[CLAP_FILE]
    assert report["clap"]["audio_text_top_k_hits"] > report["clap"]["chance_top_k_hits"] + 0.3
