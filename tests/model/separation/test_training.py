import json
import math
import re
import time

import pytest
import torch
from safetensors.torch import load_file

from macs_bench.errors import MacsError
from macs_model.run_folder import LATEST, METRICS, TIMING_FIELDS, latest_checkpoint
from macs_model.run_loop import cosine_with_warmup, epoch_order
from macs_model.separation.config import SeparatorConfig
from macs_model.separation.losses import mixit_loss, si_sdr
from macs_model.separation.separator import build_separator
from macs_model.separation.train_config import TrainConfig
from macs_model.separation.training import make_mixture_of_mixtures, train

SR = SeparatorConfig.preset("tiny").sample_rate  # 16 kHz
CLIP = SR // 2  # 0.5 s clips: the tiny separator resamples its time embedding, so any length runs


def _model(seed=0, **overrides):
    torch.manual_seed(seed)
    return build_separator(SeparatorConfig.preset("tiny", **overrides))


def _noise_dataset(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [0.3 * torch.randn(CLIP, generator=g) for _ in range(n)]


def _config(**overrides):
    base = dict(steps=6, batch_size=2, grad_accum=2, lr=1e-3, warmup_steps=2, checkpoint_every=3, log_every=1,
                seed=7)
    base.update(overrides)
    return TrainConfig.preset("tiny", **base)


def _metrics(out_dir):
    lines = [json.loads(line) for line in (out_dir / METRICS).read_text().splitlines()]
    return [{k: v for k, v in line.items() if k not in TIMING_FIELDS} for line in lines]


def _assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    """6 optimiser steps in one call (16 clips, batch 2 x accum 2: 4 steps per epoch, so it crosses an epoch)."""
    out = tmp_path_factory.mktemp("straight")
    model = _model()
    summary = train(model, _noise_dataset(), _config(), out, device="cpu", progress=False)
    return model, out, summary


def test_config_presets_and_schedule():
    paper = TrainConfig.preset("paper")
    assert (paper.batch_size, paper.grad_accum, paper.epochs, paper.lr) == (8, 2, 10, 1e-3)
    assert (paper.weight_decay, paper.betas) == (1e-2, (0.9, 0.999))
    assert TrainConfig.from_dict(json.loads(json.dumps(paper.to_dict()))) == paper
    assert paper.total_steps(1000) == 10 * (1000 // 16)
    with pytest.raises(MacsError, match="unknown train preset"):
        TrainConfig.preset("huge")
    with pytest.raises(MacsError, match="at least 16 clips"):
        paper.steps_per_epoch(15)
    assert cosine_with_warmup(0, 100, 10, 0.0) == pytest.approx(0.1)
    assert cosine_with_warmup(9, 100, 10, 0.0) == pytest.approx(1.0)
    assert cosine_with_warmup(10, 100, 10, 0.0) == pytest.approx(1.0)
    assert cosine_with_warmup(55, 100, 10, 0.0) == pytest.approx(0.5)
    assert cosine_with_warmup(100, 100, 10, 0.1) == pytest.approx(0.1)
    assert torch.equal(epoch_order(16, 3, 2), epoch_order(16, 3, 2))
    assert not torch.equal(epoch_order(16, 3, 2), epoch_order(16, 3, 1))


def test_mixture_of_mixtures_is_cyclic_shift():
    x = torch.arange(6.0).view(3, 2)
    mixture, mix1, mix2 = make_mixture_of_mixtures(x)
    assert torch.equal(mix1, x)
    assert torch.equal(mix2, x[[2, 0, 1]])
    assert torch.equal(mixture, x + x[[2, 0, 1]])


def test_exact_resume_matches_straight_run(straight_run, tmp_path):
    model, out, summary = straight_run
    assert summary["step"] == 6 and summary["steps_per_epoch"] == 4
    first = train(_model(), _noise_dataset(), _config(), tmp_path, device="cpu", progress=False, stop_at_step=3)
    assert first["step"] == 3
    assert latest_checkpoint(tmp_path).name == "checkpoint-3"
    resumed_model = _model(seed=123)  # a different init: everything must come from the checkpoint
    second = train(resumed_model, _noise_dataset(), _config(), tmp_path, device="cpu", progress=False)
    assert second["step"] == 6
    _assert_same_weights(model, resumed_model)
    straight, resumed = _metrics(out), _metrics(tmp_path)
    assert [m["step"] for m in straight] == [1, 2, 3, 4, 5, 6]
    assert resumed == straight
    assert all(math.isfinite(m["loss"]) and m["lr"] > 0 for m in straight)


def test_checkpoint_files_are_safe_formats(straight_run):
    model, out, _ = straight_run
    assert (out / LATEST).read_text().strip() == "checkpoint-6"
    ckpt = out / "checkpoint-6"
    weights = load_file(str(ckpt / "model.safetensors"))
    assert weights.keys() == model.state_dict().keys()
    for name in ("optimizer.pt", "scheduler.pt", "rng-0.pt"):
        torch.load(ckpt / name, weights_only=True)
    state = json.loads((ckpt / "trainer_state.json").read_text())
    assert state["step"] == 6
    assert SeparatorConfig.from_dict(state["separator_config"]) == SeparatorConfig.preset("tiny")
    assert TrainConfig.from_dict(state["train_config"]) == _config()
    assert "torch" in state["versions"]
    assert (out / "checkpoint-3").is_dir()
    assert json.loads((out / "config.json").read_text())["train_config"] == _config().to_dict()
    assert not list(out.glob(".checkpoint-*"))


def test_partial_checkpoint_without_pointer_is_ignored(straight_run, tmp_path):
    model, _, _ = straight_run
    train(_model(), _noise_dataset(), _config(), tmp_path, device="cpu", progress=False, stop_at_step=3)
    # a crash while writing checkpoint-6: the directory exists (garbage) but `latest` still names checkpoint-3
    broken = tmp_path / "checkpoint-6"
    broken.mkdir()
    (broken / "model.safetensors").write_bytes(b"\x00truncated")
    (broken / "trainer_state.json").write_text('{"step": 6')
    (tmp_path / ".checkpoint-6.tmp").mkdir()
    resumed_model = _model(seed=5)
    assert train(resumed_model, _noise_dataset(), _config(), tmp_path, device="cpu", progress=False)["step"] == 6
    _assert_same_weights(model, resumed_model)
    assert (tmp_path / LATEST).read_text().strip() == "checkpoint-6"
    assert load_file(str(tmp_path / "checkpoint-6" / "model.safetensors")).keys() == model.state_dict().keys()


def test_resume_refuses_config_mismatch(tmp_path):
    train(_model(), _noise_dataset(), _config(), tmp_path, device="cpu", progress=False, stop_at_step=3)
    hint = re.escape("; use another output folder, or start over (restart)")
    with pytest.raises(MacsError, match=r"cannot resume: the checkpoint's separator config differs from this "
                                        r"run's \(fields: num_sources\)" + hint):
        train(_model(num_sources=4), _noise_dataset(), _config(), tmp_path, device="cpu", progress=False)
    with pytest.raises(MacsError, match=r"cannot resume: the checkpoint's train config differs from this run's "
                                        r"\(fields: lr, seed\)" + hint):
        train(_model(), _noise_dataset(), _config(lr=2e-3, seed=5), tmp_path, device="cpu", progress=False)
    with pytest.raises(MacsError, match=r"cannot resume: the checkpoint's run info differs from this run's "
                                        r"\(fields: alignment\)" + hint):
        train(_model(), _noise_dataset(), _config(), tmp_path, device="cpu", progress=False,
              run_info={"alignment": {"contrastive": True}})
    # cadence fields may change; resume=False starts over
    train(_model(), _noise_dataset(), _config(log_every=2), tmp_path, device="cpu", progress=False, stop_at_step=4)
    summary = train(_model(), _noise_dataset(), _config(), tmp_path, device="cpu", progress=False, resume=False,
                    stop_at_step=1)
    assert summary["step"] == 1 and latest_checkpoint(tmp_path) is None  # the old run's pointer is dropped


def test_align_loss_callback_is_weighted(tmp_path):
    calls = []
    scale = torch.nn.Parameter(torch.tensor(1.0))

    def align(sources, batch):
        calls.append((tuple(sources.shape), sorted(batch), scale.item()))
        return scale * sources.pow(2).mean(), torch.zeros(())

    def clamp():
        with torch.no_grad():
            scale.clamp_(0.5, 2.0)

    summary = train(_model(), _noise_dataset(), _config(steps=2, mu=0.5, checkpoint_every=1), tmp_path,
                    align_loss=align, device="cpu", progress=False, extra_parameters=[scale], after_step=clamp,
                    stop_at_step=1)
    assert summary["step"] == 1 and len(calls) == 2
    assert calls[0][0] == (2, 6, CLIP)
    assert {"audio", "mixture", "mix1", "mix2"} <= set(calls[0][1])
    assert scale.item() != 1.0 and 0.5 <= scale.item() <= 2.0
    saved = load_file(str(tmp_path / "checkpoint-1" / "extra_parameters.safetensors"))["extra.0"]
    assert torch.equal(saved, scale.detach())
    trained = scale.item()
    with torch.no_grad():
        scale.fill_(1.0)  # a fresh process: the extra parameter comes back from the checkpoint
    calls.clear()
    train(_model(), _noise_dataset(), _config(steps=2, mu=0.5, checkpoint_every=1), tmp_path,
          align_loss=align, device="cpu", progress=False, extra_parameters=[scale], after_step=clamp)
    assert len(calls) == 2 and calls[0][2] == trained  # step 2 starts from the checkpointed value
    last = _metrics(tmp_path)[-1]
    assert last["step"] == 2
    assert last["loss"] == pytest.approx(last["rec"] + 0.5 * last["cl"], rel=1e-5)


# --- learning signal ------------------------------------------------------------------------------------------

CLASSES = 4


def _source(cls, g):
    """One 0.5 s source of a class with a distinct spectrum: low harmonic tone, mid sinusoid, two noise bands."""
    t = torch.arange(CLIP) / SR
    amp = 0.3 + 0.7 * torch.rand((), generator=g)
    if cls == 0:
        f0 = 150 + 150 * torch.rand((), generator=g)
        x = sum(torch.sin(2 * math.pi * k * f0 * t + 6.28 * torch.rand((), generator=g)) / k for k in (1, 2, 3))
    elif cls == 1:
        f = 1000 + 500 * torch.rand((), generator=g)
        x = torch.sin(2 * math.pi * f * t + 6.28 * torch.rand((), generator=g))
    else:
        lo, hi = (3000, 4500) if cls == 2 else (5500, 7500)
        spec = torch.fft.rfft(torch.randn(CLIP, generator=g))
        freqs = torch.fft.rfftfreq(CLIP, 1 / SR)
        x = torch.fft.irfft(spec * ((freqs >= lo) & (freqs <= hi)), n=CLIP)
    return amp * x / x.pow(2).mean().sqrt()


def _tone_clips(n, seed):
    g = torch.Generator().manual_seed(seed)
    return [_source(i % CLASSES, g) for i in range(n)]


@torch.no_grad()
def _heldout_sdr(model, clips):
    """Mean SI-SDR (dB) of the best-assigned remixes against mix1 and mix2 on held-out mixtures of mixtures."""
    model.eval()
    batch = torch.stack(clips)  # classes cycle 0..3, so each clip is mixed with one of another class
    mixture, mix1, mix2 = make_mixture_of_mixtures(batch)
    sources = model(mixture)
    _, best = mixit_loss(sources, mix1, mix2)
    remix1 = (sources * best[..., None]).sum(1)
    remix2 = (sources * ~best[..., None]).sum(1)
    model.train()
    return torch.cat([si_sdr(remix1, mix1), si_sdr(remix2, mix2)]).mean().item()


@pytest.mark.slow
def test_tiny_separator_learns_to_separate(tmp_path):
    model = _model()
    heldout = _tone_clips(32, seed=999)
    before = _heldout_sdr(model, heldout)
    data = _tone_clips(256, seed=1)
    started = time.perf_counter()
    config = TrainConfig.preset("tiny", checkpoint_every=1000)
    summary = train(model, data, config, tmp_path, device="cpu", progress=False)
    seconds = time.perf_counter() - started
    after = _heldout_sdr(model, heldout)
    print(f"held-out SI-SDR {before:.2f} dB -> {after:.2f} dB (+{after - before:.2f}) in {summary['step']} "
          f"steps, {seconds:.0f} s")
    assert after - before >= 3.0


def test_training_refuses_a_missing_device_before_writing(tmp_path):
    with pytest.raises(MacsError, match="device cuda:99"):
        train(_model(), _noise_dataset(), _config(), tmp_path / "run", device="cuda:99", progress=False)
    assert not (tmp_path / "run").exists()
