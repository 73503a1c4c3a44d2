import itertools
import math

import numpy as np
import pytest
import torch
from scipy import stats
from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio as tm_si_sdr

from macs_model.separation.losses import (
    bipartitions,
    clamp_logit_scale_,
    contrastive_loss,
    mixit_loss,
    mixit_loss_remix,
    ramp_weights,
    ranking_loss,
    si_sdr,
    soft_assign,
    total_loss,
)


@pytest.fixture
def gen():
    """A fresh seeded torch generator per test, so data never depends on test order."""
    return torch.Generator().manual_seed(20240611)


def randn(gen, *shape, dtype=torch.float64):
    return torch.randn(*shape, generator=gen, dtype=dtype)


# ---------------------------------------------------------------- SI-SDR


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_si_sdr_matches_torchmetrics_zero_mean(gen, dtype):
    reference = randn(gen, 3, 2, 800, dtype=dtype) + 0.3  # a DC offset, which zero-mean removes
    estimate = reference + 0.5 * randn(gen, 3, 2, 800, dtype=dtype) - 1.0
    ours = si_sdr(estimate, reference)
    expected = tm_si_sdr(estimate, reference, zero_mean=True)
    assert ours.shape == (3, 2)
    torch.testing.assert_close(ours, expected, atol=1e-4, rtol=0)


def test_si_sdr_broadcasts_reference(gen):
    reference = randn(gen, 2, 1, 500)
    estimate = randn(gen, 2, 4, 500) + reference
    torch.testing.assert_close(si_sdr(estimate, reference), si_sdr(estimate, reference.expand(2, 4, 500)))


@pytest.mark.parametrize(
    "estimate_zero,reference_zero", [(True, False), (False, True), (True, True)], ids=["est", "ref", "both"]
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_si_sdr_silent_signals_finite_with_finite_gradients(gen, estimate_zero, reference_zero, dtype):
    noise = randn(gen, 2, 400).to(dtype)
    estimate = (torch.zeros_like(noise) if estimate_zero else noise.clone()).requires_grad_()
    # a constant is silent too once the mean is removed
    reference = (torch.full_like(noise, 0.25) if reference_zero else noise.flip(-1).clone()).requires_grad_()
    value = si_sdr(estimate, reference)
    value.sum().backward()
    assert torch.isfinite(value).all()
    assert torch.isfinite(estimate.grad).all() and torch.isfinite(reference.grad).all()
    if estimate_zero and reference_zero:
        torch.testing.assert_close(value, torch.zeros_like(value))


@pytest.mark.parametrize(
    "estimate,reference",
    [
        (torch.zeros(2, 10), torch.zeros(2, 11)),
        (torch.zeros(3, 10), torch.zeros(2, 10)),
        (torch.zeros(()), torch.zeros(())),
    ],
)
def test_si_sdr_rejects_mismatched_shapes(estimate, reference):
    with pytest.raises(ValueError, match="si_sdr"):
        si_sdr(estimate, reference)


def test_si_sdr_rejects_integer_tensors():
    with pytest.raises(ValueError, match="floating"):
        si_sdr(torch.ones(4, dtype=torch.int64), torch.ones(4))


# ---------------------------------------------------------------- bipartitions


def brute_force_assignments(m):
    """Every 0/1 assignment of m sources (1 = group 1) except all-to-one, by itertools."""
    return {a for a in itertools.product((0, 1), repeat=m) if 0 < sum(a) < m}


@pytest.mark.parametrize("m", [2, 3, 4, 6])
def test_bipartitions_are_all_ordered_non_empty_splits(m):
    table = bipartitions(m)
    assert table.shape == (2**m - 2, m) and table.dtype == torch.bool
    rows = [tuple(int(v) for v in row) for row in table.tolist()]
    assert len(set(rows)) == len(rows)
    assert set(rows) == brute_force_assignments(m)
    assert {tuple(1 - v for v in row) for row in rows} == set(rows)  # every mirror present


def test_bipartitions_cache_cannot_be_corrupted_by_callers():
    first = bipartitions(4)
    first.fill_(False)
    assert bipartitions(4).sum(dim=1).min() >= 1


@pytest.mark.parametrize("m", [1, 0, 2.5])
def test_bipartitions_rejects_fewer_than_two_sources(m):
    with pytest.raises(ValueError, match="bipartitions"):
        bipartitions(m)


# ---------------------------------------------------------------- MixIT


def brute_force_mixit(estimates, mix1, mix2):
    """Per-example loop over itertools assignments, with torchmetrics' SI-SDR: (per-example min, argmin)."""
    mins, argmins = [], []
    for b in range(estimates.shape[0]):
        best, best_assignment = math.inf, None
        for assignment in itertools.product((0, 1), repeat=estimates.shape[1]):
            if sum(assignment) in (0, len(assignment)):
                continue
            remix1 = sum(estimates[b, i] for i, a in enumerate(assignment) if a == 1)
            remix2 = sum(estimates[b, i] for i, a in enumerate(assignment) if a == 0)
            loss = -(
                tm_si_sdr(remix1, mix1[b], zero_mean=True) + tm_si_sdr(remix2, mix2[b], zero_mean=True)
            ).item()
            if loss < best:
                best, best_assignment = loss, assignment
        mins.append(best)
        argmins.append(best_assignment)
    return torch.tensor(mins, dtype=estimates.dtype), torch.tensor(argmins, dtype=torch.bool)


@pytest.mark.parametrize("form", [mixit_loss, mixit_loss_remix], ids=["gram", "remix"])
@pytest.mark.parametrize("m", [4, 6])
@pytest.mark.parametrize("planted", [False, True], ids=["random", "planted"])
def test_mixit_matches_brute_force(gen, m, planted, form):
    batch, length = 3, 800
    estimates = randn(gen, batch, m, length)
    mix1, mix2 = randn(gen, batch, length), randn(gen, batch, length)
    truth = None
    if planted:  # the mixtures are remixes of the estimates plus noise, so the best split is known
        truth = torch.tensor([[i % 2 == b % 2 for i in range(m)] for b in range(batch)])
        mix1 = (estimates * truth[..., None]).sum(1) + 0.3 * mix1
        mix2 = (estimates * ~truth[..., None]).sum(1) + 0.3 * mix2
    loss, best = form(estimates, mix1, mix2)
    mins, argmins = brute_force_mixit(estimates, mix1, mix2)
    assert loss.ndim == 0
    assert loss.item() == pytest.approx(mins.mean().item(), abs=1e-5)
    assert best.shape == (batch, m) and best.dtype == torch.bool
    assert torch.equal(best, argmins)
    if planted:
        assert torch.equal(best, truth)
        assert loss.item() < -10  # sum of two well-above-zero SI-SDRs


def _mixit_planted(gen, batch, m, length, noise, dtype=torch.float64):
    """Estimates and mixtures that are noisy remixes of them (best splits well separated, high SI-SDR)."""
    estimates = randn(gen, batch, m, length, dtype=dtype) + 0.5
    truth = torch.tensor([[(i + b) % 3 == 0 for i in range(m)] for b in range(batch)])
    truth[:, 0], truth[:, 1] = True, False
    mix1 = (estimates * truth[..., None]).sum(1) + noise * randn(gen, batch, length, dtype=dtype)
    mix2 = (estimates * ~truth[..., None]).sum(1) + noise * randn(gen, batch, length, dtype=dtype)
    return estimates, mix1, mix2


@pytest.mark.parametrize("m", [2, 3, 6, 8])
@pytest.mark.parametrize("noise", [3.0, 0.3, 1e-3], ids=["noisy", "planted", "near-exact"])
def test_mixit_gram_form_equals_remix_form_with_gradients(gen, m, noise):
    """The Gram-matrix loss, its best split and its gradients are the remix form's, to 1e-5 (float64)."""
    estimates, mix1, mix2 = _mixit_planted(gen, 3, m, 600, noise)
    results = []
    for form in (mixit_loss, mixit_loss_remix):
        leaves = [x.clone().requires_grad_() for x in (estimates, mix1, mix2)]
        loss, best = form(*leaves)
        loss.backward()
        results.append((loss.detach(), best, [x.grad for x in leaves]))
    (gram, gram_best, gram_grads), (remix, remix_best, remix_grads) = results
    assert torch.equal(gram_best, remix_best)
    assert gram.item() == pytest.approx(remix.item(), abs=1e-5)
    for ours, reference in zip(gram_grads, remix_grads):
        assert torch.allclose(ours, reference, atol=1e-5, rtol=1e-5)
    assert remix_grads[0].abs().max() > 1e-3  # the comparison is not between two zero gradients


def test_mixit_gram_form_keeps_float32_precision_near_exact_splits(gen):
    """In float32 the Gram form stays within 1e-3 dB of the float64 loss even at ~80 dB SI-SDR."""
    estimates, mix1, mix2 = _mixit_planted(gen, 2, 6, 4000, 1e-4)
    loss64, _ = mixit_loss_remix(estimates, mix1, mix2)
    loss32, _ = mixit_loss(estimates.float(), mix1.float(), mix2.float())
    assert loss32.dtype == torch.float32 and loss64.item() < -120
    assert loss32.item() == pytest.approx(loss64.item(), abs=1e-3)


def test_mixit_float32_agrees_with_float64(gen):
    estimates, mix1, mix2 = randn(gen, 2, 4, 800), randn(gen, 2, 800), randn(gen, 2, 800)
    loss64, best64 = mixit_loss(estimates, mix1, mix2)
    loss32, best32 = mixit_loss(estimates.float(), mix1.float(), mix2.float())
    assert loss32.dtype == torch.float32
    assert loss32.item() == pytest.approx(loss64.item(), abs=1e-3)
    assert torch.equal(best32, best64)


def test_mixit_gradients_reach_estimates(gen):
    estimates = randn(gen, 2, 4, 800).requires_grad_()
    loss, _ = mixit_loss(estimates, randn(gen, 2, 800), randn(gen, 2, 800))
    loss.backward()
    assert torch.isfinite(estimates.grad).all()
    assert (estimates.grad.abs().sum(dim=-1) > 0).all()  # every source is in one of the two remixes


def test_mixit_zero_estimates_and_silent_mixtures_are_finite(gen):
    estimates = torch.zeros(2, 4, 800, dtype=torch.float64, requires_grad=True)
    loss, best = mixit_loss(estimates, randn(gen, 2, 800), torch.zeros(2, 800, dtype=torch.float64))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(estimates.grad).all()
    assert best.any(dim=1).all() and (~best).any(dim=1).all()  # still a proper split


@pytest.mark.parametrize(
    "shapes",
    [((2, 800), (2, 800), (2, 800)), ((2, 4, 800), (2, 799), (2, 800)), ((2, 4, 800), (2, 800), (3, 800)),
     ((2, 1, 800), (2, 800), (2, 800))],
    ids=["2d-estimates", "length", "batch", "one-source"],
)
def test_mixit_rejects_bad_shapes(shapes):
    for form in (mixit_loss, mixit_loss_remix):
        with pytest.raises(ValueError, match=form.__name__):
            form(*(torch.zeros(s) for s in shapes))


# ---------------------------------------------------------------- contrastive


def loop_contrastive(audio, text, logit_scale, tau):
    """Eq. 5-7 written out element by element in float64 python arithmetic."""
    def cos(u, v):
        return float(u @ v) / (float(u.norm()) * float(v.norm()))

    batch, m, _ = audio.shape
    prompts = text.shape[1]
    total = 0.0
    for b in range(batch):
        assigned = []
        for i in range(m):
            weights = [math.exp(cos(audio[b, i], text[b, j]) / tau) for j in range(prompts)]
            assigned.append(sum(w * text[b, j] for j, w in enumerate(weights)) / sum(weights))
        scale = math.exp(min(logit_scale, math.log(100)))
        w = [[scale * cos(audio[b, i], assigned[j]) for j in range(m)] for i in range(m)]
        rows = sum(-math.log(math.exp(w[i][i]) / sum(math.exp(w[i][j]) for j in range(m))) for i in range(m))
        cols = sum(-math.log(math.exp(w[i][i]) / sum(math.exp(w[j][i]) for j in range(m))) for i in range(m))
        total += rows / (2 * m) + cols / (2 * m)
    return total / batch


@pytest.mark.parametrize("logit_scale,tau,prompts", [(math.log(1 / 0.07), 0.01, 4), (2.0, 0.3, 4), (5.0, 0.05, 4),
                                                     (2.0, 0.3, 7), (math.log(1 / 0.07), 0.01, 2)])
def test_contrastive_matches_loop(gen, logit_scale, tau, prompts):
    # label norms differ from row to row: Eq. 5 averages E^T as given, not normalised; the release soft-assigns
    # more (or fewer) prompts than there are sources
    audio = randn(gen, 2, 4, 8)
    text = randn(gen, 2, prompts, 8) * (0.5 + 3 * torch.rand(2, prompts, 1, generator=gen))
    expected = loop_contrastive(audio, text, logit_scale, tau)
    assert contrastive_loss(audio, text, logit_scale, tau).item() == pytest.approx(expected, rel=1e-9)


def test_soft_assign_is_a_row_softmax_of_cosines(gen):
    audio, text = randn(gen, 2, 3, 5), randn(gen, 2, 3, 5)
    p = soft_assign(audio, text, tau=0.5)
    assert p.shape == (2, 3, 3)
    torch.testing.assert_close(p.sum(-1), torch.ones(2, 3, dtype=torch.float64))
    cos = torch.nn.functional.cosine_similarity(audio[:, :, None], text[:, None], dim=-1)
    torch.testing.assert_close(p, torch.softmax(cos / 0.5, dim=-1))
    # a text embedding scaled up does not win more weight (cosines, not dot products)
    scaled = text.clone()
    scaled[:, 0] *= 10
    torch.testing.assert_close(soft_assign(audio, scaled, tau=0.5), p)


def test_contrastive_is_independent_of_label_order_and_of_slot_order(gen):
    audio, text = randn(gen, 2, 5, 16), randn(gen, 2, 5, 16)
    base = contrastive_loss(audio, text, 3.0)
    perm = torch.tensor([3, 0, 4, 1, 2])
    torch.testing.assert_close(contrastive_loss(audio, text[:, perm], 3.0), base)  # labels are unordered
    torch.testing.assert_close(contrastive_loss(audio[:, perm], text, 3.0), base)  # slots relabel the diagonal
    torch.testing.assert_close(contrastive_loss(audio * 7.0, text, 3.0), base)  # cosines only


def test_contrastive_batch_loss_is_mean_of_mixtures(gen):
    audio, text = randn(gen, 3, 4, 8), randn(gen, 3, 4, 8)
    per_mixture = [contrastive_loss(audio[b : b + 1], text[b : b + 1], 2.5) for b in range(3)]
    torch.testing.assert_close(contrastive_loss(audio, text, 2.5), torch.stack(per_mixture).mean())


def test_contrastive_low_when_aligned_and_log_m_when_collapsed(gen):
    m = 6
    text = randn(gen, 2, m, 64)
    aligned = contrastive_loss(text + 0.05 * randn(gen, 2, m, 64), text, math.log(100))
    unaligned = contrastive_loss(randn(gen, 2, m, 64), text, math.log(100))
    collapsed = contrastive_loss(text[:, :1].expand(2, m, 64), text, math.log(100))
    assert aligned.item() < 1e-3
    assert unaligned.item() > 0.5
    # every source assigned to the same label: all logits equal, chance level
    assert collapsed.item() == pytest.approx(math.log(m), abs=1e-3)


def test_contrastive_gradients_reach_embeddings_and_logit_scale(gen):
    audio = randn(gen, 2, 4, 8).requires_grad_()
    text = randn(gen, 2, 4, 8).requires_grad_()
    logit_scale = torch.tensor(math.log(1 / 0.07), dtype=torch.float64, requires_grad=True)
    contrastive_loss(audio, text, logit_scale).backward()
    for grad in (audio.grad, text.grad, logit_scale.grad):
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_contrastive_clamps_logit_scale_at_ln_100(gen):
    audio, text = randn(gen, 2, 4, 8), randn(gen, 2, 4, 8)
    at_max = contrastive_loss(audio, text, math.log(100))
    torch.testing.assert_close(contrastive_loss(audio, text, 10.0), at_max)
    torch.testing.assert_close(contrastive_loss(audio, text, -3.0), contrastive_loss(audio, text, 0.0))
    assert not torch.allclose(contrastive_loss(audio, text, math.log(100) - 0.5), at_max)


def test_clamp_logit_scale_in_place():
    high = torch.nn.Parameter(torch.tensor(6.0))
    low = torch.nn.Parameter(torch.tensor(-1.0))
    inside = torch.nn.Parameter(torch.tensor(2.0))
    assert clamp_logit_scale_(high) is high
    clamp_logit_scale_(low)
    clamp_logit_scale_(inside)
    assert high.item() == pytest.approx(math.log(100))
    assert low.item() == 0.0 and inside.item() == 2.0
    assert high.requires_grad


@pytest.mark.parametrize(
    "audio_shape,text_shape", [((2, 4, 8), (2, 4, 7)), ((4, 8), (4, 8)), ((2, 4, 8), (3, 4, 8))]
)
def test_contrastive_rejects_bad_shapes(audio_shape, text_shape):
    with pytest.raises(ValueError, match="contrastive_loss"):
        contrastive_loss(torch.zeros(audio_shape), torch.zeros(text_shape), 1.0)


def test_contrastive_rejects_non_scalar_logit_scale_and_bad_tau(gen):
    audio, text = randn(gen, 1, 3, 4), randn(gen, 1, 3, 4)
    with pytest.raises(ValueError, match="logit_scale"):
        contrastive_loss(audio, text, torch.ones(2))
    with pytest.raises(ValueError, match="tau"):
        soft_assign(audio, text, tau=0.0)


# ---------------------------------------------------------------- ranking


def descending_target(m):
    return np.arange(m, 0, -1)


def test_ranking_equals_one_minus_scipy_spearman_per_row(gen):
    m = 6
    rows = torch.stack([torch.linspace(-0.9, 0.9, m, dtype=torch.float64)[torch.randperm(m, generator=gen)]
                        for _ in range(5)])
    expected = [1 - stats.spearmanr(row.numpy(), descending_target(m)).statistic for row in rows]
    for row, value in zip(rows, expected):
        assert ranking_loss(row[None], regularization_strength=1e-3).item() == pytest.approx(value, abs=1e-3)
    assert ranking_loss(rows, regularization_strength=1e-3).item() == pytest.approx(np.mean(expected), abs=1e-3)
    assert np.ptp(expected) > 0.5  # the rows really differ


@pytest.mark.parametrize("strength", [1e-3, 1.0])
def test_ranking_descending_is_zero_and_ascending_is_two(strength):
    descending = torch.tensor([[0.9, 0.5, 0.2, -0.1, -0.6]])
    assert ranking_loss(descending, strength).item() == pytest.approx(0.0, abs=1e-2)
    assert ranking_loss(descending.flip(-1), strength).item() == pytest.approx(2.0, abs=1e-2)


def test_ranking_at_strength_one_on_cosines_is_one_minus_pearson(gen):
    rows = torch.rand(4, 6, generator=gen, dtype=torch.float64) * 2 - 1
    for row in rows:
        pearson = stats.pearsonr(row.numpy(), descending_target(6)).statistic
        assert ranking_loss(row[None], 1.0).item() == pytest.approx(1 - pearson, abs=1e-6)


def test_ranking_gradients_reach_the_input(gen):
    sim = (torch.rand(3, 6, generator=gen) * 2 - 1).requires_grad_()
    ranking_loss(sim).backward()
    assert torch.isfinite(sim.grad).all()
    assert (sim.grad.abs().sum(dim=1) > 0).all()


def test_ranking_constant_row_is_finite():
    sim = torch.full((2, 4), 0.3, requires_grad=True)
    loss = ranking_loss(sim)
    loss.backward()
    assert loss.item() == pytest.approx(1.0)
    assert torch.isfinite(sim.grad).all()


def test_ranking_rows_are_independent(gen):
    rows = torch.rand(3, 6, generator=gen, dtype=torch.float64) * 2 - 1
    singles = torch.stack([ranking_loss(row[None]) for row in rows])
    torch.testing.assert_close(ranking_loss(rows), singles.mean())
    # changing row 2 (here: by a large shift and scale) leaves row 0's gradient alone
    changed = rows.clone()
    changed[2] = 5 * changed[2] + 3
    grads = []
    for batch in (rows, changed):
        batch = batch.clone().requires_grad_()
        ranking_loss(batch).backward()
        grads.append(batch.grad[0])
    torch.testing.assert_close(grads[0], grads[1])


@pytest.mark.parametrize("shape", [(6,), (3, 1), (2, 3, 4)])
def test_ranking_rejects_bad_shapes(shape):
    with pytest.raises(ValueError, match="ranking_loss"):
        ranking_loss(torch.zeros(shape))


def test_ranking_rejects_non_positive_strength():
    with pytest.raises(ValueError, match="regularization_strength"):
        ranking_loss(torch.zeros(2, 3), regularization_strength=0.0)


# ---------------------------------------------------------------- weights


def test_total_loss_weights_each_term():
    rec, cl, rank = torch.tensor(2.0), torch.tensor(3.0), torch.tensor(5.0)
    assert total_loss(rec, cl, rank).item() == 10.0
    assert total_loss(rec, cl, rank, lambda_=7.0, mu=11.0, gamma=13.0).item() == 2 * 7 + 3 * 11 + 5 * 13


@pytest.mark.parametrize(
    "epoch,epochs,expected",
    [(0, 5, (1.0, 0.0)), (1, 5, (0.75, 0.25)), (2, 5, (0.5, 0.5)), (4, 5, (0.0, 1.0)), (0, 2, (1.0, 0.0)),
     (1, 2, (0.0, 1.0)), (0, 1, (1.0, 0.0))],
)
def test_ramp_weights(epoch, epochs, expected):
    assert ramp_weights(epoch, epochs) == pytest.approx(expected)


def test_ramp_with_total_loss_is_the_release_schedule():
    rec, cl, rank = torch.tensor(2.0), torch.tensor(3.0), torch.tensor(5.0)
    w_rec, w_align = ramp_weights(3, 10)
    alpha = 3 / 9
    value = total_loss(rec, cl, rank, lambda_=w_rec, mu=w_align, gamma=w_align)
    assert value.item() == pytest.approx((1 - alpha) * 2 + alpha * (3 + 5))


@pytest.mark.parametrize("epoch,epochs", [(0, 0), (5, 5), (-1, 3), (1.5, 3)])
def test_ramp_weights_rejects_out_of_range(epoch, epochs):
    with pytest.raises(ValueError, match="ramp_weights"):
        ramp_weights(epoch, epochs)
