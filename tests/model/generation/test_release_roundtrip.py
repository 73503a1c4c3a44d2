"""The imported release adapter, written by the one adapter writer, loads back into the UNet tensor for tensor;
importing and loading hash each release file once."""

from __future__ import annotations

import pytest
import torch
from release_helpers import write_tiny_release

pytest.importorskip("diffusers")


def test_imported_adapter_round_trips_through_load(tmp_path, sha256_calls):
    from macs_model.generation.adapter import TOKENS_PREFIX
    from macs_model.generation.pipeline import load_trained
    from macs_model.generation.release_import import import_release, release_files

    release = write_tiny_release(tmp_path / "release")
    files = release_files(release, "llp-multi")
    run, identity = import_release(release, "llp-multi", tmp_path / "import", preset="tiny")
    assert sorted(sha256_calls) == ["LLP_mlp.pt", "separator_FSD50K_full.pt"]  # identity hashed once, passed on
    components, _, _ = load_trained(run)
    loaded = components.unet.state_dict()
    mlp = torch.load(files["mlp"], weights_only=True)
    unet = torch.load(files["unet"], weights_only=True)
    for key, value in mlp.items():
        assert torch.equal(loaded[TOKENS_PREFIX + key], value), key
    kv = {k: v for k, v in unet.items() if ".processor.to_" in k}
    assert len(kv) >= 4
    for key, value in kv.items():
        assert torch.equal(loaded[key[: -len(".weight")] + ".0.weight"], value), key
    sha256_calls.clear()
    again, same = import_release(release, "llp-multi", tmp_path / "import", preset="tiny")
    assert again == run and same == identity and sorted(sha256_calls) == ["LLP_mlp.pt", "separator_FSD50K_full.pt"]


def test_pipeline_from_release_files_sha256_calls_each_file_once(tmp_path, sha256_calls):
    from macs_model import AudioToImagePipeline

    release = write_tiny_release(tmp_path / "release")
    AudioToImagePipeline.from_pretrained(release, dataset="llp-multi", preset="tiny", clap="tiny",
                                         import_dir=tmp_path / "import", device="cpu")
    assert sorted(sha256_calls) == ["LLP_mlp.pt", "adapter.safetensors", "separator_FSD50K_full.pt"]
