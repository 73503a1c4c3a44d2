"""A published encoder's weights file is hashed in full exactly once per load: the weights store's check and the
encoder's recorded id share that one hash (it used to be hashed by both), and a corrupt file whose size and
mtime are unchanged is still caught."""

import os

import pytest
import torch

from macs_bench import weights
from macs_bench.errors import MacsError
from macs_bench.features import encoders
from macs_bench.weights.registry import WeightSpec

BYTES = b"stand-in for OpenAI's ViT-L-14-336px.pt"


class _StubClip(torch.nn.Module):
    """What the builder reads from the loaded CLIP: its image size and output width (the real file is 890 MB)."""

    def __init__(self):
        super().__init__()
        self.visual = torch.nn.Linear(1, 1)
        self.visual.image_size, self.visual.output_dim = (336, 336), 768


@pytest.fixture
def counted(tmp_path, monkeypatch):
    import open_clip

    import macs_bench.io

    monkeypatch.setenv("MACS_HOME", str(tmp_path / "home"))
    entry = WeightSpec(name="clip-vit-l-14-336-openai", filename="ViT-L-14-336px.pt",
                       urls=("https://example.invalid/ViT-L-14-336px.pt",), sha256=None, size=None, licence="t",
                       what="t", used_by="t")
    monkeypatch.setattr(weights.registry, "WEIGHTS", {entry.name: entry})
    monkeypatch.setattr(open_clip, "load_openai_model", lambda *a, **k: _StubClip())
    file = tmp_path / "home" / "weights" / entry.filename
    file.parent.mkdir(parents=True)
    file.write_bytes(BYTES)
    calls = []
    real = macs_bench.io.sha256_file

    def counting(path, *args, **kwargs):
        calls.append(os.path.basename(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(macs_bench.io, "sha256_file", counting)
    monkeypatch.setattr(weights.store, "sha256_file", counting)
    return file, calls


def test_clip_l336_weights_are_hashed_once_per_load(counted):
    import hashlib

    file, calls = counted
    for load in range(2):  # the first load records the hash (trust on first use), the second checks against it
        built = encoders.build_encoders("paper", names=["clip_l336"])
        assert calls == [file.name], f"load {load}: {calls}"
        assert built["clip_l336"].weights == "sha256:" + hashlib.sha256(BYTES).hexdigest()
        calls.clear()


def test_a_corrupt_file_with_its_size_and_mtime_kept_is_refused(counted):
    file, calls = counted
    encoders.build_encoders("paper", names=["clip_l336"])
    before = file.stat()
    file.write_bytes(BYTES.upper())  # same size
    os.utime(file, ns=(before.st_atime_ns, before.st_mtime_ns))
    with pytest.raises(MacsError, match="corrupt weights"):
        encoders.build_encoders("paper", names=["clip_l336"])
