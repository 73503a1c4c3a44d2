"""Stage-1 separator losses (paper §3.1-3.2): MixIT reconstruction, audio-text contrastive, ranking.

Pure torch, batch-first and differentiable; every function runs on the device of its inputs. Inputs in half
precision are computed in float32, because the eps guards underflow there. Wrong shapes or arguments are
programming errors and raise ValueError.

Readings of the paper's equations:

- Eq. 1-3 (reconstruction): the loss of a bipartition is the SUM of the two negative SI-SDRs (one per
  mixture), the minimum is taken over all 2^M - 2 ordered bipartitions with both parts non-empty (Eq. 2), and
  the batch loss is the mean of the per-example minima. SI-SDR is zero-mean (Le Roux et al. 2019), with the
  mixture as reference and the remix as estimate, as torchmetrics computes it.
- Eq. 5 (soft assignment) has E'^T on both sides; the right-hand one is read as E^T. Row i of the softmax
  (over labels j) weighs the label embeddings for separated source i, so E'^T[i] = sum_j p_ij E^T[j], using
  E^T as given (CLAP's text embeddings are already unit-norm, so normalising first would not change them).
  Gradients flow through the assignment, as the equation is written.
- Eq. 6-7 (contrastive): W = exp(logit_scale) <E^A><E'^T>^T is M x M per mixture, so the InfoNCE contrasts
  the M slots of one mixture (not the whole batch); the two directions are averaged; the batch loss is the
  mean over mixtures. The learnable tau' is a CLIP logit scale, 1/tau' = exp(logit_scale), held in
  [0, ln 100] as open_clip does.
- Eq. 4 (ranking): 1 - Spearman between the soft ranks of one mixture's similarities and the fixed target in
  which slot 0 ranks highest, per mixture, then the batch mean.
"""

from __future__ import annotations

import math
import operator
from functools import lru_cache

import torch
import torch.nn.functional as F
import torchsort

LOGIT_SCALE_MAX = math.log(100.0)  # CLIP never scales cosines by more than 100
LOGIT_SCALE_MIN = 0.0  # nor by less than 1 (open_clip clamps the parameter to [0, ln 100])
_CORRELATION_EPS = 1e-12  # keeps Spearman finite (0) when every soft rank of a row is equal


def _computable(x: torch.Tensor, name: str) -> torch.Tensor:
    """x as a floating tensor of at least float32 precision."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating tensor, got {x.dtype}")
    return x.to(torch.promote_types(x.dtype, torch.float32))


def si_sdr(estimate: torch.Tensor, reference: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Zero-mean scale-invariant SDR in dB over the last (time) axis; shape: the broadcast shape without it.

    Same formula as torchmetrics' ``scale_invariant_signal_distortion_ratio(preds=estimate, target=reference,
    zero_mean=True)``, with ``eps`` added to each numerator and denominator so that a zero-energy reference or
    estimate gives a finite value (0 dB when both are silent) and finite gradients. Away from silence the
    value depends only on the correlation of the two zero-mean signals, so it is symmetric in its arguments.
    """
    estimate = _computable(estimate, "estimate")
    reference = _computable(reference, "reference")
    if estimate.ndim == 0 or reference.ndim == 0:
        raise ValueError("si_sdr needs a time axis: got a 0-d tensor")
    if estimate.shape[-1] != reference.shape[-1]:
        raise ValueError(f"si_sdr: estimate has {estimate.shape[-1]} samples, reference {reference.shape[-1]}")
    try:
        torch.broadcast_shapes(estimate.shape, reference.shape)
    except RuntimeError:
        raise ValueError(
            f"si_sdr: shapes {tuple(estimate.shape)} and {tuple(reference.shape)} do not broadcast"
        ) from None
    estimate = estimate - estimate.mean(dim=-1, keepdim=True)
    reference = reference - reference.mean(dim=-1, keepdim=True)
    alpha = ((estimate * reference).sum(dim=-1, keepdim=True) + eps) / (
        reference.pow(2).sum(dim=-1, keepdim=True) + eps
    )
    target = alpha * reference
    noise = target - estimate
    ratio = (target.pow(2).sum(dim=-1) + eps) / (noise.pow(2).sum(dim=-1) + eps)
    return 10 * torch.log10(ratio)


@lru_cache(maxsize=None)
def _bipartition_table(m: int, device: torch.device) -> torch.Tensor:
    """bipartitions(m) built once per (m, device); shared, so never handed out or modified."""
    codes = torch.arange(1, 2**m - 1, device=device)
    bits = torch.arange(m, device=device)
    return (codes[:, None] >> bits) & 1 == 1


def bipartitions(m: int) -> torch.Tensor:
    """Every ordered split of m sources into two non-empty groups (Eq. 2): bool [2^m - 2, m], True = group 1.

    A split and its mirror are both present (row k and row 2^m - 3 - k are complements); the two all-to-one
    assignments are not. Rows are in binary order of the group-1 membership bits, source 0 the lowest bit.
    """
    try:
        m = operator.index(m)
    except TypeError:
        raise ValueError(f"bipartitions: m must be an integer, got {type(m).__name__}") from None
    if m < 2:
        raise ValueError(f"bipartitions: need at least 2 sources to split into two non-empty groups, got {m}")
    return _bipartition_table(m, torch.device("cpu")).clone()


def _check_mixit(estimates, mix1, mix2, caller: str):
    """The three MixIT inputs as computable tensors of shapes [B, M, T], [B, T], [B, T] with M >= 2."""
    estimates = _computable(estimates, "estimates")
    mix1 = _computable(mix1, "mix1")
    mix2 = _computable(mix2, "mix2")
    if estimates.ndim != 3:
        raise ValueError(f"{caller}: estimates must be [B, M, T], got shape {tuple(estimates.shape)}")
    batch, m, length = estimates.shape
    for name, mix in (("mix1", mix1), ("mix2", mix2)):
        if mix.shape != (batch, length):
            raise ValueError(
                f"{caller}: {name} must be [B, T] = [{batch}, {length}], got shape {tuple(mix.shape)}"
            )
    if m < 2:
        raise ValueError(f"{caller}: need at least 2 estimated sources, got {m}")
    return estimates, mix1, mix2


def _si_sdr_from_products(cross: torch.Tensor, energy: torch.Tensor, reference: torch.Tensor,
                          eps: float) -> torch.Tensor:
    """si_sdr from inner products of the zero-mean signals: <est, ref>, <est, est> and <ref, ref> (broadcast).

    The same algebra as si_sdr: alpha = (<e, r> + eps) / (<r, r> + eps), target energy alpha^2 <r, r>, noise
    energy ||alpha r - e||^2 = alpha^2 <r, r> - 2 alpha <e, r> + <e, e> (clamped at 0 against rounding).
    """
    alpha = (cross + eps) / (reference + eps)
    target = alpha.square() * reference
    noise = (target - 2 * alpha * cross + energy).clamp(min=0)
    return 10 * torch.log10((target + eps) / (noise + eps))


def mixit_loss(
    estimates: torch.Tensor, mix1: torch.Tensor, mix2: torch.Tensor, eps: float = 1e-8
) -> tuple[torch.Tensor, torch.Tensor]:
    """MixIT loss (Eq. 1-3) and the best bipartition per example, from the sources' Gram matrix.

    For each example b the loss is min over bipartitions k of -(SI-SDR(mix1, remix1_k) + SI-SDR(mix2,
    remix2_k)) - the SUM of the two terms, as Eq. 1 writes it - where remix1_k sums the estimates in group 1
    of ``bipartitions(M)[k]`` and remix2_k the rest. Returns (mean over the batch, bool [B, M] with True where
    a source goes to mix1).

    Every SI-SDR of a remix w (0/1 weights over the sources) depends on the signals only through inner products:
    <remix, mix> = w . <s_i, mix> and <remix, remix> = w^T G w with G the sources' Gram matrix. So the
    O(M^2 T) products of the zero-mean sources and mixtures are taken once (in float64, so the noise energy,
    a difference of such products, keeps its precision) and the 2^M - 2 bipartitions cost O(2^M M^2) scalar
    work, instead of building each remix (``mixit_loss_remix``, equal to this within rounding).
    """
    estimates, mix1, mix2 = _check_mixit(estimates, mix1, mix2, "mixit_loss")
    m = estimates.shape[1]
    signals = torch.cat([estimates, mix1[:, None], mix2[:, None]], dim=1)
    wide = torch.float32 if signals.device.type == "mps" else torch.float64  # mps has no float64
    signals = signals.to(torch.promote_types(signals.dtype, wide))
    signals = signals - signals.mean(dim=-1, keepdim=True)
    products = signals @ signals.transpose(-1, -2)  # [B, M + 2, M + 2]
    gram, to_mix = products[:, :m, :m], products[:, :m, m:]  # <s_i, s_j>, <s_i, mix_j>
    mix_energy = products[:, m:, m:].diagonal(dim1=-2, dim2=-1)  # [B, 2]
    groups = _bipartition_table(m, estimates.device)
    weights = torch.stack([groups, ~groups], dim=1).to(signals.dtype)  # [K, 2, M]: remix j of bipartition k
    cross = torch.einsum("kjm,bmj->bkj", weights, to_mix)  # <remix_j, mix_j>, [B, K, 2]
    energy = torch.einsum("kjm,bmn,kjn->bkj", weights, gram, weights)  # <remix_j, remix_j>
    losses = -_si_sdr_from_products(cross, energy, mix_energy[:, None], eps).sum(dim=-1)  # [B, K]
    best_loss, best = losses.min(dim=1)
    return best_loss.mean().to(estimates.dtype), groups[best]


def mixit_loss_remix(
    estimates: torch.Tensor, mix1: torch.Tensor, mix2: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``mixit_loss`` computed the direct way: every remix built, then si_sdr on each (the reference form).

    Each intermediate holds 2 (2^M - 2) B T floats (0.5 GB at B = 8, M = 6, 8 s at 16 kHz; about 2.5 GB peak
    with the backward pass). Kept as the oracle of the Gram form and for ``benchmarks/mixit_speed.py``.
    """
    estimates, mix1, mix2 = _check_mixit(estimates, mix1, mix2, "mixit_loss_remix")
    groups = _bipartition_table(estimates.shape[1], estimates.device)
    weights = torch.stack([groups, ~groups], dim=1).to(estimates.dtype)  # [K, 2, M]
    remixes = torch.einsum("kjm,bmt->bkjt", weights, estimates)  # [B, K, 2, T]
    mixes = torch.stack([mix1, mix2], dim=1)[:, None]  # [B, 1, 2, T]
    losses = -si_sdr(remixes, mixes).sum(dim=-1)  # [B, K]
    best_loss, best = losses.min(dim=1)
    return best_loss.mean(), groups[best]


def _check_embeddings(audio_emb: torch.Tensor, text_emb: torch.Tensor, caller: str):
    """Both embeddings as computable tensors: audio [B, M, D], text [B, T, D] (T prompts, T = M or not)."""
    audio_emb = _computable(audio_emb, "audio_emb")
    text_emb = _computable(text_emb, "text_emb")
    if (audio_emb.ndim != 3 or text_emb.ndim != 3 or audio_emb.shape[0] != text_emb.shape[0]
            or audio_emb.shape[2] != text_emb.shape[2]):
        raise ValueError(
            f"{caller}: audio_emb must be [B, M, D] and text_emb [B, T, D], got {tuple(audio_emb.shape)} and "
            f"{tuple(text_emb.shape)}"
        )
    return audio_emb, text_emb


def soft_assign(audio_emb: torch.Tensor, text_emb: torch.Tensor, tau: float = 0.01) -> torch.Tensor:
    """Soft assignment of Eq. 5: P[b, i, j] = softmax_j(cos(audio_i, text_j) / tau), [B, M, T], rows sum to 1."""
    audio_emb, text_emb = _check_embeddings(audio_emb, text_emb, "soft_assign")
    if not tau > 0:
        raise ValueError(f"soft_assign: tau must be positive, got {tau}")
    cos = F.normalize(audio_emb, dim=-1) @ F.normalize(text_emb, dim=-1).transpose(-1, -2)
    return torch.softmax(cos / tau, dim=-1)


def clamp_logit_scale_(logit_scale: torch.Tensor) -> torch.Tensor:
    """Clamp a CLIP logit-scale parameter in place to [0, ln 100] (call after each optimiser step); returns it.

    contrastive_loss clamps the value it uses anyway; clamping the parameter too keeps it where its gradient
    is alive, as open_clip does.
    """
    with torch.no_grad():
        logit_scale.clamp_(LOGIT_SCALE_MIN, LOGIT_SCALE_MAX)
    return logit_scale


def contrastive_loss(
    audio_emb: torch.Tensor,
    text_emb: torch.Tensor,
    logit_scale: torch.Tensor | float,
    tau: float = 0.01,
) -> torch.Tensor:
    """Symmetric InfoNCE (Eq. 6-7) between separated-source embeddings and their soft-assigned labels (Eq. 5).

    ``audio_emb`` [B, M, D] are the CLAP embeddings of the M separated sources of each mixture, ``text_emb``
    [B, T, D] those of its T (padded) prompts, in any order: the soft assignment makes the loss independent of
    the prompt order. T may differ from M (the release soft-assigns 10 prompts onto 6 sources); the InfoNCE is
    M x M between the sources and their assigned texts either way.
    ``logit_scale`` is CLIP's log inverse temperature (scalar; init ln(1/0.07)), clamped to [0, ln 100] here.
    """
    audio_emb, text_emb = _check_embeddings(audio_emb, text_emb, "contrastive_loss")
    logit_scale = torch.as_tensor(logit_scale, dtype=audio_emb.dtype, device=audio_emb.device)
    if logit_scale.numel() != 1:
        raise ValueError(f"contrastive_loss: logit_scale must be a scalar, got shape {tuple(logit_scale.shape)}")
    assigned_text = soft_assign(audio_emb, text_emb, tau) @ text_emb
    scale = logit_scale.reshape(()).clamp(LOGIT_SCALE_MIN, LOGIT_SCALE_MAX).exp()
    logits = scale * F.normalize(audio_emb, dim=-1) @ F.normalize(assigned_text, dim=-1).transpose(-1, -2)
    audio_to_text = -torch.log_softmax(logits, dim=-1).diagonal(dim1=-2, dim2=-1)
    text_to_audio = -torch.log_softmax(logits, dim=-2).diagonal(dim1=-2, dim2=-1)
    return 0.5 * (audio_to_text.mean() + text_to_audio.mean())


def ranking_loss(sim: torch.Tensor, regularization_strength: float = 1.0) -> torch.Tensor:
    """Ranking loss (Eq. 4): mean over mixtures of 1 - Spearman(soft_rank(sim[b]), target), in [0, 2].

    ``sim[b, i]`` is cos(CLAP(source i), CLAP(mixture b)); the target ranks slot 0 highest, so the loss is 0
    when each row is in descending order. Soft ranks are torchsort's (Blondel et al. 2020, l2). At strength
    1 on cosines (spread <= 2) the soft ranks are an affine function of sim, so the loss is then
    1 - Pearson(sim[b], target); small strengths approach the true Spearman but give zero gradient.
    """
    sim = _computable(sim, "sim")
    if sim.ndim != 2 or sim.shape[1] < 2:
        raise ValueError(f"ranking_loss: sim must be [B, M] with M >= 2, got shape {tuple(sim.shape)}")
    if not regularization_strength > 0:
        raise ValueError(f"ranking_loss: regularization_strength must be positive, got {regularization_strength}")
    ranks = torchsort.soft_rank(sim, regularization="l2", regularization_strength=regularization_strength)
    m = sim.shape[1]
    target = torch.arange(m, 0, -1, dtype=sim.dtype, device=sim.device)
    ranks = ranks - ranks.mean(dim=-1, keepdim=True)
    target = target - target.mean()
    spearman = (ranks * target).sum(dim=-1) / torch.sqrt(
        ranks.pow(2).sum(dim=-1) * target.pow(2).sum() + _CORRELATION_EPS
    )
    return (1 - spearman).mean()


def total_loss(
    rec: torch.Tensor,
    cl: torch.Tensor,
    rank: torch.Tensor,
    lambda_: float = 1.0,
    mu: float = 1.0,
    gamma: float = 1.0,
) -> torch.Tensor:
    """Stage-1 objective (Eq. 8): lambda L_rec + mu L_CL + gamma L_rank.

    The release's ramp is ``w_rec, w_align = ramp_weights(epoch, epochs)`` with lambda_=w_rec and
    mu=gamma=w_align.
    """
    return lambda_ * rec + mu * cl + gamma * rank


def ramp_weights(epoch: int, epochs: int) -> tuple[float, float]:
    """The release's loss ramp: (1 - alpha, alpha) with alpha = epoch / (epochs - 1), epoch counted from 0.

    The weights go from reconstruction only (first epoch) to alignment only (last epoch). A one-epoch run
    (where the release divides by zero) gets alpha = 0: its only epoch is the first, and alignment losses on an
    untrained separator's outputs carry no signal.
    """
    try:
        epoch, epochs = operator.index(epoch), operator.index(epochs)
    except TypeError:
        raise ValueError(f"ramp_weights: epoch and epochs must be integers, got {epoch!r}, {epochs!r}") from None
    if epochs < 1 or not 0 <= epoch < epochs:
        raise ValueError(f"ramp_weights: need 0 <= epoch < epochs and epochs >= 1, got epoch={epoch}, epochs={epochs}")
    alpha = 0.0 if epochs == 1 else epoch / (epochs - 1)
    return 1.0 - alpha, alpha
