"""The extra encoders: real architectures (meta device, or random weights saved to a local file and loaded
through the same code as the published files), their preprocessing, and FD-DINOv2 through the score cache."""

import numpy as np
import pytest
import torch
from scoring_helpers import make_scoring_case
from test_encoders import _openai_style_archive

from macs_bench.errors import MacsError
from macs_bench.features import encoders_extra
from macs_bench.features.encoders import build_encoders


def test_real_architectures_on_the_meta_device():
    import open_clip
    from transformers import Dinov2Config, Dinov2Model

    with torch.device("meta"):
        clip = open_clip.model.CLIP(**open_clip.get_model_config("ViT-L-14-336"), quick_gelu=True)
        dino = Dinov2Model(Dinov2Config(**encoders_extra.DINOV2_LARGE))
    assert clip.visual.image_size == (336, 336) and clip.visual.output_dim == encoders_extra.CLIP_L336_DIM
    assert sum(p.numel() for p in clip.visual.parameters()) == pytest.approx(304.3e6, rel=1e-3)  # ViT-L/14
    assert sum(p.numel() for p in dino.parameters()) == pytest.approx(304.4e6, rel=1e-3)  # DINOv2 ViT-L/14
    assert dino.config.hidden_size == encoders_extra.DINOV2_DIM


def test_preprocessing_follows_the_reference_implementations(image_file):
    from PIL import Image

    x = encoders_extra.cmmd_input(image_file)  # 40 x 60 image: centre 40 x 40 crop, then 336
    assert x.shape == (3, 336, 336)
    with Image.open(image_file) as img:
        crop = img.convert("RGB").crop((10, 0, 50, 40)).resize((336, 336), Image.BICUBIC)
    pixels = np.asarray(crop, np.float32) / 255
    np.testing.assert_allclose(x[0].numpy(), (pixels[..., 0] - 0.48145466) / 0.26862954, atol=1e-5)
    y = encoders_extra.dinov2_input(image_file)
    assert y.shape == (3, 224, 224)  # squashed, not cropped (dgm-eval)


def _small_dinov2(folder):
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(0)
    model = Dinov2Model(Dinov2Config(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=128, patch_size=14, image_size=518)).eval()
    model.save_pretrained(folder, safe_serialization=True)
    return model


def hub_forward(model, x: torch.Tensor) -> torch.Tensor:
    """facebookresearch/dinov2's ``DinoVisionTransformer.forward`` (the model dgm-eval loads with
    ``torch.hub.load('facebookresearch/dinov2', 'dinov2_vitl14')``) restated on transformers' weights:
    ``prepare_tokens_with_masks`` (patch embedding, CLS token, ``interpolate_pos_encoding`` with
    ``interpolate_offset=0.1``: bicubic, ``scale_factor=((w0 + 0.1) / M, (h0 + 0.1) / M)``, no antialias), the
    blocks, the final norm, the CLS token (``head`` is the identity)."""
    emb = model.embeddings
    b, _, w, h = x.shape
    tokens = torch.cat([emb.cls_token.expand(b, -1, -1), emb.patch_embeddings(x)], dim=1)
    pos = emb.position_embeddings.float()
    n = pos.shape[1] - 1
    m, dim = int(np.sqrt(n)), pos.shape[-1]
    w0, h0 = w // 14, h // 14
    patch = torch.nn.functional.interpolate(pos[:, 1:].reshape(1, m, m, dim).permute(0, 3, 1, 2),
                                            scale_factor=(float(w0 + 0.1) / m, float(h0 + 0.1) / m),
                                            mode="bicubic", antialias=False)
    assert (w0, h0) == patch.shape[-2:]
    patch = patch.permute(0, 2, 3, 1).view(1, -1, dim)
    tokens = tokens + torch.cat((pos[:, 0].unsqueeze(0), patch), dim=1)
    for block in model.encoder.layer:
        tokens = block(tokens)
    return model.layernorm(tokens)[:, 0]


def test_dinov2_loads_a_local_folder_and_runs_the_hub_models_computation(tmp_path, image_file):
    model = _small_dinov2(tmp_path / "dino")
    enc = encoders_extra.dinov2(tmp_path / "dino")
    assert enc.weights.startswith("sha256:") and enc.dim == 64
    assert enc.id.endswith("/" + encoders_extra.DINOV2_IMPLEMENTATION)
    x = enc.preprocess(image_file)
    with torch.no_grad():
        expected = hub_forward(model, x[None]).numpy()
        stock = model(pixel_values=x[None]).pooler_output.numpy()  # transformers' own interpolation
    got = enc.encode([x], torch.device("cpu"))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert np.abs(stock - expected).max() > 1e3 * np.abs(got - expected).max()  # the interpolations differ
    (tmp_path / "empty").mkdir()
    with pytest.raises(MacsError, match="empty: DINOv2 weights need config.json and model.safetensors"):
        encoders_extra.dinov2(tmp_path / "empty")
    (tmp_path / "dino" / "model.safetensors").write_bytes(b"junk")
    with pytest.raises(MacsError, match="dino: not DINOv2 weights"):
        encoders_extra.dinov2(tmp_path / "dino")


@pytest.mark.slow
def test_clip_l336_loads_openais_torchscript_archive(tmp_path, image_file):
    import open_clip

    torch.manual_seed(3)
    model = open_clip.create_model("ViT-L-14-336", pretrained=None, force_quick_gelu=True).eval()
    with torch.no_grad():  # OpenAI's archives store fp16 weights
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(tensor.half().float())
    _openai_style_archive(model, tmp_path / "ViT-L-14-336px.pt")
    enc = encoders_extra.clip_l336(tmp_path / "ViT-L-14-336px.pt")
    assert enc.weights.startswith("sha256:") and enc.dim == 768
    x = enc.preprocess(image_file)
    with torch.no_grad():
        expected = model.encode_image(x[None]).numpy()
    np.testing.assert_allclose(enc.encode([x], torch.device("cpu")), expected, rtol=1e-3, atol=1e-4)


@pytest.mark.slow
def test_fd_dinov2_with_the_real_architecture_from_a_local_file(tmp_path):
    """DINOv2 ViT-L/14 with random weights saved as a local snapshot, loaded by the registry's code path,
    scored through the feature cache, and compared with features from the network called directly."""
    from transformers import Dinov2Config, Dinov2Model

    from macs_bench.metrics import frechet_distance
    from macs_bench.scoring import ScoreConfig, score

    torch.manual_seed(1)
    net = Dinov2Model(Dinov2Config(**encoders_extra.DINOV2_LARGE)).eval()
    net.save_pretrained(tmp_path / "dinov2", safe_serialization=True)
    case = make_scoring_case(tmp_path, n=3)
    given = {**build_encoders("tiny"), "dinov2": encoders_extra.dinov2(tmp_path / "dinov2")}
    result = score(case.manifest, case.pred, case.media, model_name="m", encoders=given,
                   config=ScoreConfig(cache_dir=str(tmp_path / "cache"), kid_subset_size=3, metrics="fd_dinov2"))

    def direct(folder, suffix):
        x = torch.stack([encoders_extra.dinov2_input(folder / f"{sid}{suffix}") for sid in case.ids])
        with torch.no_grad():
            return hub_forward(net, x).numpy()

    expected = frechet_distance(direct(case.pred, ".png"), direct(case.media / "frames", ".jpg"))
    assert result["metrics"]["fd_dinov2"] == pytest.approx(expected, rel=1e-4)
    assert result["encoded_now"]["gen_dinov2"] == 3 and result["config"]["preset"] == "custom"
