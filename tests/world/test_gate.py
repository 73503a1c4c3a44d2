"""The world gate: recorded in the report for the shipped CLAP, reproducible, its probe right, its verdict able
to fail."""

import json

import pytest
import torch

from macs_bench.world import CLAP_FILE, REPORT_FILE, WORLD_DIR
from macs_bench.world.gate import MARGIN, exact_set, fit_probe, predict


def _recorded() -> dict:
    return json.loads((WORLD_DIR / REPORT_FILE).read_text())["gate"]


def test_the_shipped_world_passes_its_recorded_gate():
    from macs_bench.world.checksums import verify

    gate = _recorded()
    assert gate["holds"] and gate["margin"] == MARGIN == 0.15
    assert gate["per_source_accuracy"] - gate["mixture_accuracy"] == pytest.approx(gate["gap"])
    assert gate["gap"] >= 0.15
    assert gate["clap_sha256"] == verify(WORLD_DIR / CLAP_FILE)  # recorded for the CLAP that ships
    assert gate["probe_test_clips"] >= 500 and set(gate["mixture_by_sources"]) == {"1", "2", "3", "4", "5"}


@pytest.mark.slow
def test_the_gate_reproduces_its_recorded_figures():
    from macs_bench.world.gate import run_gate

    assert run_gate().to_dict() == _recorded()


def test_exact_set_against_brute_force():
    pred = torch.tensor([[1, 0, 1], [1, 0, 0], [0, 1, 1], [0, 0, 1]]).bool()
    hot = torch.tensor([[1.0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0, 1]])
    overall, by_k = exact_set(pred, hot)
    assert overall == 0.5 and by_k == {"2": 0.5}


def test_probe_matches_scikit_learn_logistic_regression():
    sklearn = pytest.importorskip("sklearn.linear_model")
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(300, 6, generator=generator)
    y = (x @ torch.randn(6, 3, generator=generator) + 0.3 * torch.randn(300, 3, generator=generator) > 0).float()
    l2 = 1e-3
    mean, std, weight, bias = fit_probe(x, y, l2)
    z = ((x - mean) / std).double().numpy()
    for c in range(3):  # the same objective: sum of log-losses + l2 * N * C * |w|^2, so C_sk = 1 / (2 l2 N C)
        ref = sklearn.LogisticRegression(C=1 / (2 * l2 * 300 * 3), tol=1e-10, max_iter=10000).fit(z, y[:, c].numpy())
        torch.testing.assert_close(weight[:, c], torch.from_numpy(ref.coef_[0]).double(), atol=2e-4, rtol=1e-3)
        assert float(bias[c]) == pytest.approx(float(ref.intercept_[0]), abs=2e-4)
    assert (predict((mean, std, weight, bias), x) == (y > 0.5)).float().mean() > 0.85


def test_the_gate_fails_when_the_mixture_embedding_keeps_everything(monkeypatch):
    import macs_bench.world.gate as gate
    from macs_bench.world.towers import load_clap_pair

    real = gate.embeddings

    def mixture_as_good(pair, n, seed, chunk=100):
        out = real(pair, n, seed, chunk)
        return {**out, "mixture": out["per_source"]}

    monkeypatch.setattr(gate, "embeddings", mixture_as_good)
    result = gate.gate_pair(load_clap_pair(), "x", n_train=300, n_test=100)
    assert result.gap == 0 and not result.holds
