"""Batched generation (generate_images with batch_size > 1) against batch-1 generation, before 8-bit rounding:
every image of a batch is, to float tolerance, the image its sample gets alone (its own seed, its own audio)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stage2_helpers import embeddings

from macs_model.generation.components import build_adapter, tiny_components
from macs_model.generation.config import GeneratorConfig
from macs_model.generation.pipeline import generate_images

pytest.importorskip("diffusers")
from diffusers import StableDiffusionPipeline  # noqa: E402
from diffusers.pipelines.stable_diffusion import StableDiffusionPipelineOutput  # noqa: E402

CONFIG = GeneratorConfig.preset("tiny", clap_dim=32)


@pytest.fixture
def float_images(monkeypatch):
    """Records the pipeline's float images [H, W, 3] in [0, 1], in call order, while generate_images runs as is."""
    seen: list[np.ndarray] = []
    original = StableDiffusionPipeline.__call__

    def recording(self, *args, **kwargs):
        kwargs["output_type"] = "np"
        arrays = original(self, *args, **kwargs).images
        seen.extend(arrays)
        return StableDiffusionPipelineOutput(images=self.numpy_to_pil(arrays), nsfw_content_detected=None)

    monkeypatch.setattr(StableDiffusionPipeline, "__call__", recording)
    return seen


@pytest.mark.parametrize("decoupled", [True, False], ids=["decoupled", "appended-tokens"])
def test_each_batched_image_is_its_batch_1_image(float_images, tmp_path, decoupled):
    components = tiny_components(0)
    config = CONFIG.replace(decoupled=decoupled)
    torch.manual_seed(1)  # the fresh adapter's weights (audio tokens random, k/v copied from the text k/v)
    _, tokens = build_adapter(components, config)
    items = [(f"s{i}", embeddings(20 + i)) for i in range(3)]
    images = {}
    for batch_size in (3, 1):
        float_images.clear()
        generate_images(components, config, tokens, items, tmp_path / str(batch_size), batch_size=batch_size,
                        progress=False)
        images[batch_size] = np.stack(float_images)
    assert images[3].shape == (3, config.height, config.width, 3)
    np.testing.assert_allclose(images[3], images[1], atol=1e-5, rtol=0)
    spread = np.abs(images[1][:, None] - images[1][None]).max(axis=(2, 3, 4))
    assert spread[~np.eye(3, dtype=bool)].min() > 0.05  # samples differ: a mix-up between them would show
