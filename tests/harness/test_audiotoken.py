"""AudioToken on BEATs: the release's embedder restated, the pseudo-token in the text encoder, the harness run of
both variants on tiny configs, and one clear line when the published weights are absent."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from macs_bench.errors import MacsError
from macs_bench.models import load_model, run
from macs_bench.metrics.scoring import ScoreConfig

REPO = Path(__file__).resolve().parent.parent.parent

# guyyariv/AudioToken modules/AudioToken/embedder.py + modules/FGA/atten.py (Atten(util_e=[D], pairwise_flag=False))
RELEASE_KEYS = {"fc1.weight": ("in", "in"), "fc1.bias": ("in",), "fc2.weight": ("out", "in"), "fc2.bias": ("out",),
                "fga.un_models.0.embed.weight": ("out", "out", 1), "fga.un_models.0.embed.bias": ("out",),
                "fga.un_models.0.feature_reduce.weight": (1, "out", 1), "fga.un_models.0.feature_reduce.bias": (1,),
                "fga.pp_models.0.embed_X.weight": ("out", "out", 1), "fga.pp_models.0.embed_X.bias": ("out",),
                "fga.pp_models.0.embed_Y.weight": ("out", "out", 1), "fga.pp_models.0.embed_Y.bias": ("out",),
                "fga.reduce_potentials.0.weight": (1, 2, 1)}


def test_embedder_names_are_the_release_ones():
    from macs_model.baselines.audiotoken import FGAEmbedder

    with torch.device("meta"):
        state = FGAEmbedder(768 * 3, 768).state_dict()
    sizes = {"in": 768 * 3, "out": 768}
    assert {k: tuple(v.shape) for k, v in state.items()} == {
        k: tuple(sizes.get(d, d) for d in shape) for k, shape in RELEASE_KEYS.items()}


def release_embedder(sd, x, dropout_mask=None):
    """FGAEmbedder.forward restated from the release: fc1 -> GELU -> fc2, then Atten's unary (Unary) and self
    (Pairwise, no spatial size) potentials, reduce_potentials, softmax over patches, bmm pooling."""
    h = F.linear(F.gelu(F.linear(x, sd["fc1.weight"], sd["fc1.bias"])), sd["fc2.weight"], sd["fc2.bias"])
    t = h.transpose(1, 2)
    e = F.relu(F.conv1d(t, sd["fga.un_models.0.embed.weight"], sd["fga.un_models.0.embed.bias"]))
    if dropout_mask is not None:
        e = e * dropout_mask
    unary = F.conv1d(e, sd["fga.un_models.0.feature_reduce.weight"],
                     sd["fga.un_models.0.feature_reduce.bias"]).squeeze(1)
    xs = F.normalize(F.conv1d(t, sd["fga.pp_models.0.embed_X.weight"], sd["fga.pp_models.0.embed_X.bias"]))
    ys = F.normalize(F.conv1d(t, sd["fga.pp_models.0.embed_Y.weight"], sd["fga.pp_models.0.embed_Y.bias"]))
    pair = xs.transpose(1, 2).bmm(ys).mean(dim=2)
    factors = torch.cat([unary.unsqueeze(1), pair.unsqueeze(1)], dim=1)
    weights = F.softmax(F.conv1d(factors, sd["fga.reduce_potentials.0.weight"]).squeeze(1), dim=1).unsqueeze(2)
    return torch.bmm(t, weights).squeeze(2)


def test_embedder_matches_the_release_computation():
    from macs_model.baselines.audiotoken import FGAEmbedder

    torch.manual_seed(0)
    model = FGAEmbedder(24, 8, release_dropout=False).eval()
    x = torch.randn(3, 10, 24)
    with torch.no_grad():
        torch.testing.assert_close(model(x), release_embedder(model.state_dict(), x))
        model.release_dropout = True  # the release's F.dropout(p=0.5) at inference: the same draw, restated
        torch.manual_seed(7)
        mine = model(x)
        torch.manual_seed(7)
        mask = F.dropout(torch.ones(3, 8, 10), p=0.5, training=True)
        torch.testing.assert_close(mine, release_embedder(model.state_dict(), x, mask))
        assert not torch.allclose(mine, release_embedder(model.state_dict(), x))


def _config(tmp_path):
    return ScoreConfig(preset="world", cache_dir=str(tmp_path / "features"))


def test_the_token_replaces_the_placeholder_in_the_text_encoder(tmp_path):
    model = load_model("audiotoken", preset="tiny", work=str(tmp_path / "w"), clip_seconds=1.0)
    assert model.prompt() == "a photo of *" and model.num_tokens == 1
    waves = model._embed([0.1 * torch.randn(8000).numpy()], 8000)
    assert waves.shape == (1, 1, 16000)
    torch.manual_seed(3)
    with torch.no_grad():
        states = model.states(waves)
        torch.manual_seed(3)
        token = model.embedder(waves)[0, 0]
    tok = model.drawer.components.tokenizer
    ids = tok(["a photo of *"], padding="max_length", max_length=tok.model_max_length,
              return_tensors="pt").input_ids
    star = ids == tok.convert_tokens_to_ids("*</w>")
    assert int(star.sum()) == 1
    # the release's inference: a new vocabulary row holding the token, the placeholder's id pointing at it
    encoder = copy.deepcopy(model.drawer.components.text_encoder)
    encoder.resize_token_embeddings(len(tok) + 1)
    with torch.no_grad():
        encoder.get_input_embeddings().weight[len(tok)] = token
        expected = encoder(torch.where(star, len(tok), ids))[0]
    torch.testing.assert_close(states, expected)
    assert not torch.allclose(states, model.drawer.text_states(["a photo of *"]))

def test_audiotoken_runs_a_fold_end_to_end_and_fits(world_fold, tmp_path):
    model = load_model("audiotoken", preset="tiny", work=str(tmp_path / "token"), clip_seconds=2.0, steps=2)
    done = run(model, world_fold.manifest, world_fold.media, tmp_path / "r", fold=0, config=_config(tmp_path),
               progress=False)
    data = json.loads(done.result_file.read_text())
    assert data["model"] == "AudioToken" and data["n"] == 4 and len(list(done.images.glob("*.png"))) == 4
    assert data["row"]["may_have_seen_test"] is True  # released-weights path: training clips unknown
    assert data["model_provenance"]["prompt"] == "a photo of *"
    one_by_one = run(model, world_fold.manifest, world_fold.media, tmp_path / "b1", fold=0, batch_size=1,
                     config=_config(tmp_path), progress=False)
    for png in done.images.glob("*.png"):  # the embedder's inference dropout draws from each item's seed
        assert png.read_bytes() == (one_by_one.images / png.name).read_bytes()
    fitted = run(model, world_fold.manifest, world_fold.media, tmp_path / "f", fold=0, config=_config(tmp_path),
                 fit=True, progress=False)
    fitted_data = json.loads(fitted.result_file.read_text())
    assert fitted_data["row"]["may_have_seen_test"] is False and len(model.trained_ids()) == 16
    from safetensors.torch import load_file

    saved = load_file(str(tmp_path / "token" / "embedder.safetensors"))
    assert set(saved) == set(RELEASE_KEYS)  # only the embedder is trained and saved, never BEATs


def test_default_weights_missing_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("MACS_HOME", str(tmp_path / "home"))
    with pytest.raises(MacsError, match=r"missing weights 'beats-as2m-cpt2'; fetch them with") as err:
        load_model("audiotoken")
    assert "\n" not in str(err.value)
    from macs_model.encoders.beats import tiny_beats

    beats, _ = tiny_beats()
    torch.save({"cfg": beats.config.to_dict(), "model": beats.state_dict()}, tmp_path / "beats.pt")
    with pytest.raises(MacsError, match=r"missing weights 'audiotoken-embedder'"):
        load_model("audiotoken", beats=str(tmp_path / "beats.pt"))
    with pytest.raises(MacsError, match=r"absent.bin: no AudioToken embedder there"):
        load_model("audiotoken", beats=str(tmp_path / "beats.pt"), embedder=str(tmp_path / "absent.bin"))
    from macs_bench import weights  # files in the cache: BEATs trusted on first use, the embedder's blob checked

    cache = weights.cache_dir()
    cache.mkdir(parents=True)
    (cache / weights.WEIGHTS["beats-as2m-cpt2"].filename).write_bytes((tmp_path / "beats.pt").read_bytes())
    torch.save({"fc1.weight": torch.zeros(1), "fc2.weight": torch.zeros(1)},
               cache / weights.WEIGHTS["audiotoken-embedder"].filename)
    with pytest.raises(MacsError, match=r"not the released AudioToken embedder \(git blob [0-9a-f]{40}, expected 5d1f"):
        load_model("audiotoken")


@pytest.mark.slow
def test_audiotoken_mss_runs_with_one_token_per_source(world_fold, tmp_path):
    from macs_bench.world.synthetic import write_synthetic
    from macs_model.separation.api import WORLD_CLAP, train_separator

    pretrain = write_synthetic(tmp_path / "pretrain", n_clips=8, seed=77, prefix="p")
    train_separator(str(pretrain.manifest), pretrain.media, tmp_path / "sep", preset="tiny", clap=WORLD_CLAP,
                    steps=1, progress=False)
    model = load_model("audiotoken-mss", separator=str(tmp_path / "sep"), preset="tiny",
                       work=str(tmp_path / "token"), clip_seconds=1.0)
    assert model.num_tokens == model.separator.config.num_sources > 1
    assert model.prompt() == "a photo of " + " ".join(["*"] * model.num_tokens)
    done = run(model, world_fold.manifest, world_fold.media, tmp_path / "r", fold=1, config=_config(tmp_path),
               progress=False)
    data = json.loads(done.result_file.read_text())
    assert data["model"] == "AudioToken w/ MSS" and data["n"] == 4
    assert data["model_provenance"]["conditioning"]["separator"]["sha256"]


@pytest.mark.slow
def test_cli_without_weights_fails_with_one_line(world_fold, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "MACS_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-m", "macs_bench", "run", "audiotoken", "--manifest",
                           str(world_fold.manifest), "--media", str(world_fold.media), "--fold", "0", "--out",
                           str(tmp_path / "r")], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "beats-as2m-cpt2" in done.stderr
