"""The release's training recipe as preset fields: schedules measured against accelerate + diffusers running the
release's loop, image buckets against the release's own bucket rule, and the presets' values."""

from __future__ import annotations

import math

import pytest
import torch
from PIL import Image

from macs_model.generation.config import GeneratorConfig
from macs_model.generation.image_buckets import bucket_sizes, epoch_views, load_variant, nearest_bucket
from macs_model.run_loop import release_lr
from macs_model.separation.train_config import TrainConfig


def _release_loop_lrs(batches: int, epochs: int, accum: int) -> list[float]:
    """The lr of each optimiser step as the release's train.py / train_mixit.py loop runs it (one process)."""
    from accelerate import Accelerator
    from diffusers import get_scheduler

    accelerator = Accelerator(gradient_accumulation_steps=accum, cpu=True)
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1.0)
    loader = torch.utils.data.DataLoader(torch.zeros(batches, 2), batch_size=1)
    total = epochs * math.ceil(len(loader) / accum)
    scheduler = get_scheduler("cosine", optimizer=optimizer, num_warmup_steps=(total // 10) * accum,
                              num_training_steps=total * accum)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    lrs = []
    for _ in range(epochs):
        for batch in loader:
            with accelerator.accumulate(model):
                optimizer.zero_grad(set_to_none=True)
                accelerator.backward(model(batch).sum())
                if accelerator.sync_gradients:
                    lrs.append(optimizer.param_groups[0]["lr"])  # the lr this optimiser step uses
                optimizer.step()
                scheduler.step()
    return lrs


@pytest.mark.parametrize("batches, epochs, accum", [(8, 10, 2), (16, 3, 8), (7, 4, 2)])
def test_release_lr_is_what_the_release_loop_runs(batches, epochs, accum):
    expected = _release_loop_lrs(batches, epochs, accum)
    total = len(expected)
    assert total == epochs * math.ceil(batches / accum)
    got = [release_lr(step, total, accum) for step in range(total)]
    assert got == pytest.approx(expected, abs=1e-9)


def test_release_schedule_shapes_named_in_the_docstrings():
    total = 1000
    stage1 = [release_lr(s, total, 2) for s in range(total)]
    assert stage1[199] < 1.0 and stage1[200] == pytest.approx(1.0)  # warm-up: the first 20 %
    assert stage1[-1] == pytest.approx(0.5 * (1 + math.cos(math.pi * 799 / 1800)), abs=1e-9)
    assert 0.58 < stage1[-1] < 0.59
    stage2 = [release_lr(s, total, 8) for s in range(total)]
    assert stage2[799] < 1.0 and stage2[800] == pytest.approx(1.0)  # warm-up: the first 80 %
    assert stage2[-1] > 0.997


def test_presets_carry_the_release_recipe():
    paper = GeneratorConfig.preset("paper")
    assert (paper.lr_schedule, paper.grad_clip, paper.grad_clip_mode, paper.cfg_drop, paper.cfg_dropout) == (
        "release", 1.0, "value", "batch", 0.1)
    assert (paper.image_mode, paper.audio_seconds, paper.token_order, paper.mixed_precision) == (
        "buckets", 8.0, "slot", "fp16")
    assert (paper.lr, paper.batch_size, paper.grad_accum, paper.epochs) == (1e-4, 2, 8, 15)
    stage1 = TrainConfig.preset("paper")
    assert (stage1.lr_schedule, stage1.mixed_precision, stage1.max_grad_norm) == ("release", "fp16", None)
    assert (stage1.lr, stage1.batch_size, stage1.grad_accum, stage1.epochs) == (1e-3, 8, 2, 10)
    assert GeneratorConfig.preset("tiny").token_order == "slot"


def _release_buckets(h, w):
    """``get_resolutions_and_ar`` + the bucket choice of ``get_ar_dict``, restated from dataloader/llp.py."""
    base, step = 512, 32
    res = [base + step * i for i in range(-9, -1, 2)]
    resolutions = [(base, base)]
    for r in res:
        resolutions.append((r, base))
        resolutions.append((base, r))
    ar = [r[0] / r[1] for r in resolutions]
    idx = min(list(range(len(ar))), key=lambda x: abs(ar[x] - h / w))
    return resolutions[idx]


@pytest.mark.parametrize("h, w", [(360, 640), (720, 1280), (480, 640), (640, 480), (512, 512), (300, 1200),
                                  (1080, 1920), (240, 320), (400, 300), (1000, 999)])
def test_bucket_choice_is_the_releases(h, w):
    assert nearest_bucket(h, w, bucket_sizes()) == _release_buckets(h, w)


def test_epoch_views_fill_whole_batches_of_one_bucket_and_flip_half():
    buckets = [(288, 512)] * 5 + [(512, 512)] * 4 + [(512, 416)] * 3
    order, views = epoch_views(buckets, 2, seed=0, epoch=0, square=512)
    assert sorted(order) == list(range(12))
    for i in range(0, 12, 2):
        assert views[i][:2] == views[i + 1][:2], "a batch mixes buckets"
    for index, view in zip(order, views):
        assert view[:2] in (buckets[index], (512, 512))  # leftovers go to the square
    assert sum(v[:2] == (288, 512) for v in views) == 4 and sum(v[:2] == (512, 416) for v in views) == 2
    assert epoch_views(buckets, 2, 0, 0, 512) == (order, views)  # the run's seed decides
    flips = [v[2] for e in range(20) for v in epoch_views(buckets, 2, 0, e, 512)[1]]
    assert 0.35 < sum(flips) / len(flips) < 0.65


def test_load_variant_stretches_without_crop_and_flips(tmp_path):
    from torchvision.transforms import v2

    pixels = (torch.arange(60 * 80 * 3) % 251).reshape(60, 80, 3).to(torch.uint8).numpy()
    Image.fromarray(pixels).save(tmp_path / "f.png")
    got = load_variant(tmp_path / "f.png", 32, 48, flip=False)
    # the release: ToImage, ToDtype(scale), Normalize(0.5, 0.5), Resize((h, w)) on the tensor
    release = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True),
                          v2.Normalize([0.5] * 3, [0.5] * 3), v2.Resize((32, 48))])(pixels)
    torch.testing.assert_close(got, release, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(load_variant(tmp_path / "f.png", 32, 48, flip=True), release.flip(-1))


def test_initialisation_is_the_releases():
    """init_parameters of modules/separator.py (Kaiming-normal fan-out convs, Xavier-normal linears, zero biases,
    BatchNorm 1 / 0, positional tables N(0, 0.05)) and of modules/custom.py's MLP (Xavier-normal, zero biases)."""
    from macs_model.generation.tokens import AudioTokens
    from macs_model.separation.config import SeparatorConfig
    from macs_model.separation.separator import StftMaskSeparator

    torch.manual_seed(0)
    net = StftMaskSeparator(SeparatorConfig.preset("paper")).unet
    convs = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert convs and linears and norms
    for conv in convs:
        w = conv.weight
        fan_out = w.shape[0] * w[0, 0].numel()
        if w.numel() > 2000:
            assert w.std().item() == pytest.approx(math.sqrt(2 / fan_out), rel=0.1)
        assert not conv.bias.any()
    for linear in linears + [AudioTokens().adapter[1], AudioTokens().adapter[4]]:
        w = linear.weight
        assert w.std().item() == pytest.approx(math.sqrt(2 / sum(w.shape)), rel=0.15)
        assert not linear.bias.any()
    assert all((n.weight == 1).all() and not n.bias.any() for n in norms)
    embed = net.in_conv[1]
    table = torch.cat([embed.row_embed.flatten(), embed.col_embed.flatten()])
    assert table.std().item() == pytest.approx(0.05, rel=0.05)


def _release_align_loss(audio_embedding, text_embedding, tau1, tau2):
    """MixITBaseModel.align_loss of modules/separator.py, restated (tau2 is its log inverse temperature)."""
    import torch.nn.functional as F

    B, M, D = audio_embedding.shape
    text_embedding = F.normalize(text_embedding, dim=-1)
    audio_embedding = F.normalize(audio_embedding, dim=-1)
    logits = (torch.matmul(audio_embedding, text_embedding.transpose(1, 2)) * tau1).softmax(dim=-1)
    text_embedding = torch.matmul(logits, text_embedding)
    text_embedding = F.normalize(text_embedding.reshape(B, M, D), dim=-1)
    sim1 = torch.matmul(audio_embedding, text_embedding.transpose(1, 2)) * tau2.exp()
    sim2 = sim1.transpose(1, 2)
    gt = torch.arange(M).unsqueeze(0).expand(B, M)
    return (F.cross_entropy(sim1, gt) + F.cross_entropy(sim2, gt)) / 2.0


def test_release_prompts_and_their_loss_are_the_releases():
    from macs_model.separation.alignment import ClapAlignment, release_prompts
    from macs_model.separation.clap import TinyClap
    from macs_model.separation.losses import contrastive_loss

    assert release_prompts(["Electric_guitar", "Speech"]) == [
        "The sound of electric guitar", "The sound of speech", "Noise", "Noise", "Noise"]
    assert len(release_prompts([f"L{i}" for i in range(8)])) == 5
    align = ClapAlignment(TinyClap(), 6, prompts="release")
    batch = {"labels": [["Dog"], ["Rain", "Wind"], ["Bird"]], "mixture": torch.zeros(3, 10)}
    prompts = align.prompts(batch)
    assert prompts[1] == release_prompts(["Rain", "Wind"]) + release_prompts(["Dog"])  # clip b, then clip b - 1
    assert prompts[0] == release_prompts(["Dog"]) + release_prompts(["Bird"]) and len(prompts[2]) == 10
    gen = torch.Generator().manual_seed(0)
    # 10 unit-norm prompts (every encoder's embed_text normalises) soft-assigned onto 6 sources
    audio = torch.randn(4, 6, 16, generator=gen)
    text = torch.nn.functional.normalize(torch.randn(4, 10, 16, generator=gen), dim=-1)
    scale = torch.tensor(math.log(1 / 0.07))
    expected = _release_align_loss(audio, text, 100.0, scale)
    assert contrastive_loss(audio, text, scale, tau=0.01).item() == pytest.approx(expected.item(), rel=1e-5)
    assert TrainConfig.preset("paper").prompts == "release" and TrainConfig.preset("tiny").prompts == "interleaved"


def test_release_prompts_train_the_sources():
    from macs_model.separation.alignment import ClapAlignment
    from macs_model.separation.clap import TinyClap

    align = ClapAlignment(TinyClap(), 6, prompts="release")
    sources = (0.1 * torch.randn(2, 6, 16000, generator=torch.Generator().manual_seed(1))).requires_grad_()
    batch = {"labels": [["Dog", "Bark"], ["Rain"]], "mixture": sources.detach().sum(1)}
    l_cl, l_rank = align(sources, batch)
    assert torch.isfinite(l_cl) and l_cl > 0
    (l_cl + l_rank).backward()
    assert sources.grad.abs().sum() > 0 and align.logit_scale.grad is not None
