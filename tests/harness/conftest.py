import pytest


@pytest.fixture(scope="session", autouse=True)
def one_thread(one_torch_thread):
    """One intra-op thread for the harness's small world models."""


@pytest.fixture(scope="session")
def world_fold(tmp_path_factory):
    """20 synthetic-world clips (5 folds of 4) written once."""
    from macs_bench.world.synthetic import write_synthetic

    return write_synthetic(tmp_path_factory.mktemp("world-harness"), n_clips=20, seed=5, prefix="h")
