"""Stage-1 CLAP alignment (separation.alignment): labels of mixtures of mixtures, prompts, CLAP passes, values,
gradients and the learnable temperature. Uses TinyClap (a fast random stand-in), never the real CLAP."""

import math
import random

import pytest
import torch
from torch import nn

from macs_bench.errors import MacsError
from macs_model.separation.alignment import LOGIT_SCALE_INIT, ClapAlignment, mixture_labels
from macs_model.separation.clap import TinyClap
from macs_model.separation.config import SeparatorConfig
from macs_model.separation.losses import contrastive_loss, ranking_loss
from macs_model.separation.separator import build_separator
from macs_model.separation.training import make_mixture_of_mixtures

SR = 16000
T = 2000  # samples per clip: TinyClap takes any length
M = 6

# 3 clips with overlapping labels; the expectations below are written out by hand.
LABELS = [["Dog", "Bark"], ["Bark", "Cat", "Rain"], ["Cat"]]
# mixture 0 = clip 0 + clip 2, mixture 1 = clip 1 + clip 0, mixture 2 = clip 2 + clip 1; interleaved: first label of
# clip b, first label of clip b-1, second label of clip b, second of clip b-1, ...; repeats dropped.
EXPECTED = [["Dog", "Cat", "Bark"], ["Bark", "Dog", "Cat", "Rain"], ["Cat", "Bark", "Rain"]]


class CountingClap(nn.Module):
    """TinyClap behind a wrapper that counts the audio rows and text calls it serves and keeps its outputs."""

    def __init__(self, seed=0):
        super().__init__()
        self.inner = TinyClap(input_rate=SR, seed=seed)
        self.embed_dim = self.inner.embed_dim
        self.audio_rows = 0
        self.audio_calls = []  # (rows, output embedding)
        self.text_calls = []  # the prompt lists

    def provenance(self):
        return self.inner.provenance()

    def embed_audio(self, audio):
        out = self.inner.embed_audio(audio)
        self.audio_rows += audio.shape[0]
        self.audio_calls.append((audio.shape[0], out))
        return out

    def embed_text(self, texts):
        self.text_calls.append(list(texts))
        return self.inner.embed_text(texts)


def _batch(labels=LABELS, seed=0, samples=T):
    g = torch.Generator().manual_seed(seed)
    clips = 0.3 * torch.randn(len(labels), samples, generator=g)
    mixture, mix1, mix2 = make_mixture_of_mixtures(clips)
    return {"audio": clips, "labels": [list(x) for x in labels], "mixture": mixture, "mix1": mix1, "mix2": mix2}


def _sources(batch_size, m=M, seed=1, samples=T):
    g = torch.Generator().manual_seed(seed)
    return 0.2 * torch.randn(batch_size, m, samples, generator=g)


# --- labels and prompts ----------------------------------------------------------------------------------------

def test_mixture_labels_by_hand():
    assert mixture_labels(LABELS) == EXPECTED
    # two clips: each mixture holds both, in its own clip's order first
    assert mixture_labels([["A", "B"], ["C"]]) == [["A", "C", "B"], ["C", "A", "B"]]
    # repeats inside one clip and across the pair are dropped; empty label lists contribute nothing
    assert mixture_labels([["A", "A", "B"], [], ["B", "A"]]) == [["A", "B"], ["A", "B"], ["B", "A"]]
    assert mixture_labels([[], []]) == [[], []]


def test_mixture_labels_follow_the_roll_of_make_mixture_of_mixtures():
    rng = random.Random(3)
    vocabulary = [f"L{i}" for i in range(8)]
    for batch_size in (2, 3, 5):
        labels = [rng.sample(vocabulary, rng.randint(1, 4)) for _ in range(batch_size)]
        clips = torch.eye(batch_size)  # clip b is an indicator of itself
        mixture, mix1, mix2 = make_mixture_of_mixtures(clips)
        merged = mixture_labels(labels)
        for b in range(batch_size):
            first = int(mix1[b].argmax())
            second = int(mix2[b].argmax())
            assert {first, second} == set(mixture[b].nonzero().flatten().tolist())
            assert second == (b - 1) % batch_size
            assert merged[b][0] == labels[first][0]  # mix1's clip leads
            assert set(merged[b]) == set(labels[first]) | set(labels[second])
            assert len(merged[b]) == len(set(merged[b]))
            leaders = list(dict.fromkeys([labels[first][0], labels[second][0]]))
            assert merged[b][:len(leaders)] == leaders


def test_prompts_pad_with_noise_and_truncate_to_m():
    align = ClapAlignment(TinyClap(), 4)
    assert align.prompts(_batch()) == [
        ["The sound of Dog", "The sound of Cat", "The sound of Bark", "Noise"],
        ["The sound of Bark", "The sound of Dog", "The sound of Cat", "The sound of Rain"],
        ["The sound of Cat", "The sound of Bark", "The sound of Rain", "Noise"],
    ]
    small = ClapAlignment(TinyClap(), 2)
    assert small.prompts(_batch()) == [
        ["The sound of Dog", "The sound of Cat"],
        ["The sound of Bark", "The sound of Dog"],
        ["The sound of Cat", "The sound of Bark"],
    ]
    assert ClapAlignment(TinyClap(), 3).prompts(_batch([[], []])) == [["Noise"] * 3] * 2


# --- CLAP passes -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("contrastive, ranking", [(True, True), (True, False), (False, True)])
def test_clap_pass_counts(contrastive, ranking):
    encoder = CountingClap()
    align = ClapAlignment(encoder, M, contrastive=contrastive, ranking=ranking)
    batch = _batch()
    b = batch["mixture"].shape[0]
    for n in (1, 2):
        l_cl, l_rank = align(_sources(b, seed=n), batch)
        rows = b * M + (b if ranking else 0)  # M + 1 per mixture with the ranking term, M without
        assert encoder.audio_rows == n * rows
        assert align.audio_passes == n * rows
        assert align.mixtures == n * b
        assert len(encoder.text_calls) == (n if contrastive else 0)
        assert (l_cl.item() == 0.0) == (not contrastive)
        assert (l_rank.item() == 0.0) == (not ranking)
    if contrastive:  # one text call per batch, with the B x M prompts in mixture order
        assert encoder.text_calls[0] == [p for row in align.prompts(batch) for p in row]
    # sources go in as one [B * M, T] call, the mixture as one [B, T] call
    assert [rows for rows, _ in encoder.audio_calls[: (2 if ranking else 1)]] == [b * M] + ([b] if ranking else [])


# --- values ----------------------------------------------------------------------------------------------------

def test_loss_values_match_a_direct_recomputation():
    encoder = TinyClap(input_rate=SR, seed=4)
    align = ClapAlignment(encoder, M)
    with torch.no_grad():
        align.logit_scale.fill_(2.5)  # not the initial value, so the parameter is what is used
    batch = _batch()
    sources = _sources(3)
    l_cl, l_rank = align(sources, batch)

    reference = TinyClap(input_rate=SR, seed=4)
    source_emb = reference.embed_audio(sources.reshape(3 * M, T)).reshape(3, M, -1)
    mixture_emb = reference.embed_audio(batch["mix1"] + torch.roll(batch["audio"], 1, dims=0))
    prompts = [["The sound of " + label for label in row] + ["Noise"] * (M - len(row)) for row in EXPECTED]
    text_emb = reference.embed_text([p for row in prompts for p in row]).reshape(3, M, -1)
    expected_cl = contrastive_loss(source_emb, text_emb, torch.tensor(2.5))
    sim = torch.einsum("bmd,bd->bm", source_emb, mixture_emb)
    expected_rank = ranking_loss(sim)
    torch.testing.assert_close(l_cl, expected_cl, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(l_rank, expected_rank, rtol=1e-5, atol=1e-6)
    assert l_cl.item() > 0 and 0 < l_rank.item() < 2
    # the mixture of mixtures matters: ranking against clip b alone (mix1) gives another value
    assert ranking_loss(torch.einsum("bmd,bd->bm", source_emb, reference.embed_audio(batch["mix1"]))).item() \
        != pytest.approx(l_rank.item(), abs=1e-6)


# --- gradients -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("term", ["cl", "rank"])
def test_each_loss_alone_reaches_the_separator(term):
    torch.manual_seed(0)
    separator = build_separator(SeparatorConfig.preset("tiny"))
    separator.eval()
    encoder = CountingClap()
    align = ClapAlignment(encoder, separator.config.num_sources)
    batch = _batch([["Dog", "Bark"], ["Cat"]], samples=SR // 2)
    batch["mixture"].requires_grad_(True)  # even a mixture that could carry a graph is embedded without one
    sources = separator(batch["mixture"].detach())
    l_cl, l_rank = align(sources, batch)
    (l_cl if term == "cl" else l_rank).backward()
    grads = [p.grad for p in separator.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    assert sum(g.abs().sum().item() for g in grads if g is not None) > 0
    (source_rows, source_emb), (mixture_rows, mixture_emb) = encoder.audio_calls[:2]
    assert (source_rows, mixture_rows) == (2 * separator.config.num_sources, 2)
    assert source_emb.requires_grad
    assert not mixture_emb.requires_grad and mixture_emb.grad_fn is None
    assert batch["mixture"].grad is None
    if term == "cl":
        assert align.logit_scale.grad is not None and align.logit_scale.grad.item() != 0
    else:
        assert align.logit_scale.grad is None


# --- temperature -----------------------------------------------------------------------------------------------

def test_trainable_and_after_step_clamp():
    align = ClapAlignment(TinyClap(), M)
    assert align.logit_scale.item() == pytest.approx(math.log(1 / 0.07))
    assert LOGIT_SCALE_INIT == pytest.approx(math.log(1 / 0.07))
    trainable = align.trainable()
    assert len(trainable) == 1 and trainable[0] is align.logit_scale
    learnable = [p for p in align.parameters() if p.requires_grad]  # the TinyClap's weights are frozen
    assert len(learnable) == 1 and learnable[0] is align.logit_scale
    assert ClapAlignment(TinyClap(), M, contrastive=False).trainable() == []
    assert ClapAlignment(TinyClap(), M, ranking=False).trainable()[0] is not None
    for value, expected in ((10.0, math.log(100)), (-1.0, 0.0), (1.5, 1.5)):
        with torch.no_grad():
            align.logit_scale.fill_(value)
        align.after_step()
        assert align.logit_scale.item() == pytest.approx(expected)
        assert isinstance(align.logit_scale, nn.Parameter) and align.logit_scale.requires_grad


# --- errors ----------------------------------------------------------------------------------------------------

def test_errors():
    with pytest.raises(MacsError, match="both the contrastive and the ranking term are off"):
        ClapAlignment(TinyClap(), M, contrastive=False, ranking=False)
    unlabelled = _batch()
    del unlabelled["labels"]
    with pytest.raises(MacsError, match="labels"):
        ClapAlignment(TinyClap(), M)(_sources(3), unlabelled)
    short = _batch()
    short["labels"] = short["labels"][:2]  # one clip's labels missing
    with pytest.raises(MacsError, match="labels"):
        ClapAlignment(TinyClap(), M).prompts(short)
    # without the contrastive term labels are not needed
    l_cl, l_rank = ClapAlignment(TinyClap(), M, contrastive=False)(_sources(3), unlabelled)
    assert l_cl.item() == 0 and l_rank.item() > 0
    with pytest.raises(ValueError, match=f"expected {M} sources, got {M + 1}"):
        ClapAlignment(TinyClap(), M)(_sources(3, m=M + 1), _batch())
