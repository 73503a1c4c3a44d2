import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # clap_helpers


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """One intra-op thread for every model test (set before any shared fixture builds a model): these models are
    small, two threads thrash on a busy 2-CPU runner, and one thread keeps CPU results deterministic."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def clap_model():
    """laion-clap's CLAP at its real architecture (HTSAT-tiny + RoBERTa-base), random weights; built once."""
    import torch

    from macs_model.separation.clap import build_clap_model

    torch.manual_seed(0)
    return build_clap_model().eval()


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory):
    from clap_helpers import write_tokenizer

    return write_tokenizer(tmp_path_factory.mktemp("tokenizer"))
