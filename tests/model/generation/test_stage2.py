"""Stage 2 for users (generation.api and the macs-model CLI): folds, the per-clip embedding cache, and
train_generator + generate end to end on a toy manifest + MEDIA with a tiny stage-1 run (TinyClap) and the tiny
random SD. The stage-1 run and one stage-2 run are built once per module; tests that write copy or use tmp_path."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from stage2_helpers import SR, max_diff, png

from macs_bench.datasets import Manifest, Sample
from macs_bench.errors import MacsError
from macs_model.generation.api import LATENTS, check_no_leak, fold_ids, generate, train_generator
from macs_model.generation.conditioning import EMBEDDINGS, Conditioner
from macs_model.generation.config import GeneratorConfig
from macs_model.separation.clap import TinyClap
from macs_model.separation.data import load_audio

pytest.importorskip("diffusers")

BIN = Path(sys.executable).parent
M = 6            # the tiny separator's sources
D = 32           # TinyClap's embedding width
FOLD0 = ["clip00", "clip05", "clip10"]  # fold 0 with media ("absent" is fold 0 too, without any)
TRAIN = [f"clip{i:02d}" for i in range(15) if i % 5]


def _manifest(folder: Path, samples) -> Path:
    Manifest("t", list(samples)).write(folder)
    return folder


# --- folds -------------------------------------------------------------------------------------------------------

def test_fold_k_is_held_out_and_the_others_train(tmp_path):
    ids = [f"s{i}" for i in range(9)]
    manifest = _manifest(tmp_path / "m", (Sample(sid, ("x",), "", fold=i % 3) for i, sid in enumerate(ids)))
    assert fold_ids(manifest, 1) == (["s0", "s2", "s3", "s5", "s6", "s8"], ["s1", "s4", "s7"])
    assert fold_ids(manifest / "manifest.csv", 0) == (["s1", "s2", "s4", "s5", "s7", "s8"], ["s0", "s3", "s6"])
    with pytest.raises(MacsError, match=re.escape("no fold 7 (folds: 0, 1, 2)")):
        fold_ids(manifest, 7)
    with pytest.raises(MacsError, match=re.escape("no train/test split column; choose a fold")):
        fold_ids(manifest, None)  # folds but no split: a fold is needed


def test_split_column_decides_without_a_fold(tmp_path):
    splits = ["train", "test", "train", "train", "test"]
    manifest = _manifest(tmp_path / "m", (Sample(f"s{i}", ("x",), s) for i, s in enumerate(splits)))
    assert fold_ids(manifest, None) == (["s0", "s2", "s3"], ["s1", "s4"])
    with pytest.raises(MacsError, match=re.escape("no fold 0 (folds: none)")):
        fold_ids(manifest, 0)
    only_train = _manifest(tmp_path / "t", (Sample(f"s{i}", ("x",), "train") for i in range(3)))
    with pytest.raises(MacsError, match="no train/test split column"):
        fold_ids(only_train, None)


# --- the conditioner and its cache ---------------------------------------------------------------------------------

def _slot_embeddings(conditioner, audio):
    """TinyClap embeddings of the separated sources in slot order, and their similarity to ``audio``."""
    clap = TinyClap(input_rate=SR)
    with torch.no_grad():
        expected = clap.embed_audio(conditioner.loaded.model(audio[None])[0])
    return expected, expected @ clap.embed_audio(audio[None])[0]


def test_conditioner_keeps_slot_order_and_caches_each_clip(toy, separator, tmp_path, monkeypatch):
    conditioner = Conditioner(separator, device="cpu")  # the run recorded TinyClap: no --clap needed
    assert conditioner.num_tokens == M and conditioner.embed_dim == D
    assert conditioner.provenance["clap"] == TinyClap().provenance()
    assert conditioner.provenance["separator"]["source"] == str(separator / "checkpoint-3")
    ids = toy.ids[:3]
    real, calls = conditioner.embed_slots, []
    monkeypatch.setattr(conditioner, "embed_slots", lambda audio: calls.append(audio) or real(audio))
    first = conditioner.clips(ids, toy.media, tmp_path, progress=False)
    assert len(calls) == 3
    assert sorted(p.name for p in (tmp_path / conditioner.key).iterdir()) == [f"{sid}.safetensors" for sid in ids]

    def no_more(audio):
        raise AssertionError("embedded a clip again instead of reading the cache")

    monkeypatch.setattr(conditioner, "embed_slots", no_more)
    second = conditioner.clips(ids, toy.media, tmp_path, progress=False)
    assert list(second) == ids and all(torch.equal(first[s], second[s]) for s in ids)
    # the rows: TinyClap embeddings of the separated sources, in the separator's slot order (the release's)
    expected, similarity = _slot_embeddings(conditioner, load_audio(toy.media / "audio" / f"{ids[0]}.wav", SR))
    assert first[ids[0]].shape == (M, D)
    torch.testing.assert_close(first[ids[0]], expected, atol=1e-5, rtol=1e-5)
    # re-sorting is an option: most similar to the mixture first, from the same cache entries
    resorted = Conditioner(separator, device="cpu", token_order="similarity")
    monkeypatch.setattr(resorted, "embed_slots", no_more)
    ranked = resorted.clips(ids, toy.media, tmp_path, progress=False)[ids[0]]
    order = torch.argsort(similarity, descending=True, stable=True)
    assert order.tolist() != list(range(M)), "the toy clip's slots happen to be sorted already"
    torch.testing.assert_close(ranked, expected[order], atol=1e-5, rtol=1e-5)


def test_windows_are_cut_seeded_in_training_and_centred_at_generation(toy, separator, tmp_path):
    from macs_model.generation.audio_window import window_start
    from macs_model.generation.conditioning import training_windows

    conditioner = Conditioner(separator, device="cpu", window_seconds=1.5)
    window, sid = round(1.5 * SR), toy.ids[0]
    audio = load_audio(toy.media / "audio" / f"{sid}.wav", SR)
    config = GeneratorConfig.preset("tiny", steps=6, audio_seconds=1.5)
    starts = training_windows(config, 4, conditioner.window)
    drawn = starts(sid, audio.shape[-1])
    assert len(drawn) == 3  # 6 steps of 2 clips over 4 clips: 3 epochs, a window each
    assert drawn == starts(sid, audio.shape[-1]), "the windows must follow the run's seed, not the process"
    assert all(0 <= s <= audio.shape[-1] - window - 1 for s in drawn) and len(set(drawn)) > 1
    other_seed = training_windows(config.replace(seed=1), 4, conditioner.window)(sid, audio.shape[-1])
    assert other_seed != drawn
    got = conditioner.clips([sid], toy.media, tmp_path, starts=starts, progress=False)[sid]
    assert got.shape == (3, M, D) and conditioner.windows[sid] == drawn
    for row, start in zip(got, drawn):
        expected, _ = _slot_embeddings(conditioner, audio[start:start + window])
        torch.testing.assert_close(row, expected, atol=1e-5, rtol=1e-5)
    centre = conditioner.clips([sid], toy.media, tmp_path, progress=False)[sid]
    middle = (audio.shape[-1] - window) // 2
    assert conditioner.windows[sid] == [middle] == [window_start(audio.shape[-1], window, "centre")]
    torch.testing.assert_close(centre, _slot_embeddings(conditioner, audio[middle:middle + window])[0],
                               atol=1e-5, rtol=1e-5)


def test_short_clips_are_reflect_padded_as_the_release_pads():
    import numpy as np

    from macs_model.generation.audio_window import cut_window, window_start

    clip = torch.arange(5, dtype=torch.float32)
    assert window_start(5, 8, "random", seed=3, sample_id="x") == 0
    assert cut_window(clip, 8, 0).tolist() == np.pad(clip.numpy(), (0, 3), mode="reflect").tolist()
    assert cut_window(clip, 8, 0).tolist() == [0, 1, 2, 3, 4, 3, 2, 1]
    assert cut_window(torch.arange(20.0), 8, 5).tolist() == list(range(5, 13))


def test_no_separation_is_the_mixture_as_one_token(toy, tmp_path):
    conditioner = Conditioner(None, clap="tiny", no_separation=True, device="cpu")
    assert conditioner.num_tokens == 1 and conditioner.provenance["separator"] is None
    out = conditioner.clips(toy.ids[:2], toy.media, tmp_path, progress=False)
    assert out[toy.ids[0]].shape == (1, D)
    mixture = load_audio(toy.media / "audio" / f"{toy.ids[0]}.wav", SR)
    torch.testing.assert_close(out[toy.ids[0]], TinyClap(input_rate=SR).embed_audio(mixture[None]))


def test_cache_key_follows_the_separator_checkpoint(separator):
    latest = Conditioner(separator, device="cpu").key
    assert Conditioner(separator / "checkpoint-3", device="cpu").key == latest  # same weights, same key
    earlier = Conditioner(separator / "checkpoint-1", device="cpu").key
    plain = Conditioner(None, clap="tiny", no_separation=True, device="cpu").key
    assert len({latest, earlier, plain}) == 3
    with pytest.raises(MacsError, match=re.escape("stage 2 needs a separator (a stage-1 run) or no-separation")):
        Conditioner(None, clap="tiny")


# --- train_generator + generate ------------------------------------------------------------------------------------

def test_fold_0_gets_one_png_per_sample_with_audio(stage2, toy, separator):
    summary, record = stage2.summary, stage2.record
    assert summary["step"] == summary["total_steps"] == 4
    assert summary["train_samples"] == len(TRAIN) == 12 and summary["skipped_without_media"] == 0
    assert summary["adapter"] == str(stage2.run / "adapter")
    assert sorted(p.name for p in stage2.pred.iterdir()) == sorted([f"{s}.png" for s in FOLD0] + ["generation-fold0.json"])
    for sid in FOLD0:
        assert png(stage2.pred / f"{sid}.png").shape == (32, 32, 3)
    saved = json.loads((stage2.pred / "generation-fold0.json").read_text())
    assert saved == record
    info = json.loads((stage2.run / "config.json").read_text())["run_info"]
    assert record["adapter_run"] == str(stage2.run) and record["fold"] == 0 and record["top_k"] is None
    assert record["adapter"] == str(stage2.run / "adapter") and len(record["adapter_sha256"]) == 64
    assert record["versions"]["macs"]
    assert record["samples"] == 3 and record["skipped_without_audio"] == 1 and record["written_now"] == 3
    assert record["conditioning"] == info["conditioning"] and record["token_order"] == "slot"
    assert record["adapter_training"] == {"manifest": str(toy.manifest), "fold": 0, "imported": None}
    assert record["conditioning"]["no_separation"] is False
    assert record["conditioning"]["separator"]["source"] == str(separator / "checkpoint-3")
    config = GeneratorConfig.from_dict(record["generator_config"])
    assert config == GeneratorConfig.preset("tiny", num_tokens=M, clap_dim=D, steps=4, epochs=None)
    assert info["fold"] == 0 and info["train_samples"] == 12 and info["skipped_without_media"] == 0
    # every clip embedded once, under the key the run recorded
    cached = sorted(p.stem for p in (stage2.run / EMBEDDINGS / info["embeddings_key"]).iterdir())
    assert cached == sorted(TRAIN + FOLD0)


def test_rerun_of_generate_writes_nothing(stage2, toy, tmp_path):
    pred = tmp_path / "pred"
    shutil.copytree(stage2.pred, pred)
    past = 1_000_000_000
    for sid in FOLD0:
        os.utime(pred / f"{sid}.png", (past, past))
    record = generate(toy.manifest, toy.media, stage2.run, pred, fold=0, progress=False)
    assert record["written_now"] == 0 and record["samples"] == 3
    assert all((pred / f"{sid}.png").stat().st_mtime == past for sid in FOLD0)
    assert json.loads((pred / "generation-fold0.json").read_text())["written_now"] == 0


def test_generate_refuses_to_mix_in_other_settings(stage2, toy, tmp_path):
    pred = tmp_path / "pred"
    shutil.copytree(stage2.pred, pred)
    for change, field in ((dict(top_k=2), "top_k"), (dict(seed=5), "seed")):
        with pytest.raises(MacsError, match=f"holds images made with another {field}"):
            generate(toy.manifest, toy.media, stage2.run, pred, fold=0, progress=False, **change)
    record = generate(toy.manifest, toy.media, stage2.run, pred, fold=0, seed=5, overwrite=True, progress=False)
    assert record["seed"] == 5 and record["written_now"] == 3


def test_unfinished_run_needs_allow_partial(stage2, toy, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(stage2.run, run)
    shutil.rmtree(run / "adapter")
    with pytest.raises(MacsError, match=r"training has not finished \(latest: checkpoint-4\)"):
        generate(toy.manifest, toy.media, run, tmp_path / "pred", fold=0, progress=False)
    record = generate(toy.manifest, toy.media, run, tmp_path / "pred", fold=0, allow_partial=True, progress=False)
    assert record["adapter"] == str(run / "checkpoint-4") and record["written_now"] == 3


def test_top_k_is_checked_and_recorded(stage2, toy, tmp_path):
    for bad in (0, M + 1):
        with pytest.raises(MacsError, match=re.escape(f"top_k must be between 1 and {M}, got {bad}")):
            generate(toy.manifest, toy.media, stage2.run, tmp_path / "bad", fold=0, top_k=bad, progress=False)
    assert not (tmp_path / "bad").exists()
    record = generate(toy.manifest, toy.media, stage2.run, tmp_path / "top2", fold=0, top_k=2, batch_size=1,
                      progress=False)
    assert record["top_k"] == 2 and record["written_now"] == 3
    differs = [max_diff(stage2.pred / f"{s}.png", tmp_path / "top2" / f"{s}.png") for s in FOLD0]
    assert max(differs) > 0


def test_token_order_reaches_the_images(stage2, toy, tmp_path):
    """Slot order (the default, the release's) and re-sorted order feed the same adapter other E_pos rows."""
    assert stage2.record["token_order"] == "slot"
    record = generate(toy.manifest, toy.media, stage2.run, tmp_path / "sorted", fold=0, token_order="similarity",
                      progress=False)
    assert record["token_order"] == "similarity" and record["written_now"] == 3
    differs = [max_diff(stage2.pred / f"{s}.png", tmp_path / "sorted" / f"{s}.png") for s in FOLD0]
    assert max(differs) > 0, "re-sorting the tokens left every image unchanged"


def test_generate_defaults_to_the_runs_data_and_refuses_its_training_folds(stage2, toy, tmp_path):
    record = generate(None, None, stage2.run, tmp_path / "pred", progress=False)
    assert record["fold"] == 0 and record["manifest"] == str(toy.manifest)
    assert record["audio_window"]["mode"] == "centre" and set(record["audio_window"]["starts"]) == set(FOLD0)
    assert all(max_diff(stage2.pred / f"{s}.png", tmp_path / "pred" / f"{s}.png") == 0 for s in FOLD0)
    for fold in (1, 4):
        with pytest.raises(MacsError, match=rf"{re.escape(str(stage2.run))}: trained on every fold but 0 of "
                                            rf".*manifest, which holds \d+ of the \d+ samples of fold {fold} of "):
            generate(None, None, stage2.run, tmp_path / f"leak{fold}", fold=fold, progress=False)
        assert not (tmp_path / f"leak{fold}").exists()


def test_a_missing_training_manifest_still_refuses_the_training_folds(tmp_path):
    """With the adapter's manifest gone, the leak check can only judge by fold: any fold but the held-out one is
    refused, the held-out one passes."""
    info = {"manifest": str(tmp_path / "moved" / "manifest.csv"), "fold": 0}
    for fold in (1, 3):
        with pytest.raises(MacsError, match=rf"trained on every fold but 0 of .*; refusing to generate fold {fold} "):
            check_no_leak(tmp_path / "run", info, tmp_path / "new.csv", fold, ["clip00"])
    check_no_leak(tmp_path / "run", info, tmp_path / "new.csv", 0, ["clip00"])


def test_interpolate_writes_one_image_per_alpha(stage2, toy, tmp_path):
    a, b = toy.media / "audio" / "clip00.wav", toy.media / "audio" / "clip01.wav"
    record = generate(toy.manifest, toy.media, stage2.run, tmp_path, interpolate=(a, b), alphas=(0.0, 0.5, 1.0),
                      progress=False)
    names = [f"interp-clip00-clip01-{x}.png" for x in ("0.00", "0.50", "1.00")]
    assert record["written"] == 3 and record["images"] == [str(tmp_path / n) for n in names]
    assert record["alphas"] == [0.0, 0.5, 1.0] and record["adapter_sha256"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names + ["interpolation.json"])
    assert all(png(tmp_path / n).shape == (32, 32, 3) for n in names)
    assert max_diff(tmp_path / names[0], tmp_path / names[2]) > 0


def test_no_separation_baseline_trains_and_generates(toy, tmp_path):
    run, pred = tmp_path / "run", tmp_path / "pred"
    summary = train_generator(toy.manifest, toy.media, run, fold=0, no_separation=True, clap="tiny", preset="tiny",
                              steps=2, progress=False)
    assert summary["step"] == 2
    config = GeneratorConfig.from_dict(json.loads((run / "config.json").read_text())["generator_config"])
    assert config.num_tokens == 1 and config.clap_dim == D
    state = load_file(str(run / "adapter" / "adapter.safetensors"))
    assert state["encoder_hid_proj.image_projection_layers.0.pe"].shape == (1, D)
    record = generate(toy.manifest, toy.media, run, pred, fold=0, clap="tiny", progress=False)
    assert record["written_now"] == 3 and record["conditioning"]["no_separation"] is True
    assert record["conditioning"]["separator"] is None
    assert sorted(p.name for p in pred.glob("*.png")) == [f"{s}.png" for s in FOLD0]


def test_samples_without_frames_are_skipped_and_counted(toy, separator, tmp_path):
    media = tmp_path / "media"
    shutil.copytree(toy.media, media)
    for sid in ("clip01", "clip02"):
        (media / "frames" / f"{sid}.jpg").unlink()
    summary = train_generator(toy.manifest, media, tmp_path / "run", fold=0, separator=separator, preset="tiny",
                              steps=1, progress=False)
    assert summary["train_samples"] == 10 and summary["skipped_without_media"] == 2
    info = json.loads((tmp_path / "run" / "config.json").read_text())["run_info"]
    assert info["train_samples"] == 10 and info["skipped_without_media"] == 2
    cached = {p.stem for p in (tmp_path / "run" / EMBEDDINGS / info["embeddings_key"]).iterdir()}
    assert cached == set(TRAIN) - {"clip01", "clip02"}


def test_no_media_names_the_fetch_command(toy, stage2, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    expected = (f"{empty}: none of the 12 training samples has both audio and a frame; "
                f"run 'macs-bench datasets fetch --manifest {toy.manifest} --media {empty}'")
    with pytest.raises(MacsError, match=re.escape(expected)):
        train_generator(toy.manifest, empty, tmp_path / "run", fold=0, no_separation=True, clap="tiny",
                        preset="tiny", steps=1, progress=False)
    assert not (tmp_path / "run").exists()
    with pytest.raises(MacsError, match=re.escape(f"{empty}: none of the 4 test samples has audio")):
        generate(toy.manifest, empty, stage2.run, tmp_path / "pred", fold=0, progress=False)


def test_generate_needs_a_generator_run(toy, separator, tmp_path):
    """--adapter given the stage-1 run by mistake: one MacsError naming the folder."""
    with pytest.raises(MacsError, match=re.escape(f"{separator}: not a 'macs-model train generator' run folder")):
        generate(toy.manifest, toy.media, separator, tmp_path / "pred", fold=0, progress=False)


# --- CLI -------------------------------------------------------------------------------------------------------

def _cli(*args):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([str(BIN / "macs-model"), *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=300)


@pytest.mark.slow
def test_cli_train_generator_then_generate(toy, separator, tmp_path):
    run, pred = tmp_path / "run", tmp_path / "pred"
    result = _cli("train", "generator", "--manifest", toy.manifest, "--fold", 0, "--media", toy.media,
                  "--separator", separator, "--preset", "tiny", "--steps", 2, "--out", run)
    assert result.returncode == 0, result.stderr
    assert f"trained 2/2 steps on 12 samples; adapter: {run / 'adapter'}" in result.stdout
    assert (run / "adapter" / "adapter.safetensors").is_file()
    result = _cli("generate", "--manifest", toy.manifest, "--fold", 0, "--media", toy.media, "--adapter", run,
                  "--out", pred)
    assert result.returncode == 0, result.stderr
    assert f"wrote 3 image(s) into {pred}" in result.stdout
    assert sorted(p.name for p in pred.glob("*.png")) == [f"{s}.png" for s in FOLD0]
    assert json.loads((pred / "generation-fold0.json").read_text())["fold"] == 0
    leak = _cli("generate", "--fold", 2, "--adapter", run, "--out", tmp_path / "leak")
    lines = leak.stderr.strip().splitlines()
    assert leak.returncode == 2 and len(lines) == 1, leak.stderr
    assert f"{run}: trained on every fold but 0 of {toy.manifest}" in lines[0] and "fold 2 of" in lines[0]


def test_cli_errors_are_one_line(toy, stage2, tmp_path):
    one = _cli("generate", "--manifest", toy.manifest, "--fold", 0, "--media", toy.media, "--adapter", stage2.run,
               "--out", tmp_path / "pred", "--interpolate", toy.media / "audio" / "clip00.wav")
    missing = _cli("train", "generator", "--manifest", toy.manifest, "--fold", 0, "--media", toy.media,
                   "--preset", "tiny", "--steps", 1, "--out", tmp_path / "run")
    for result, message in ((one, "--interpolate takes exactly two audio files"),
                            (missing, "stage 2 needs a separator (a stage-1 run) or no-separation")):
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], result.stderr
    assert not (tmp_path / "pred").exists() and not (tmp_path / "run").exists()


def test_training_reads_frame_latents_from_the_run_cache(stage2):
    """train_generator caches each training frame's VAE latents under OUT/latents/<vae key>/ (one per variant)."""
    files = list((stage2.run / LATENTS).glob("*/*-32x32-crop.safetensors"))  # the tiny preset's centre crop
    assert files and {f.name.rsplit("-", 2)[0] for f in files} <= set(TRAIN)


def test_no_latent_cache_leaves_no_latents(toy, tmp_path):
    run = tmp_path / "run"
    train_generator(toy.manifest, toy.media, run, fold=0, no_separation=True, clap="tiny", preset="tiny", steps=1,
                    progress=False, cache_latents=False)
    assert (run / "adapter").is_dir() and not (run / LATENTS).exists()
