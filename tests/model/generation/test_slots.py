"""Fig. 4's explicit slot choice (``--slots 4,5,6``) and the no-separation control with the mixture repeated
into M slots: each checked against a hand-made selection on the tiny random SD / tiny CLAP."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
import torch
from stage2_helpers import embeddings, max_diff, write_frame

from macs_bench.errors import MacsError
from macs_model.generation.adapter import tokens_of
from macs_model.generation.components import tiny_components
from macs_model.generation.config import GeneratorConfig
from macs_model.generation.pipeline import generate_images, load_trained
from macs_model.generation.tokens import AudioTokens, chosen_slots
from macs_model.generation.training import TrainItem, train_adapter

pytest.importorskip("diffusers")

M = 6
CONFIG = GeneratorConfig.preset("tiny", clap_dim=32, steps=4)


def test_chosen_slots_counts_from_one_and_refuses_bad_choices():
    assert chosen_slots(M, slots=(4, 5, 6)) == [3, 4, 5]
    assert chosen_slots(M, top_k=2) == [0, 1]
    assert chosen_slots(M) is None
    for bad in ((0, 1), (7,), (2, 2), ()):
        with pytest.raises(MacsError, match="slots must be distinct slot numbers between 1 and 6"):
            chosen_slots(M, slots=bad)
    with pytest.raises(MacsError, match="not both"):
        chosen_slots(M, top_k=2, slots=(1,))


def test_tokens_at_slots_use_those_slots_positional_rows():
    torch.manual_seed(0)
    tokens = AudioTokens(M, 32, hidden=16, token_dim=8).eval()
    e = torch.randn(2, M, 32)
    with torch.no_grad():
        hand = tokens.adapter(e[:, 3:6] + tokens.pe[3:6])  # the restated E' = MLP(E + E_pos) on slots 4-6
        with tokens.at_slots([3, 4, 5]):
            chosen = tokens(e[:, 3:6])
        first_rows = tokens(e[:, 3:6])
        with tokens.at_slots([3, 4, 5]), pytest.raises(ValueError, match="2 embeddings inside at_slots"):
            tokens(e[:, 3:5])
    torch.testing.assert_close(chosen, hand)
    assert not torch.allclose(first_rows, hand)  # without at_slots the first three rows are used
    assert tokens.positions is None  # the choice ends with the block


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("frames")
    items = [TrainItem(f"s{i}", write_frame(folder / f"s{i}.jpg", seed=i), embeddings(i)) for i in range(4)]
    run = tmp_path_factory.mktemp("gen") / "run"
    train_adapter(tiny_components(0), items, CONFIG, run, progress=False)
    components, config, tokens = load_trained(run, components=tiny_components(0))
    return SimpleNamespace(components=components, config=config, tokens=tokens)


def test_slots_456_draw_what_a_hand_selection_draws(loaded, tmp_path):
    """``slots=(4, 5, 6)`` equals the first three slots of a copy whose embeddings and positional rows were
    moved by hand (slots 4-6 to 1-3); it differs from ``top_k=3``."""
    e = embeddings(31)
    generate_images(loaded.components, loaded.config, loaded.tokens, [("x", e)], tmp_path / "slots",
                    slots=(4, 5, 6), progress=False)
    generate_images(loaded.components, loaded.config, loaded.tokens, [("x", e)], tmp_path / "top3", top_k=3,
                    progress=False)
    original = loaded.tokens.pe.detach().clone()
    try:
        with torch.no_grad():
            loaded.tokens.pe[:3] = original[3:6]
        generate_images(loaded.components, loaded.config, loaded.tokens, [("x", e[3:6])], tmp_path / "hand",
                        progress=False)
    finally:
        with torch.no_grad():
            loaded.tokens.pe.copy_(original)
    assert max_diff(tmp_path / "slots" / "x.png", tmp_path / "hand" / "x.png") == 0
    assert max_diff(tmp_path / "slots" / "x.png", tmp_path / "top3" / "x.png") > 0


def test_mixture_slots_repeat_the_mixture_embedding():
    from macs_model.generation.conditioning import Conditioner

    one = Conditioner(None, clap="tiny", no_separation=True, device="cpu")
    six = Conditioner(None, clap="tiny", no_separation=True, device="cpu", mixture_slots=M)
    audio = torch.randn(16000, generator=torch.Generator().manual_seed(0))
    single = one.embed(audio)
    repeated = six.embed(audio)
    assert single.shape == (1, one.embed_dim) and repeated.shape == (M, one.embed_dim) and six.num_tokens == M
    torch.testing.assert_close(repeated, single.expand(M, -1))  # the same vector in every slot
    mixture = six.encoder.embed_audio(audio[None])  # the restated mixture pass
    torch.testing.assert_close(repeated[0], mixture[0])
    assert one.key != six.key and six.provenance["mixture_slots"] == M
    with pytest.raises(MacsError, match="needs no_separation"):
        Conditioner(None, clap="tiny", no_separation=False, device="cpu", mixture_slots=M)
    with pytest.raises(MacsError, match=re.escape("mixture_slots must be a positive integer, got 0")):
        Conditioner(None, clap="tiny", no_separation=True, device="cpu", mixture_slots=0)


def test_generate_cli_parses_slots():
    from macs_model.cli import parse_slots

    assert parse_slots("4,5,6") == [4, 5, 6]
    for bad in ("a,b", ","):
        with pytest.raises(MacsError, match="--slots"):
            parse_slots(bad)
