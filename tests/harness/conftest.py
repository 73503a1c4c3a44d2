import pytest


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def world_fold(tmp_path_factory):
    """20 synthetic-world clips (5 folds of 4) written once."""
    from macs_bench.datasets.synthetic import write_synthetic

    return write_synthetic(tmp_path_factory.mktemp("world-harness"), n_clips=20, seed=5, prefix="h")
