"""Stage 1 for users (separation.api and the macs-model CLI): train_separator on a toy manifest + MEDIA, resume,
exact resume with the CLAP alignment, separate() and load_separator. TinyClap ("--clap tiny") throughout."""

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from macs_bench.datasets import Manifest, Sample
from macs_bench.errors import MacsError
from macs_model.run_folder import TIMING_FIELDS, latest_checkpoint
from macs_model.separation import api as stage1
from macs_model.separation import training
from macs_model.separation.alignment import LOGIT_SCALE_INIT, ClapAlignment
from macs_model.separation.api import load_separator, separate, train_separator
from macs_model.separation.clap import TinyClap
from macs_model.separation.config import SeparatorConfig
from macs_model.separation.data import ClipDataset, load_audio
from macs_model.separation.separator import build_separator
from macs_model.separation.train_config import TrainConfig
from macs_model.separation.training import train

SR = 16000
SECONDS = 2
CLIPS = 16
M = SeparatorConfig.preset("tiny").num_sources
BIN = Path(sys.executable).parent
TINY_PROVENANCE = TinyClap().provenance()


# --- toy data --------------------------------------------------------------------------------------------------

def _clip(i, rng):
    t = np.arange(SECONDS * SR) / SR
    if i % 2 == 0:
        x = 0.3 * np.sin(2 * np.pi * (220 + 40 * i) * t)
        return x, ["Tone"]
    spec = np.fft.rfft(rng.standard_normal(len(t)))
    freqs = np.fft.rfftfreq(len(t), 1 / SR)
    lo = 1000 + 300 * i
    x = np.fft.irfft(spec * ((freqs >= lo) & (freqs <= lo + 1500)), n=len(t))
    x = 0.2 * x / np.abs(x).max() + 0.05 * np.sin(2 * np.pi * 60 * t)
    return x, ["Noise burst", "Hum"]


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """A manifest of CLIPS + 1 samples (the last one without audio) and its MEDIA folder."""
    root = tmp_path_factory.mktemp("toy")
    media = root / "media"
    (media / "audio").mkdir(parents=True)
    rng = np.random.default_rng(0)
    samples = []
    for i in range(CLIPS):
        x, labels = _clip(i, rng)
        sf.write(media / "audio" / f"clip{i:02d}.wav", x.astype(np.float32), SR, subtype="FLOAT")
        samples.append(Sample(f"clip{i:02d}", tuple(labels), "train"))
    samples.append(Sample("absent", ("Tone",), "train"))
    Manifest("toy", samples).write(root / "manifest")
    return root / "manifest", media


def _train(toy, out, **kwargs):
    manifest, media = toy
    options = dict(preset="tiny", clap="tiny", steps=4, progress=False)
    options.update(kwargs)
    return train_separator(str(manifest), media, out, **options)


def _metrics(out):
    return [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]


def _run_info(out):
    return json.loads((Path(out) / "config.json").read_text())


@pytest.fixture(scope="module")
def run(toy, tmp_path_factory):
    """A 4-step tiny run with both alignment losses; shared, never modified (tests copy it)."""
    out = tmp_path_factory.mktemp("run") / "run"
    summary = _train(toy, out)
    return out, summary


@pytest.fixture(scope="module")
def ablations(toy, tmp_path_factory):
    """One-step runs of each ablation: contrastive off, ranking off."""
    root = tmp_path_factory.mktemp("ablations")
    outs = {}
    for name, flags in (("no-cl", dict(contrastive=False)), ("no-rank", dict(ranking=False))):
        outs[name] = root / name
        _train(toy, outs[name], steps=1, **flags)
    return outs


def _copy_run(run, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(run[0], out)
    return out


# --- train_separator -------------------------------------------------------------------------------------------

def test_run_folder_records_what_it_used(run, toy):
    out, summary = run
    assert summary["step"] == 4 and summary["total_steps"] == 4
    assert summary["clips"] == CLIPS and summary["missing_audio"] == 1
    assert Path(summary["checkpoint"]) == out / "checkpoint-4" == latest_checkpoint(out)
    config = _run_info(out)
    info = config["run_info"]
    assert info["preset"] == "tiny"
    assert info["data"] == {"source": str(toy[0]), "media": str(toy[1]), "clips": CLIPS, "missing_audio": 1}
    assert info["alignment"] == {"contrastive": True, "ranking": True, "clap": TINY_PROVENANCE}
    assert info["clap"] == TINY_PROVENANCE
    assert {"macs", "torch", "accelerate", "safetensors", "numpy", "python"} <= set(config["versions"])
    assert SeparatorConfig.from_dict(config["separator_config"]) == SeparatorConfig.preset("tiny")
    assert TrainConfig.from_dict(config["train_config"]) == TrainConfig.preset("tiny", steps=4, epochs=None)
    state = json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["run_info"] == info
    scale = load_file(str(out / "checkpoint-4" / "extra_parameters.safetensors"))["extra.0"]
    assert scale.shape == () and scale.item() != pytest.approx(LOGIT_SCALE_INIT, abs=1e-7)


def test_ramp_override_turns_the_papers_loss_ramp_on_for_the_tiny_preset(run, toy, tmp_path):
    """2 epochs of 2 steps: the ramp ends on alignment only; the tiny preset's own run keeps reconstruction."""
    out = tmp_path / "ramp"
    _train(toy, out, ramp=True)
    assert TrainConfig.from_dict(_run_info(out)["train_config"]) == TrainConfig.preset(
        "tiny", steps=4, epochs=None, ramp=True)
    (last,) = _metrics(out)
    assert (last["w_rec"], last["w_cl"], last["w_rank"]) == (0.0, 1.0, 1.0)
    assert _metrics(run[0])[-1]["w_rec"] == 1.0


def test_metrics_have_both_alignment_terms(run):
    (last,) = _metrics(run[0])  # the tiny preset logs every 10 steps and at the end
    assert last["step"] == 4
    assert last["cl"] > 0 and last["rank"] > 0
    assert last["w_cl"] == 1.0 and last["w_rank"] == 1.0
    assert all(math.isfinite(last[k]) for k in ("loss", "rec", "cl", "rank"))
    assert last["loss"] == pytest.approx(last["rec"] + last["cl"] + last["rank"], rel=1e-5, abs=1e-5)


def test_contrastive_ablation_zeroes_its_term(ablations):
    (last,) = _metrics(ablations["no-cl"])
    assert last["cl"] == 0.0 and last["rank"] > 0
    assert last["loss"] == pytest.approx(last["rec"] + last["rank"], rel=1e-5, abs=1e-5)
    info = _run_info(ablations["no-cl"])["run_info"]["alignment"]
    assert info == {"contrastive": False, "ranking": True, "clap": TINY_PROVENANCE}
    assert not (ablations["no-cl"] / "checkpoint-1" / training.EXTRA_FILE).exists()  # no temperature to learn


def test_ranking_ablation_zeroes_its_term(ablations):
    (last,) = _metrics(ablations["no-rank"])
    assert last["rank"] == 0.0 and last["cl"] > 0
    assert last["loss"] == pytest.approx(last["rec"] + last["cl"], rel=1e-5, abs=1e-5)
    info = _run_info(ablations["no-rank"])["run_info"]["alignment"]
    assert info == {"contrastive": True, "ranking": False, "clap": TINY_PROVENANCE}


def test_ablated_terms_are_logged_with_zero_weight(ablations):
    (no_cl,) = _metrics(ablations["no-cl"])
    (no_rank,) = _metrics(ablations["no-rank"])
    assert no_cl["w_cl"] == 0.0 and no_cl["w_rank"] == 1.0
    assert no_rank["w_rank"] == 0.0 and no_rank["w_cl"] == 1.0
    assert _run_info(ablations["no-cl"])["train_config"]["mu"] == 0.0


def test_waveform_kind_trains(toy, tmp_path):
    summary = _train(toy, tmp_path / "wave", kind="waveform", steps=1)
    assert summary["step"] == 1
    config = _run_info(tmp_path / "wave")
    assert config["separator_config"] == SeparatorConfig.preset("tiny-waveform").to_dict()
    (last,) = _metrics(tmp_path / "wave")
    assert math.isfinite(last["loss"]) and last["cl"] > 0 and last["rank"] > 0
    loaded = load_separator(tmp_path / "wave")
    assert loaded.config.kind == "waveform" and type(loaded.model).__name__ == "WaveformSeparator"


def test_both_ablations_train_mixit_only_without_clap(toy, tmp_path, monkeypatch):
    def no_clap(*args, **kwargs):
        raise AssertionError("CLAP must not be loaded without alignment losses")

    monkeypatch.setattr(stage1, "open_encoder", no_clap)
    summary = _train(toy, tmp_path / "mixit", contrastive=False, ranking=False, steps=1)
    assert summary["step"] == 1
    info = _run_info(tmp_path / "mixit")["run_info"]
    assert info["alignment"] == {"contrastive": False, "ranking": False, "clap": None}
    assert info["clap"] is None
    (last,) = _metrics(tmp_path / "mixit")
    assert last["cl"] == 0.0 and last["rank"] == 0.0 and last["w_cl"] == 0.0 and last["w_rank"] == 0.0
    assert last["loss"] == pytest.approx(last["rec"])
    assert not (tmp_path / "mixit" / "checkpoint-1" / training.EXTRA_FILE).exists()


# --- resume ----------------------------------------------------------------------------------------------------

def test_rerun_continues_an_interrupted_run(toy, tmp_path, monkeypatch):
    real_train = training.train

    def interrupted(model, dataset, config, out_dir, **kwargs):
        # the cadence fields may differ on resume: checkpoint and log every step, stop after 1 of the 2 steps
        return real_train(model, dataset, config.replace(checkpoint_every=1, log_every=1), out_dir,
                          stop_at_step=1, **kwargs)

    clamps = []
    real_after_step = ClapAlignment.after_step

    def counted_after_step(self):
        clamps.append(self.logit_scale.item())
        real_after_step(self)

    monkeypatch.setattr(ClapAlignment, "after_step", counted_after_step)
    out = tmp_path / "run"
    monkeypatch.setattr(training, "train", interrupted)
    first = _train(toy, out, steps=2)
    monkeypatch.setattr(training, "train", real_train)
    assert first["step"] == 1 and latest_checkpoint(out).name == "checkpoint-1"
    before = _metrics(out)
    assert [m["step"] for m in before] == [1]
    second = _train(toy, out, steps=2)  # same settings: picks up at step 1
    assert second["step"] == 2 and latest_checkpoint(out).name == "checkpoint-2"
    after = _metrics(out)
    assert [m["step"] for m in after] == [1, 2]
    assert after[:1] == before  # earlier lines kept
    assert after[1]["cl"] > 0 and after[1]["rank"] > 0
    again = _train(toy, out, steps=2)  # a finished run: nothing left to do
    assert again["step"] == 2 and _metrics(out) == after
    assert len(clamps) == 2  # the temperature is clamped after each optimiser step actually taken


def test_rerun_with_more_steps_is_refused(run, toy, tmp_path):
    """The cosine schedule spans the whole run: a longer rerun could not match an uninterrupted one."""
    out = _copy_run(run, tmp_path)
    before = _metrics(out)
    with pytest.raises(MacsError, match=r"cannot resume.*\(fields: steps\)"):
        _train(toy, out, steps=6)
    assert _metrics(out) == before


def test_rerun_with_another_ablation_is_refused(run, toy, tmp_path):
    out = _copy_run(run, tmp_path)
    for flags in (dict(contrastive=False), dict(ranking=False)):
        with pytest.raises(MacsError, match="cannot resume"):
            _train(toy, out, **flags)
    assert latest_checkpoint(out).name == "checkpoint-4"
    assert _metrics(out) == _metrics(run[0])


def test_resume_false_starts_over(run, toy, tmp_path):
    out = _copy_run(run, tmp_path)
    summary = _train(toy, out, steps=1, contrastive=False, resume=False)
    assert summary["step"] == 1 and latest_checkpoint(out).name == "checkpoint-1"
    assert [m["step"] for m in _metrics(out)] == [1]
    assert _run_info(out)["run_info"]["alignment"]["contrastive"] is False


def _assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def test_exact_resume_with_alignment(toy, tmp_path):
    """Random crops + TinyClap alignment + learned temperature: stop at 2, resume to 4 == 4 straight."""
    _, media = toy
    entries = [(f"clip{i:02d}", ("Tone",) if i % 2 == 0 else ("Noise burst", "Hum")) for i in range(CLIPS)]
    config = TrainConfig.preset("tiny", steps=4, batch_size=2, grad_accum=2, lr=1e-3, warmup_steps=2,
                                checkpoint_every=2, log_every=1, seed=3)
    sep = SeparatorConfig.preset("tiny")

    def run_once(out, model_seed=0, **kwargs):
        dataset = ClipDataset(entries, media, SR, 4000, crop="random")  # 0.25 s crops of 2 s files
        align = ClapAlignment(TinyClap(input_rate=SR), sep.num_sources)
        torch.manual_seed(model_seed)
        model = build_separator(sep)
        summary = train(model, dataset, config, out, align_loss=align, device="cpu", progress=False,
                        extra_parameters=align.trainable(), after_step=align.after_step,
                        run_info={"alignment": {"contrastive": True, "ranking": True}}, **kwargs)
        return model, align, summary

    straight_model, straight_align, summary = run_once(tmp_path / "straight")
    assert summary["step"] == 4
    _, _, first = run_once(tmp_path / "resumed", stop_at_step=2)
    assert first["step"] == 2 and latest_checkpoint(tmp_path / "resumed").name == "checkpoint-2"
    resumed_model, resumed_align, second = run_once(tmp_path / "resumed", model_seed=123)
    assert second["step"] == 4
    _assert_same_weights(straight_model, resumed_model)
    assert torch.equal(straight_align.logit_scale, resumed_align.logit_scale)
    assert straight_align.logit_scale.item() != LOGIT_SCALE_INIT  # it was trained
    strip = [{k: v for k, v in m.items() if k not in TIMING_FIELDS} for m in _metrics(tmp_path / "straight")]
    assert [{k: v for k, v in m.items() if k not in TIMING_FIELDS} for m in _metrics(tmp_path / "resumed")] == strip
    assert [m["step"] for m in strip] == [1, 2, 3, 4] and all(m["cl"] > 0 and m["rank"] > 0 for m in strip)


# --- separate and load_separator -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def input_wav(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    t = np.arange(int(1.3 * SR)) / SR
    rng = np.random.default_rng(5)
    x = 0.3 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.standard_normal(len(t))
    path = folder / "street.wav"
    sf.write(path, x.astype(np.float32), SR, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def separated(run, input_wav, tmp_path_factory):
    out = tmp_path_factory.mktemp("separated")
    records = separate([input_wav], run[0], out, clap="tiny", device="cpu", progress=False)
    return out / "street", records


def _stems(folder):
    return [sf.read(folder / f"source-{k}.wav", dtype="float32")[0] for k in range(1, M + 1)]


def test_separate_writes_m_stems_that_sum_to_the_input(separated, input_wav):
    folder, records = separated
    assert sorted(p.name for p in folder.iterdir()) == sorted([f"source-{k}.wav" for k in range(1, M + 1)]
                                                              + ["separation.json"])
    for k in range(1, M + 1):
        info = sf.info(str(folder / f"source-{k}.wav"))
        assert info.samplerate == SR and info.channels == 1
    stems = _stems(folder)
    mixture = load_audio(input_wav, SR).numpy()
    assert all(s.shape == mixture.shape for s in stems)
    np.testing.assert_allclose(np.sum(stems, axis=0), mixture, atol=1e-5)
    assert min(np.abs(s).max() for s in stems) > 0  # no silent placeholder stems
    record = json.loads((folder / "separation.json").read_text())
    assert records == [record]
    assert record["input_sha256"] == hashlib.sha256(input_wav.read_bytes()).hexdigest()
    assert record["samples"] == len(mixture) and record["sample_rate"] == SR
    assert record["clap"] == TINY_PROVENANCE


def test_separation_json_orders_stems_by_clap_similarity(separated, input_wav, run):
    folder, _ = separated
    record = json.loads((folder / "separation.json").read_text())
    stems = record["stems"]
    assert [s["rank"] for s in stems] == list(range(1, M + 1))
    assert [s["file"] for s in stems] == [f"source-{k}.wav" for k in range(1, M + 1)]
    assert sorted(s["slot"] for s in stems) == list(range(M))
    sims = [s["clap_similarity"] for s in stems]
    assert sims == sorted(sims, reverse=True)
    # recompute: TinyClap embeddings of the written stems against the input
    clap = TinyClap(input_rate=SR)
    audio = torch.from_numpy(np.stack(_stems(folder)))
    mixture = load_audio(input_wav, SR)
    expected = clap.embed_audio(audio) @ clap.embed_audio(mixture[None])[0]
    np.testing.assert_allclose(sims, expected.numpy(), atol=2e-6)
    # and the slot is the separator output the stem came from
    loaded = load_separator(run[0])
    assert record["checkpoint"] == {"source": loaded.source, "sha256": loaded.sha256}
    with torch.no_grad():
        sources = loaded.model(mixture[None])[0].numpy()
    for s, stem in zip(stems, audio.numpy()):
        np.testing.assert_allclose(stem, sources[s["slot"]], atol=1e-6)


def test_separate_skips_done_inputs_and_overwrite_redoes(run, input_wav, tmp_path):
    out = tmp_path / "out"
    separate([input_wav], run[0], out, clap="tiny", device="cpu", progress=False)
    files = sorted((out / "street").iterdir())
    past = 1_000_000_000
    for f in files:
        os.utime(f, (past, past))
    separate([input_wav], run[0], out, clap="tiny", device="cpu", progress=False)
    assert all(f.stat().st_mtime == past for f in files)
    separate([input_wav], run[0], out, clap="tiny", device="cpu", progress=False, overwrite=True)
    assert all(f.stat().st_mtime != past for f in files)
    (out / "street" / "source-3.wav").unlink()  # a lost stem is written again on the next run
    separate([input_wav], run[0], out, clap="tiny", device="cpu", progress=False)
    assert (out / "street" / "source-3.wav").is_file()


def test_separate_errors_name_the_problem(run, input_wav, tmp_path):
    missing = tmp_path / "nowhere.wav"
    with pytest.raises(MacsError, match=r"nowhere\.wav: audio file not found"):
        separate([input_wav, missing], run[0], tmp_path / "o", clap="tiny", progress=False)
    twin = tmp_path / "other" / "street.wav"
    twin.parent.mkdir()
    shutil.copy(input_wav, twin)
    with pytest.raises(MacsError, match="share the name 'street'"):
        separate([input_wav, twin], run[0], tmp_path / "o", clap="tiny", progress=False)
    with pytest.raises(MacsError, match=r"no-such-run: no such run folder"):
        separate([input_wav], tmp_path / "no-such-run", tmp_path / "o", clap="tiny", progress=False)
    empty = tmp_path / "empty-run"
    empty.mkdir()
    with pytest.raises(MacsError, match=r"empty-run: no checkpoint yet"):
        separate([input_wav], empty, tmp_path / "o", clap="tiny", progress=False)
    assert not (tmp_path / "o").exists()


def test_load_separator_from_checkpoint_or_run_folder(run):
    out, _ = run
    by_run = load_separator(out)
    by_checkpoint = load_separator(out / "checkpoint-4")
    assert by_run.source == by_checkpoint.source == str(out / "checkpoint-4")
    assert by_run.sha256 == by_checkpoint.sha256
    assert by_run.config == by_checkpoint.config == SeparatorConfig.preset("tiny")
    _assert_same_weights(by_run.model, by_checkpoint.model)
    assert not by_run.model.training
    torch.manual_seed(0)
    fresh = build_separator(SeparatorConfig.preset("tiny"))  # the run's initial weights: training moved them
    assert any(not torch.equal(a, b) for a, b in zip(fresh.state_dict().values(),
                                                     by_run.model.state_dict().values()))


# --- CLI -------------------------------------------------------------------------------------------------------

def _cli(*args, cwd=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([str(BIN / "macs-model"), *map(str, args)], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=300)


@pytest.mark.slow
def test_cli_train_then_separate(toy, input_wav, tmp_path):
    manifest, media = toy
    out = tmp_path / "run"
    result = _cli("train", "separator", "--manifest", manifest, "--media", media, "--out", out, "--preset", "tiny",
                  "--clap", "tiny", "--steps", 2)
    assert result.returncode == 0, result.stderr
    assert f"checkpoint: {out / 'checkpoint-2'}" in result.stdout
    assert "trained 2/2 steps on 16 clips (1 manifest samples without audio skipped)" in result.stdout
    assert latest_checkpoint(out).name == "checkpoint-2"
    sep_out = tmp_path / "sep"
    result = _cli("separate", input_wav, "--checkpoint", out, "--out", sep_out, "--clap", "tiny", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    record = json.loads((sep_out / "street" / "separation.json").read_text())
    assert record["checkpoint"]["source"] == str(out / "checkpoint-2") and len(record["stems"]) == M


@pytest.mark.parametrize("args, message", [
    (["--manifest", "/nonexistent"], "/nonexistent: neither 'fsd50k' nor a folder"),
    (["--kind", "conv"], "'conv' is not one of 'stft-unet', 'waveform'"),
])
def test_cli_train_errors_are_one_line(toy, tmp_path, args, message):
    manifest, media = toy
    base = {"--manifest": manifest, "--media": media, "--out": tmp_path / "run", "--preset": "tiny", "--clap": "tiny",
            "--steps": 1}
    base.update(dict(zip(args[::2], args[1::2])))
    result = _cli("train", "separator", *[x for pair in base.items() for x in pair])
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], result.stderr
    assert not (tmp_path / "run" / "checkpoint-1").exists()
