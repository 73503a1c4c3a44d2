"""``macs-model reproduce`` end to end on release-shaped miniatures: import, generate, score, leaderboard."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from release_helpers import write_tiny_release
from stage2_helpers import write_toy

from macs_bench.errors import MacsError
from macs_model.reproduction import MODEL_NAME, reproduce

pytest.importorskip("diffusers")

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("repro")
    manifest, media, ids = write_toy(root, name="llp-multi", absent=False)
    return manifest, media, write_tiny_release(root / "release")


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("MACS_HOME", str(tmp_path / "home"))  # the feature cache, and no weights at all


def _rows(out):
    with open(out / "leaderboard" / "leaderboard.csv", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_reproduce_runs_end_to_end_and_resumes(data, tmp_path):
    manifest, media, release = data
    out = tmp_path / "run"
    summary = reproduce(release, "llp-multi", manifest, media, out, folds=[0], preset="tiny", clap="tiny",
                        progress=False)
    step = summary["steps"][0]
    assert step["generated_now"] == step["samples"] == 3 and step["scored_now"]
    result = json.loads((out / "results" / "MACS" / "fold0.json").read_text())
    assert result["model"] == MODEL_NAME and result["fold"] == 0 and result["n"] == 3
    assert result["dataset"] == "llp-multi" and result["comparable_with_paper"] is False
    assert result["row"]["may_have_seen_test"] is True and result["row"]["source"] == "computed"
    generation = json.loads((out / "images" / "generation-fold0.json").read_text())
    assert generation["audio_window"]["mode"] == "centre" and generation["token_order"] == "slot"
    assert generation["adapter_training"]["imported"]["base_check"]["sampled_tensors_equal"] > 0
    rows = [r for r in _rows(out) if r["model"] == MODEL_NAME]
    assert len(rows) == 1 and rows[0]["folds"] == "0" and float(rows[0]["fid"]) == result["metrics"]["fid"]
    recorded = json.loads((out / "reproduce.json").read_text())
    assert recorded["dataset"] == "llp-multi" and recorded["score_preset"] == "tiny"
    # a rerun generates and scores nothing; a second fold adds its row's fold
    again = reproduce(release, "llp-multi", manifest, media, out, folds=[0, 1], preset="tiny", clap="tiny",
                      progress=False)
    assert again["steps"][0]["generated_now"] == 0 and not again["steps"][0]["scored_now"]
    assert again["steps"][1]["generated_now"] == 3 and again["steps"][1]["scored_now"]
    rows = [r for r in _rows(out) if r["model"] == MODEL_NAME]
    assert len(rows) == 1 and rows[0]["folds"] == "0;1" and rows[0]["n"] == "6"


def test_reproduce_offline_names_every_fetch_it_needs(data, tmp_path):
    manifest, media, release = data
    with pytest.raises(MacsError) as err:
        reproduce(release, "llp-multi", manifest, media, tmp_path / "run", folds=[0], progress=False)
    message = str(err.value)
    for name in ("stable-diffusion-v1-4", "roberta-base-tokenizer", "inception-2015-12-05", "clip-vit-b-32-openai",
                 "wav2clip"):
        assert f"macs-bench weights fetch {name}" in message
    assert "\n" not in message and not (tmp_path / "run").exists()


def test_reproduce_refuses_missing_files_and_another_dataset(data, tmp_path):
    manifest, media, release = data
    with pytest.raises(MacsError, match=r"missing .*AudioSet_mlp.pt, .*AudioSet_unet.pt"):
        reproduce(release, "audioset-eval", manifest, media, tmp_path / "run", folds=[0], preset="tiny")
    with pytest.raises(MacsError, match="for llp-multi, audioset-eval, landscape only"):
        reproduce(release, "fsd50k", manifest, media, tmp_path / "run", folds=[0], preset="tiny")


@pytest.mark.slow
def test_cli_reproduce(data, tmp_path):
    manifest, media, release = data
    out = tmp_path / "run"
    env = {**os.environ, "MACS_HOME": str(tmp_path / "home")}
    args = [str(BIN / "macs-model"), "reproduce", "--release-dir", str(release), "--dataset", "llp-multi",
            "--manifest", str(manifest), "--media", str(media), "--folds", "2", "--out", str(out),
            "--preset", "tiny", "--clap", "tiny"]
    result = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "fold 2: 3 samples, 3 generated now, scored" in result.stdout
    assert (out / "leaderboard" / "leaderboard.md").is_file()
    bad = subprocess.run(args[:-4] + ["--folds", "0,x"], capture_output=True, text=True, env=env, timeout=600)
    lines = bad.stderr.strip().splitlines()
    assert bad.returncode == 2 and len(lines) == 1 and "--folds" in lines[0], bad.stderr


@pytest.mark.slow
def test_pipeline_from_the_release_files_draws_what_reproduce_draws(data, tmp_path):
    """from_pretrained(release folder, dataset) imports the authors' files once and draws the image reproduce's
    fold-wise generation draws for the same clip."""
    import numpy as np
    from stage2_helpers import png

    from macs_model import AudioToImagePipeline

    manifest, media, release = data
    out = tmp_path / "run"
    reproduce(release, "llp-multi", manifest, media, out, folds=[0], preset="tiny", clap="tiny", progress=False)
    pipe = AudioToImagePipeline.from_pretrained(release, dataset="llp-multi", preset="tiny", clap="tiny",
                                                import_dir=tmp_path / "import", device="cpu")
    assert (tmp_path / "import" / "release-import.json").is_file()
    (image,) = pipe(media / "audio" / "clip00.wav", batch_size=4).images
    assert np.array_equal(np.asarray(image.convert("RGB")).astype(np.int64), png(out / "images" / "clip00.png"))
    with pytest.raises(MacsError, match="missing"):
        AudioToImagePipeline.from_pretrained(tmp_path, dataset="llp-multi", preset="tiny")


@pytest.mark.slow
def test_release_weights_through_the_harness_are_stamped(data, tmp_path):
    """The imported release adapter as a protocol model: training ids unknown, so the row may have seen the test
    clips, unless every evaluated id is listed as held out."""
    from macs_bench.models import load_model, run
    from macs_bench.models.runner import fold_samples
    from macs_bench.scoring import ScoreConfig
    from macs_model.generation.release_import import import_release_generator
    from macs_model.reproduction import release_files

    manifest, media, release = data
    files = release_files(release, "llp-multi")
    import_release_generator(files["mlp"], files["unet"], files["separator"], tmp_path / "import", preset="tiny")
    config = ScoreConfig(preset="tiny", cache_dir=str(tmp_path / "features"))
    model = load_model("macs", run=str(tmp_path / "import"), clap="tiny")
    assert model.trained_ids() is None and model.name == "MACS (release weights)"
    done = run(model, manifest, media, tmp_path / "run", fold=0, config=config, progress=False)
    assert done.score.provenance["row"]["may_have_seen_test"] is True
    held = fold_samples(manifest / "manifest.csv", 0, None).ids
    model = load_model("macs", run=str(tmp_path / "import"), clap="tiny", held_out=held)
    done = run(model, manifest, media, tmp_path / "run", fold=0, config=config, progress=False)
    assert done.score.provenance["row"]["may_have_seen_test"] is False
    done = run(model, manifest, media, tmp_path / "run1", fold=1, config=config, progress=False)
    assert done.score.provenance["row"]["may_have_seen_test"] is True  # fold 1 is not among the held-out ids
