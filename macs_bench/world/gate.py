"""The world's gate: is one mixture embedding really worse than separated sources? Run before anything else is
trained on the world (``tools/world_gate.py``), recorded in the world report.

On held-out mixtures of the benchmark's kind (1-5 sources, evenly), the world CLAP (trained on single sources
only) embeds two things per clip:

- the **mixture embedding**: the unit-norm embedding of the mixture as the WAV holds it;
- the **per-source embedding**: the sum of the unit-norm embeddings of the clip's true sources, each exactly as
  it sounds inside the mixture (same gain, same stretch of time, same scale). A sum keeps the 64 dimensions of
  the mixture embedding, so both feed a probe of the same size; it is what a perfect separator hands on.

The same linear probe (one logistic regression per class on standardised features, L2 strength picked per
representation on a validation fifth of the probe's training clips, then refit on all of them) is trained on
each, and predicts a clip's label set as the classes with probability above 1/2. The score is exact label set
accuracy on test clips. The gate holds when the mixture probe falls at least 15 points below the per-source
probe; if it does not, the world is too easy to test separation and must be changed, not the gate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

MARGIN = 0.15
PROBE_TRAIN_SEED, PROBE_TEST_SEED = 3000, 4000
DEFINITION = ("exact label set accuracy of one linear probe (per-class logistic regression on standardised "
              "features, L2 picked per representation on a validation fifth, threshold 1/2) on the world CLAP's "
              "unit-norm mixture embedding vs on the sum of the unit-norm embeddings of the clip's true sources as "
              "they sound in the mixture; the gate holds when the mixture probe is at least 15 points lower")
L2_GRID = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


@dataclass(frozen=True)
class GateResult:
    """Exact label set accuracy of the two probes (overall and by number of sources) and the verdict."""

    mixture_accuracy: float
    per_source_accuracy: float
    gap: float
    margin: float
    holds: bool
    mixture_by_sources: dict[str, float]
    per_source_by_sources: dict[str, float]
    probe_train_clips: int
    probe_test_clips: int
    l2: dict[str, float]
    seeds: list[int]
    clap_sha256: str
    definition: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@torch.no_grad()
def embeddings(pair, n: int, seed: int, chunk: int = 100) -> dict[str, torch.Tensor]:
    """Mixture and summed per-source CLAP embeddings of ``n`` fresh clips, and their multi-hot labels."""
    from macs_bench.world.synthetic import make_clip, source_counts
    from macs_bench.world.data import SAMPLES, hot_of
    from macs_bench.world.towers import normalise

    rng = np.random.default_rng(seed)
    counts = source_counts(n, rng)
    mix, per_source, sets = [], [], []
    for start in range(0, n, chunk):
        clips = [make_clip(k, SAMPLES, rng, image_size=8) for k in counts[start:start + chunk]]
        mix.append(normalise(pair.audio(torch.from_numpy(np.stack([c.mix for c in clips]).astype(np.float32)))))
        flat = torch.from_numpy(np.concatenate([c.sources for c in clips]).astype(np.float32))
        each = normalise(pair.audio(flat)).split([len(c.names) for c in clips])
        per_source.append(torch.stack([e.sum(0) for e in each]))
        sets += [c.names for c in clips]
    return {"mixture": torch.cat(mix), "per_source": torch.cat(per_source), "hot": hot_of(sets)}


def fit_probe(x: torch.Tensor, y: torch.Tensor, l2: float) -> tuple[torch.Tensor, ...]:
    """Multi-label logistic regression on standardised ``x``; returns (mean, std, weight, bias)."""
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    z = (x - mean) / std
    weight = torch.zeros(x.shape[1], y.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(y.shape[1], dtype=torch.float64, requires_grad=True)
    z, y = z.double(), y.double()
    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=500, tolerance_grad=1e-9,
                                  line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z @ weight + bias, y) + l2 * (weight ** 2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return mean, std, weight.detach(), bias.detach()


def predict(probe: tuple[torch.Tensor, ...], x: torch.Tensor) -> torch.Tensor:
    mean, std, weight, bias = probe
    return (((x - mean) / std).double() @ weight + bias) > 0


def exact_set(pred: torch.Tensor, hot: torch.Tensor) -> tuple[float, dict[str, float]]:
    """Share of clips whose predicted set equals the true set, overall and by number of sources."""
    right = (pred == hot.bool()).all(1).float()
    counts = hot.sum(1).long()
    return float(right.mean()), {str(int(k)): float(right[counts == k].mean()) for k in counts.unique()}


def probe_accuracy(train: torch.Tensor, train_hot: torch.Tensor, test: torch.Tensor, test_hot: torch.Tensor
                   ) -> tuple[float, dict[str, float], float]:
    """Pick L2 on the last fifth of the training clips, refit on all; exact set accuracy on the test clips."""
    cut = len(train) * 4 // 5
    scores = [exact_set(predict(fit_probe(train[:cut], train_hot[:cut], l2), train[cut:]), train_hot[cut:])[0]
              for l2 in L2_GRID]
    l2 = L2_GRID[int(np.argmax(scores))]
    overall, by_k = exact_set(predict(fit_probe(train, train_hot, l2), test), test_hot)
    return overall, by_k, l2


def run_gate(clap_path: Path | None = None, *, n_train: int = 2000, n_test: int = 1000) -> GateResult:
    """The gate on the world CLAP at ``clap_path`` (default: the shipped one, verified)."""
    from macs_bench.world import CLAP_FILE, WORLD_DIR
    from macs_bench.world.checksums import verify
    from macs_bench.world.towers import load_clap_pair

    path = Path(clap_path) if clap_path else WORLD_DIR / CLAP_FILE
    return gate_pair(load_clap_pair(path), verify(path), n_train=n_train, n_test=n_test)


def gate_pair(pair, sha256: str, *, n_train: int = 2000, n_test: int = 1000) -> GateResult:
    """The gate on a loaded CLAP-like pair (``sha256``: its weights file's), one thread, deterministic."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train = embeddings(pair, n_train, PROBE_TRAIN_SEED)
        test = embeddings(pair, n_test, PROBE_TEST_SEED)
        mix, mix_k, mix_l2 = probe_accuracy(train["mixture"], train["hot"], test["mixture"], test["hot"])
        src, src_k, src_l2 = probe_accuracy(train["per_source"], train["hot"], test["per_source"], test["hot"])
    finally:
        torch.set_num_threads(threads)
    return GateResult(mix, src, src - mix, MARGIN, src - mix >= MARGIN, mix_k, src_k, n_train, n_test,
                      {"mixture": mix_l2, "per_source": src_l2}, [PROBE_TRAIN_SEED, PROBE_TEST_SEED], sha256,
                      DEFINITION)
