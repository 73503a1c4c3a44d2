import pytest


@pytest.fixture(scope="session", autouse=True)
def one_thread(one_torch_thread):
    """One intra-op thread: the world models are small and deterministic on one thread."""


@pytest.fixture(scope="session")
def fresh_world(tmp_path_factory):
    """40 clips of the world from a seed neither the trainer nor the demo uses (held out from everything)."""
    from macs_bench.world.data import world_data

    return world_data(40, 31337, tmp_path_factory.mktemp("world"))
