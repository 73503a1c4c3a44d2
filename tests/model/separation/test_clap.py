"""CLAP backend: offline loading, the broken-tokenizer guard, resampling + repeat-pad, weights in and out."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torchaudio
from clap_helpers import write_specials_only_tokenizer

from macs_bench.errors import MacsError
from macs_model.separation.clap import (
    CLAP_WINDOW,
    ClapEncoder,
    TinyClap,
    build_clap_model,
    check_tokenizer,
    load_clap,
    load_clap_weights,
    load_tokenizer,
    read_clap_state_dict,
    repeat_pad,
)


def test_repeat_pad_is_laion_clap_repeatpad():
    for samples in (1, 3, 7, 10, 4, 9):
        x = torch.arange(1, samples + 1, dtype=torch.float32)[None]
        expected = []
        while len(expected) + samples <= 10:  # whole repeats only, then zeros
            expected += list(range(1, samples + 1))
        expected += [0] * (10 - len(expected))
        assert repeat_pad(x, 10)[0].tolist() == expected, samples
    with pytest.raises(ValueError):
        repeat_pad(torch.zeros(1, 11), 10)


def test_specials_only_tokenizer_is_refused(tmp_path):
    tok, _ = load_tokenizer(write_specials_only_tokenizer(tmp_path / "broken"))
    with pytest.raises(MacsError, match=r"unusable \(5 tokens.*macs-bench weights fetch roberta-base-tokenizer"):
        check_tokenizer(tok, 50265, "tok")


def test_real_offline_fallback_tokenizer_is_refused(tmp_path):
    """transformers' own offline fallback for 'roberta-base', built in a clean process with an empty hub cache."""
    code = ("from transformers import RobertaTokenizer\n"
            "from macs_model.separation.clap import check_tokenizer\n"
            "from macs_bench.errors import MacsError\n"
            "try:\n"
            "    tok = RobertaTokenizer.from_pretrained('roberta-base')\n"
            "except OSError as exc:\n"
            "    print('RAISED', type(exc).__name__); raise SystemExit(0)\n"
            "try:\n"
            "    check_tokenizer(tok, 50265, 'roberta-base')\n"
            "except MacsError as exc:\n"
            "    print('REFUSED', len(tok), exc)\n")
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    # Either transformers refuses outright (older versions) or it builds the 5-token stand-in, which we refuse.
    assert done.stdout.startswith(("REFUSED 5 ", "RAISED")), done.stdout + done.stderr[-2000:]


def test_tokenizer_larger_than_the_text_model_is_refused(tokenizer_dir):
    tok, _ = load_tokenizer(tokenizer_dir)
    check_tokenizer(tok, len(tok), "tok")
    with pytest.raises(MacsError, match="only 50$"):
        check_tokenizer(tok, 50, "tok")


def test_missing_registry_files_name_the_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv("MACS_HOME", str(tmp_path / "home"))
    with pytest.raises(MacsError, match="macs-bench weights fetch roberta-base-tokenizer"):
        load_tokenizer()
    with pytest.raises(MacsError, match="macs-bench weights fetch clap-630k-audioset-best"):
        load_clap()
    with pytest.raises(MacsError, match="not a RoBERTa tokenizer folder"):
        load_tokenizer(tmp_path)


def test_embed_audio_is_resample_repeatpad_then_clap(clap_model, tokenizer_dir):
    """Our batched path equals laion-clap's own per-clip get_audio_embedding on independently prepared input."""
    tok, _ = load_tokenizer(tokenizer_dir)
    encoder = ClapEncoder(clap_model, tok)
    torch.manual_seed(1)
    audio = 0.1 * torch.randn(2, 16000 * 8)  # 8 s: 384000 samples at 48 kHz, one repeat then zeros
    got = encoder.embed_audio(audio)
    wave = torchaudio.functional.resample(audio, 16000, 48000)
    rows = []
    for w in wave:
        padded = torch.zeros(CLAP_WINDOW)
        padded[: w.numel()] = w
        rows.append({"waveform": padded, "longer": torch.tensor([False])})
    with torch.no_grad():
        expected = clap_model.get_audio_embedding(rows)
    assert got.shape == (2, 512)
    torch.testing.assert_close(got.detach(), expected, atol=2e-5, rtol=1e-4)
    assert torch.allclose(got.norm(dim=-1), torch.ones(2), atol=1e-5)


def test_long_audio_averages_ten_second_windows(clap_model, tokenizer_dir):
    tok, _ = load_tokenizer(tokenizer_dir)
    encoder = ClapEncoder(clap_model, tok)
    torch.manual_seed(2)
    audio = 0.1 * torch.randn(1, 16000 * 13)
    with torch.no_grad():
        got = encoder.embed_audio(audio)
        wave = torchaudio.functional.resample(audio, 16000, 48000)
        first = clap_model.get_audio_embedding([{"waveform": wave[0, :CLAP_WINDOW], "longer": torch.tensor([False])}])
        rest = repeat_pad(wave[:, CLAP_WINDOW:], CLAP_WINDOW)[0]
        second = clap_model.get_audio_embedding([{"waveform": rest, "longer": torch.tensor([False])}])
    expected = torch.nn.functional.normalize(first + second, dim=-1)
    torch.testing.assert_close(got, expected, atol=2e-5, rtol=1e-4)


def test_encoder_is_frozen_but_passes_gradients_to_its_input(clap_model, tokenizer_dir):
    tok, _ = load_tokenizer(tokenizer_dir)
    encoder = ClapEncoder(clap_model, tok)
    encoder.train()
    assert not encoder.training and not clap_model.training
    assert not any(p.requires_grad for p in encoder.parameters())
    audio = (0.1 * torch.randn(1, 16000 * 2)).requires_grad_()
    encoder.embed_audio(audio).sum().backward()
    assert audio.grad is not None and audio.grad.abs().sum() > 0


def test_text_embeddings_are_laion_clap_s_and_computed_once(clap_model, tokenizer_dir, monkeypatch):
    tok, _ = load_tokenizer(tokenizer_dir)
    encoder = ClapEncoder(clap_model, tok)
    prompts = ["The sound of Dog", "Noise", "The sound of Dog"]
    got = encoder.embed_text(prompts)
    tokens = tok(prompts, padding="max_length", truncation=True, max_length=77, return_tensors="pt")
    with torch.no_grad():
        expected = clap_model.get_text_embedding({"input_ids": tokens["input_ids"],
                                                  "attention_mask": tokens["attention_mask"]})
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(got[0], got[1])
    calls = []
    original = clap_model.encode_text
    monkeypatch.setattr(clap_model, "encode_text", lambda *a, **k: calls.append(1) or original(*a, **k))
    again = encoder.embed_text(["Noise", "The sound of Dog"])
    assert calls == [] and torch.equal(again, got[[1, 0]])
    encoder.embed_text(["The sound of Cat"])
    assert len(calls) == 1


@pytest.mark.slow
def test_laion_checkpoint_round_trip_and_mismatches(clap_model, tokenizer_dir, tmp_path):
    """A laion-clap training checkpoint (DDP prefix, position_ids) loads through load_clap; bad ones are refused."""
    state = {f"module.{k}": v for k, v in clap_model.state_dict().items()}
    state["module.text_branch.embeddings.position_ids"] = torch.arange(514)[None]
    path = tmp_path / "630k-audioset-best.pt"
    torch.save({"epoch": 45, "state_dict": state}, path)
    encoder = load_clap(path, tokenizer_dir)
    assert encoder.provenance()["sha256"] and encoder.provenance()["checkpoint"] == str(path)
    audio = 0.1 * torch.randn(1, 16000 * 3)
    reference = ClapEncoder(clap_model, load_tokenizer(tokenizer_dir)[0])
    with torch.no_grad():
        torch.testing.assert_close(encoder.embed_audio(audio), reference.embed_audio(audio))

    loaded = read_clap_state_dict(path)
    fresh = build_clap_model()
    dropped = dict(loaded)
    dropped.pop("audio_projection.0.weight")
    with pytest.raises(MacsError, match=r"1 missing \(e\.g\. audio_projection\.0\.weight\)"):
        load_clap_weights(fresh, dropped, "x.pt")
    reshaped = dict(loaded, **{"logit_scale_a": torch.zeros(2)})
    with pytest.raises(MacsError, match="1 wrong shape"):
        load_clap_weights(fresh, reshaped, "x.pt")
    with pytest.raises(MacsError, match="1 unexpected"):
        load_clap_weights(fresh, dict(loaded, extra=torch.zeros(1)), "x.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(MacsError, match="junk.pt: cannot read the CLAP checkpoint"):
        read_clap_state_dict(tmp_path / "junk.pt")


def test_tiny_stand_in_has_the_interface():
    tiny = TinyClap()
    audio = torch.randn(3, 8000, requires_grad=True)
    emb = tiny.embed_audio(audio)
    assert emb.shape == (3, 32) and torch.allclose(emb.norm(dim=-1), torch.ones(3), atol=1e-5)
    emb.sum().backward()
    assert audio.grad.abs().sum() > 0 and not any(p.requires_grad for p in tiny.parameters())
    text = tiny.embed_text(["The sound of Dog", "Noise", "The sound of Dog"])
    assert torch.equal(text[0], text[2]) and not torch.equal(text[0], text[1])
    assert np.isclose(float(text[1].norm()), 1.0, atol=1e-5)
    assert "not CLAP" in tiny.provenance()["encoder"]


def test_numpy_scalars_beside_the_weights_are_allowed_but_code_is_not(tmp_path):
    """laion-clap checkpoints keep numpy scalars next to the state dict; weights_only must still refuse code."""
    state = {"module.logit_scale_a": torch.tensor(1.0)}
    torch.save({"epoch": np.int64(45), "best_metric": np.float64(0.5), "state_dict": state}, tmp_path / "ok.pt")
    assert set(read_clap_state_dict(tmp_path / "ok.pt")) == {"logit_scale_a"}

    class Payload:
        def __reduce__(self):
            return (print, ("code ran",))

    torch.save({"state_dict": state, "x": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(MacsError, match="evil.pt: cannot read the CLAP checkpoint"):
        read_clap_state_dict(tmp_path / "evil.pt")
