"""``AudioToImagePipeline`` and ``macs-model generate --audio`` on the tiny stage-2 run: the images equal the ones
fold-wise ``generate`` drew for the same clips and seed, from files or from waveforms."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from stage2_helpers import png

from macs_bench.errors import MacsError
from macs_model.generation.audio_to_image import AudioToImagePipeline
from macs_model.separation.data import load_audio

FOLD0 = ["clip00", "clip05", "clip10"]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def pipe(stage2):
    return AudioToImagePipeline.from_pretrained(stage2.run, device="cpu")


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB")).astype(np.int64)


def test_pipe_draws_the_images_fold_wise_generate_drew(pipe, stage2, toy):
    files = [toy.media / "audio" / f"{sid}.wav" for sid in FOLD0]
    images = pipe(audio=files, batch_size=2).images
    assert [type(i) for i in images] == [Image.Image] * 3 and images[0].size == (32, 32)
    for sid, image in zip(FOLD0, images):
        assert np.array_equal(_pixels(image), png(stage2.pred / f"{sid}.png")), sid
    waveforms = [load_audio(f, pipe.conditioner.sample_rate) for f in files]
    again = pipe(audio=waveforms, names=FOLD0, batch_size=3).images
    assert all(np.array_equal(_pixels(a), _pixels(b)) for a, b in zip(images, again))


def test_pipe_settings_reach_the_images(pipe, toy):
    file = toy.media / "audio" / "clip00.wav"
    (base,) = pipe(file).images
    for changed in (pipe(file, seed=1), pipe(file, num_inference_steps=2), pipe(file, guidance_scale=1.0),
                    pipe(file, top_k=1)):
        assert np.abs(_pixels(changed.images[0]) - _pixels(base)).max() > 0
    with pytest.raises(MacsError, match="top_k must be between 1 and 6, got 7"):
        pipe(file, top_k=7)
    with pytest.raises(MacsError, match="nope.wav: audio file not found"):
        pipe(toy.media / "audio" / "nope.wav")


def test_pipe_follows_diffusers_conventions(pipe, stage2, toy, tmp_path):
    """``generator=`` draws the latents as diffusers does (a seeded generator per input gives the fold-wise image
    of a sample whose seed it equals), ``.to`` returns the pipeline, and ``save_pretrained`` round-trips."""
    import torch

    from macs_model.generation.audio_window import sample_seed

    file = toy.media / "audio" / "clip00.wav"
    seeded = torch.Generator().manual_seed(sample_seed("clip00", 0))
    (image,) = pipe(file, generator=[seeded]).images
    assert np.array_equal(_pixels(image), png(stage2.pred / "clip00.png"))
    other = pipe(file, generator=torch.Generator().manual_seed(1)).images[0]
    assert np.abs(_pixels(other) - _pixels(image)).max() > 0
    with pytest.raises(MacsError, match="2 generators for 1 audio inputs"):
        pipe(file, generator=[seeded, seeded])
    assert pipe.to("cpu") is pipe and pipe.device.type == "cpu"
    saved = AudioToImagePipeline.from_pretrained(pipe.save_pretrained(tmp_path / "saved"), device="cpu")
    assert np.array_equal(_pixels(saved(file).images[0]), _pixels(pipe(file).images[0]))
    with pytest.raises(MacsError, match="already holds a run"):
        pipe.save_pretrained(tmp_path / "saved")


def _cli(*args):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([str(BIN / "macs-model"), *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=300)


@pytest.mark.slow
def test_cli_generate_audio_without_a_manifest(stage2, toy, tmp_path):
    a, b = toy.media / "audio" / "clip00.wav", toy.media / "audio" / "clip05.wav"
    out = tmp_path / "out"
    result = _cli("generate", "--audio", a, b, "--adapter", stage2.run, "--out", out, "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["clip00.png", "clip05.png", "generation-audio.json"]
    for sid in ("clip00", "clip05"):
        assert np.array_equal(png(out / f"{sid}.png"), png(stage2.pred / f"{sid}.png")), sid
    record = json.loads((out / "generation-audio.json").read_text())
    assert record["written_now"] == 2 and set(record["audio"]) == {str(a), str(b)} and record["seed"] == 0
    refused = _cli("generate", "--audio", a, b, "--adapter", stage2.run, "--out", out, "--seed", "3")
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 2 and len(lines) == 1 and "another seed" in lines[0], refused.stderr
    bare = _cli("generate", a, "--adapter", stage2.run, "--out", out)
    assert bare.returncode == 2 and "need --audio" in bare.stderr
