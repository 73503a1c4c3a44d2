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


@pytest.fixture
def sha256_calls(monkeypatch):
    """Every sha256_file call by file name (the function is patched wherever a module bound it)."""
    import os
    import sys

    import macs_bench.io
    import macs_model.generation.audio_to_image  # noqa: F401 - imported first, so each binds the real function
    import macs_model.generation.pipeline  # noqa: F401
    import macs_model.generation.release_import  # noqa: F401
    import macs_model.separation.api  # noqa: F401

    real = macs_bench.io.sha256_file
    calls: list[str] = []

    def counting(path, *args, **kwargs):
        calls.append(os.path.basename(path))
        return real(path, *args, **kwargs)

    for name, module in list(sys.modules.items()):
        if not name.startswith(("macs_bench", "macs_model")):
            continue
        bound = getattr(module, "sha256_file", None)
        # the real function, or an earlier test's counter that a module imported during that test kept
        if bound is real or getattr(bound, "__qualname__", "") == counting.__qualname__:
            monkeypatch.setattr(module, "sha256_file", counting)
    return calls
