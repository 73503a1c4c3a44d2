"""Encoders: real architectures with random weights (the published files cannot be downloaded here), loading
from files, the preprocessing, and the CLIP preprocessing bound against the release's HF CLIPProcessor."""

import numpy as np
import pytest
import torch

from macs_bench.errors import MacsError
from macs_bench.features import encoders


def test_real_architectures_with_random_weights(image_file, audio_file):
    built = encoders.build_encoders("random", seed=0)
    assert {n: (e.dim, e.weights) for n, e in built.items()} == {
        "inception": (2048, "random:0"), "clip": (512, "random:0"), "wav2clip": (512, "random:0")}
    inc = built["inception"]
    x = inc.preprocess(image_file)
    assert x.shape == (3, 299, 299) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 255
    assert inc.encode([x, x], torch.device("cpu")).shape == (2, 2048)
    clip = built["clip"]
    assert sum(p.numel() for p in clip.model.visual.parameters()) == pytest.approx(87.8e6, rel=0.01)  # ViT-B/32
    feats = clip.encode([clip.preprocess(image_file)], torch.device("cpu"))
    assert feats.shape == (1, 512) and np.isfinite(feats).all()
    wav = built["wav2clip"]
    x = wav.preprocess(audio_file)
    other = torch.roll(x, 4000) * 3
    together = wav.encode([x, other], torch.device("cpu"))
    alone = wav.encode([x], torch.device("cpu"))
    assert together.shape == (2, 512)
    # wav2clip standardises its spectrogram over the whole batch: each clip must run alone
    np.testing.assert_array_equal(together[0], alone[0])


class _Node(torch.nn.Module):
    """A scriptable container: OpenAI's ViT-B-32.pt is a TorchScript archive holding the weights as buffers."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _openai_style_archive(model: torch.nn.Module, path) -> None:
    root = _Node()
    for key, value in model.state_dict().items():
        *parents, leaf = key.split(".")
        node = root
        for part in parents:
            if not hasattr(node, part):
                node.add_module(part, _Node())
            node = getattr(node, part)
        node.register_buffer(leaf, value.clone())
    torch.jit.script(root).save(str(path))


@pytest.mark.slow
def test_clip_loads_openais_torchscript_archive(tmp_path, image_file):
    import open_clip

    torch.manual_seed(3)
    model = open_clip.create_model("ViT-B-32", pretrained=None, force_quick_gelu=True).eval()
    with torch.no_grad():  # OpenAI's archive stores fp16 weights; open_clip loads them as such, then to fp32
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(tensor.half().float())
    _openai_style_archive(model, tmp_path / "ViT-B-32.pt")
    enc = encoders.clip(tmp_path / "ViT-B-32.pt")
    assert enc.weights.startswith("sha256:")
    x = enc.preprocess(image_file)
    with torch.no_grad():
        expected = model.encode_image(x[None]).numpy()
    np.testing.assert_allclose(enc.encode([x], torch.device("cpu")), expected, rtol=1e-3, atol=1e-4)
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(MacsError, match="bad.pt"):
        encoders.clip(tmp_path / "bad.pt")


def test_wav2clip_loads_a_weights_file_safely(tmp_path, audio_file):
    from wav2clip.model.encoder import MLPLayers, ResNetExtractor

    torch.manual_seed(4)
    encoder = ResNetExtractor(checkpoint=None, scenario="frozen")
    head = MLPLayers(units=[512, 512, 512], dropout=0.1)
    checkpoint = {**{f"audio_encoder.{k}": v for k, v in encoder.encoder.state_dict().items()},
                  **{f"audio_transform.{k}": v for k, v in head.state_dict().items()}}
    torch.save(checkpoint, tmp_path / "Wav2CLIP.pt")
    enc = encoders.wav2clip(tmp_path / "Wav2CLIP.pt")
    x = enc.preprocess(audio_file)
    with torch.no_grad():
        expected = head.eval()(encoder.encoder.eval()(x[None])).numpy()
    np.testing.assert_allclose(enc.encode([x], torch.device("cpu")), expected, rtol=1e-4, atol=1e-5)
    torch.save({"x": object()}, tmp_path / "evil.pt")  # a pickle that weights_only refuses
    with pytest.raises(MacsError, match="evil.pt: cannot load weights safely"):
        encoders.wav2clip(tmp_path / "evil.pt")


def test_inception_file_goes_through_clean_fids_wrapper(tmp_path, image_file):
    class FakeInception(torch.nn.Module):
        """TorchScript stand-in with clean-fid's interface (``layers`` on [-1, 1] inputs)."""

        def __init__(self):
            super().__init__()
            self.layers = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                              torch.nn.Linear(3, 2048))

        def forward(self, x, return_features: bool = False):
            return self.layers(x)

    torch.jit.script(FakeInception()).save(str(tmp_path / "inception-2015-12-05.pt"))
    enc = encoders.inception(tmp_path / "inception-2015-12-05.pt")
    x = enc.preprocess(image_file)
    got = enc.encode([x], torch.device("cpu"))
    scripted = torch.jit.load(str(tmp_path / "inception-2015-12-05.pt"))
    np.testing.assert_allclose(got, scripted.layers((x[None] - 128) / 128).detach().numpy(), rtol=1e-5)
    with pytest.raises(MacsError, match="must be named inception-2015-12-05.pt"):
        encoders.inception(tmp_path / "other.pt")


def test_unknown_preset():
    with pytest.raises(MacsError, match="unknown encoder preset 'huge'"):
        encoders.build_encoders("huge")


@pytest.mark.slow
def test_clip_preprocessing_close_to_the_releases_hf_processor(tmp_path):
    """We feed CLIP clean-fid's resize (as CLIP-FID does); the release's AIS/IIS used HF's CLIPProcessor.
    Both: bicubic resize of the short side to 224, centre crop, OpenAI normalisation. Bound the difference."""
    from PIL import Image
    from transformers import CLIPImageProcessor

    processor = CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224},
                                   image_mean=list(encoders.OPENAI_MEAN), image_std=list(encoders.OPENAI_STD))
    clip = encoders.clip(None, seed=0)
    rng = np.random.default_rng(0)
    cosines, max_pixel = [], 0.0
    for i, size in enumerate([(512, 512), (360, 640), (300, 220)]):
        smooth = Image.fromarray(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)).resize(size[::-1], Image.BICUBIC)
        path = tmp_path / f"{i}.png"
        smooth.save(path)
        ours = clip.preprocess(path)
        theirs = torch.from_numpy(processor(images=smooth, return_tensors="np")["pixel_values"][0])
        max_pixel = max(max_pixel, float((ours - theirs).abs().max()))
        with torch.no_grad():
            a, b = clip.model.encode_image(ours[None]), clip.model.encode_image(theirs[None])
        cosines.append(float(torch.nn.functional.cosine_similarity(a, b)))
    # normalised pixel units (1 unit ~ 0.27 of the 0..1 range): rounding and resampler differences only
    assert max_pixel < 0.1, max_pixel
    assert min(cosines) > 0.995, cosines


def test_clip_resize_equals_clean_fids(tmp_path):
    """clean-fid's own function, taken from its source (its module imports OpenAI's clip package)."""
    import ast
    import inspect

    import cleanfid
    from PIL import Image
    from torchvision import transforms

    source = (inspect.getfile(cleanfid).rsplit("/", 1)[0]) + "/clip_features.py"
    tree = ast.parse(open(source).read())
    (func,) = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "img_preprocess_clip"]
    namespace = {"Image": Image, "np": np, "transforms": transforms}
    exec(compile(ast.Module([func], []), source, "exec"), namespace)
    rng = np.random.default_rng(5)
    for shape in [(300, 500, 3), (224, 224, 3), (100, 80, 3)]:
        image = rng.integers(0, 255, shape, dtype=np.uint8)
        np.testing.assert_array_equal(encoders.clip_resize(image), namespace["img_preprocess_clip"](image))
