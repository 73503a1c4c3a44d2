"""The torchmetrics classes on images equal the functional metrics on the same encoder's features, and
torchmetrics' own FID and KID given the same feature extractor; reference features survive a reset on request."""

import numpy as np
import pytest
import torch

from macs_bench.features.encoders import build_encoders
from macs_bench.metrics import frechet_distance, kernel_inception_distance
from macs_bench.metrics.image_metrics import FDDINOv2, FID, KID, PRDC
from macs_bench.metrics.prdc import prdc


@pytest.fixture(scope="module")
def tiny():
    return build_encoders("tiny", names=["inception", "dinov2"])


def _images(seed, n=10, shift=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 200, (n, 3, 40, 52), generator=g) + shift).clamp(0, 255).to(torch.uint8)


def _features(encoder, images):
    inputs = [encoder.preprocess.transform(np.ascontiguousarray(a)) for a in images.permute(0, 2, 3, 1).numpy()]
    return encoder.encode(inputs, torch.device("cpu")).astype(np.float64)


class _Extractor(torch.nn.Module):
    """Our encoder (its resize and network) as the feature module torchmetrics' FID/KID accept."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder
        self.net = encoder.model

    def forward(self, images):
        return torch.from_numpy(_features(self.encoder, images))  # float64: KID is a small difference


def test_fid_and_kid_equal_the_functions_and_torchmetrics(tiny):
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    real, fake = _images(0), _images(1, shift=40)
    ours_fid, ours_kid = FID(tiny["inception"]), KID(tiny["inception"], subsets=5, subset_size=10)
    theirs_fid = FrechetInceptionDistance(feature=_Extractor(tiny["inception"]))
    theirs_kid = KernelInceptionDistance(feature=_Extractor(tiny["inception"]), subsets=5, subset_size=10)
    for metric in (ours_fid, ours_kid, theirs_fid, theirs_kid):
        metric.update(real[:6], real=True)
        metric.update(real[6:], real=True)
        metric.update(fake, real=False)
    r, f = _features(tiny["inception"], real), _features(tiny["inception"], fake)
    assert ours_fid.compute().item() == pytest.approx(frechet_distance(f, r), rel=1e-6)
    assert ours_fid.compute().item() == pytest.approx(theirs_fid.compute().item(), rel=1e-4)
    mean, std = ours_kid.compute()
    assert mean.item() == pytest.approx(kernel_inception_distance(f, r, 5, 10, 0)[0], rel=1e-9)
    assert mean.item() == pytest.approx(theirs_kid.compute()[0].item(), rel=1e-4)  # subsets = whole sets


def test_fd_dinov2_and_prdc_equal_the_functions_and_keep_real_features(tiny):
    real, fake, other = _images(2), _images(3, shift=30), _images(4, shift=60)
    fd = FDDINOv2(tiny["dinov2"], reset_real_features=False)
    pr = PRDC(tiny["inception"], k=3)
    fd.update(real, real=True)
    fd.update(fake, real=False)
    pr.update(real, real=True)
    pr.update(fake, real=False)
    r = _features(tiny["dinov2"], real)
    assert fd.compute().item() == pytest.approx(frechet_distance(_features(tiny["dinov2"], fake), r), rel=1e-6)
    expected = prdc(_features(tiny["inception"], real), _features(tiny["inception"], fake), 3)
    assert {k: v.item() for k, v in pr.compute().items()} == pytest.approx(expected, rel=1e-9)
    fd.reset()  # the reference rows stay, the generated ones go
    fd.update(other, real=False)
    assert fd.compute().item() == pytest.approx(frechet_distance(_features(tiny["dinov2"], other), r), rel=1e-6)
    pr.reset()
    assert pr.real == [] and pr.fake == []
    with pytest.raises(ValueError, match="uint8 N x 3 x H x W"):
        fd.update(real.float(), real=True)
