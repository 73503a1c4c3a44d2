import shutil
from pathlib import Path

import pytest

from macs_bench.datasets import build
from macs_bench.datasets.metadata import datasets_root

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def manifests():
    """Each dataset built once in memory with default options."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = build(name)
        return cache[name]

    return get


@pytest.fixture(scope="session")
def one_torch_thread():
    """One intra-op torch thread for the session, restored after: small models run deterministically and fast."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def metadata_copy(tmp_path):
    """A writable copy of the vendored metadata, for tampering."""
    dst = tmp_path / "metadata"
    shutil.copytree(datasets_root() / "metadata", dst)
    return dst
