"""The shipped world towers and CLAP-like pair: verified on load, and they learned (fresh held-out clips)."""

import shutil

import pytest
import torch

from macs_bench.world.synthetic import CLASSES
from macs_bench.errors import MacsError
from macs_bench.world import CLAP_FILE, SUMS_FILE, TOWERS_FILE, WORLD_DIR
from macs_bench.world.checksums import verify, verify_tree
from macs_bench.world.towers import load_towers, normalise
from macs_bench.world.data import top_k_hits


def test_shipped_weights_match_their_checksums_and_a_flipped_byte_is_refused(tmp_path):
    sums = verify_tree(WORLD_DIR)
    assert {TOWERS_FILE, CLAP_FILE} <= set(sums) and any(name.startswith("sd/") for name in sums)
    shutil.copy(WORLD_DIR / SUMS_FILE, tmp_path / SUMS_FILE)
    copy = tmp_path / TOWERS_FILE
    data = bytearray((WORLD_DIR / TOWERS_FILE).read_bytes())
    data[-1] ^= 1
    copy.write_bytes(bytes(data))
    with pytest.raises(MacsError, match="corrupt world weights"):
        verify(copy)
    with pytest.raises(MacsError, match="corrupt world weights"):
        load_towers(copy)


def test_each_load_hashes_the_weights_file_once(monkeypatch):
    import macs_bench.world.checksums as checksums
    from macs_bench.features.encoders import build_encoders
    from macs_bench.world.clap import WorldClap

    calls = []
    real = checksums.sha256_file
    monkeypatch.setattr(checksums, "sha256_file", lambda path: calls.append(path) or real(path))
    WorldClap()
    assert calls == [WORLD_DIR / CLAP_FILE]
    calls.clear()
    build_encoders("world")
    assert calls == [WORLD_DIR / TOWERS_FILE]


def test_top_k_hits_against_brute_force():
    scores = torch.tensor([[0.9, 0.1, 0.5, 0.2], [0.1, 0.2, 0.3, 0.4]])
    hot = torch.tensor([[1.0, 0, 0, 1], [0, 0, 1, 1]])
    # row 0: top-2 = {0, 2}, true {0, 3} -> 1 hit; row 1: top-2 = {3, 2}, true {2, 3} -> 2 hits
    assert top_k_hits(scores, hot) == pytest.approx(3 / 4)


def test_image_and_audio_towers_detect_the_classes_of_fresh_clips(fresh_world):
    from macs_bench.world.data import chance_top_k_hits

    towers = load_towers()
    with torch.no_grad():
        text = normalise(towers.text(list(CLASSES)))
        image = normalise(towers.image(fresh_world["images"]))
        audio = normalise(towers.audio(fresh_world["audio"]))
    chance = chance_top_k_hits(fresh_world["hot"])
    assert chance < 0.35
    assert top_k_hits(image @ text.T, fresh_world["hot"]) > 0.95  # zero-shot, image <-> class names
    assert top_k_hits(audio @ text.T, fresh_world["hot"]) > 0.7  # audio was trained against images only
    same_set = (fresh_world["hot"][:, None] == fresh_world["hot"][None]).all(-1)
    nearest = (audio @ image.T).argmax(1)
    assert same_set[torch.arange(len(nearest)), nearest].float().mean() > 0.3 > 10 * same_set.float().mean()


def test_inception_and_clip_stand_ins_are_different_features_of_the_same_tower(fresh_world):
    import macs_bench.world.scoring  # noqa: F401  registers the 'world' preset
    from macs_bench.features.encoders import build_encoders

    enc = build_encoders("world")
    x = fresh_world["images"][:4]
    trunk = enc["inception"].forward(enc["inception"].model, x)
    emb = enc["clip"].forward(enc["clip"].model, x)
    assert trunk.shape == (4, 128) and emb.shape == (4, 64)
    torch.testing.assert_close(emb, trunk @ enc["clip"].model.proj.weight.T + enc["clip"].model.proj.bias)
    assert enc["inception"].id != enc["clip"].id and enc["clip"].weights.startswith("world-sha256:")


def test_world_clap_names_single_sources_and_passes_gradients(fresh_world):
    from macs_bench.world.clap import WorldClap
    from macs_bench.world.data import chance_top_k_hits, single_source_data
    from macs_bench.world.train import clap_prompts

    clap = WorldClap()
    audio, labels = single_source_data(48, 31337)
    audio.requires_grad_(True)
    emb = clap.embed_audio(audio)
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(len(audio)))
    emb.sum().backward()
    assert audio.grad is not None and audio.grad.abs().sum() > 0
    text = clap.embed_text(clap_prompts())
    assert ((emb @ text.T).detach()[:, :-1].argmax(1) == labels).float().mean() > 0.9  # trained on single sources
    mixtures = clap.embed_audio(fresh_world["audio"]) @ text.T
    assert top_k_hits(mixtures[:, :-1], fresh_world["hot"]) > chance_top_k_hits(fresh_world["hot"]) + 0.15
    silence = clap.embed_audio(torch.randn(3, 32000) * 1e-3)
    assert ((silence @ text.T).argmax(1) == len(CLASSES)).all()  # "Noise"
    assert clap.provenance()["sha256"] == verify(WORLD_DIR / CLAP_FILE)


def test_a_run_recorded_with_the_world_clap_reopens_it_without_being_told():
    from macs_bench.world.clap import ENCODER_NAME, WorldClap
    from macs_model.separation.api import separator_encoder
    from macs_model.separation.clap import TinyClap

    world = separator_encoder(None, None, None, None, recorded={"encoder": ENCODER_NAME, "sha256": "x"})
    assert isinstance(world, WorldClap)
    tiny = separator_encoder(None, None, None, None, recorded=TinyClap().provenance())
    assert isinstance(tiny, TinyClap)


def test_the_cli_world_preset_trains_on_the_shipped_world_base(monkeypatch, tmp_path):
    import macs_model.generation.api as stage2
    from typer.testing import CliRunner

    from macs_bench.world import SD_DIR, WORLD_DIR
    from macs_model.cli import app

    seen = {}
    monkeypatch.setattr(stage2, "train_generator", lambda *a, **k: seen.update(k) or {"step": 0})
    CliRunner().invoke(app, ["train", "generator", "--manifest", str(tmp_path), "--media", str(tmp_path), "--out",
                             str(tmp_path / "run"), "--preset", "world", "--no-separation", "--clap", "world"])
    assert seen["preset"] == "world" and seen["base"] == str(WORLD_DIR / SD_DIR)
