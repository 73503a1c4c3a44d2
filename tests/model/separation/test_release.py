"""Import of the authors' separator_FSD50K_full.pt: a state dict with the release's key names and shapes."""

import math

import pytest
import torch
import torchaudio
from release_helpers import release_state_dict

from macs_bench.errors import MacsError
from macs_model.separation.clap import ClapEncoder, load_clap_weights, load_tokenizer
from macs_model.separation.config import SeparatorConfig
from macs_model.separation.release import load_release_separator, split_release_state

PAPER = SeparatorConfig.preset("paper")


def _tiny_clap():
    return {"audio_projection.0.weight": torch.ones(2, 2), "logit_scale_a": torch.tensor(2.0)}


def release(clap_state=None, seed=2):
    """Release-shaped state: separator keys from the key list, the fixed buffers as the release computes them, and
    the CLAP state twice, with the position_ids buffer older transformers saved."""
    state = release_state_dict(seed)
    state["model.stft.window"] = torch.hann_window(400)
    state["model.istft.window"] = torch.hann_window(400)
    state["model.resample.kernel"] = torchaudio.transforms.Resample(16000, 48000).kernel.clone()
    state["model.tau2"] = torch.tensor(math.log(1 / 0.05))
    for prefix in ("clap.model.", "model.clap.model."):
        for key, value in (clap_state or _tiny_clap()).items():
            state[prefix + key] = value
        state[prefix + "text_branch.embeddings.position_ids"] = torch.arange(514)[None]
    return state


def test_release_key_list_covers_the_whole_paper_separator():
    state = release()
    unet = {k[len("model.unet."):] for k in state if k.startswith("model.unet.")}
    from macs_model.separation.separator import StftMaskSeparator

    assert unet == set(StftMaskSeparator(PAPER).unet.state_dict())


def test_release_maps_into_our_separator_and_clap(clap_model, tokenizer_dir):
    clap_state = {k: v.clone() for k, v in clap_model.state_dict().items()}
    state = release(clap_state)
    imported = split_release_state(state, PAPER, "separator_FSD50K_full.pt")
    ours = imported.separator.unet.state_dict()
    for key, value in state.items():
        if key.startswith("model.unet."):
            assert torch.equal(ours[key[len("model.unet."):]], value), key
    assert imported.logit_scale == pytest.approx(math.log(1 / 0.05))
    assert set(imported.clap_state) == set(clap_model.state_dict())
    audio = 0.1 * torch.randn(2, 16000)
    with torch.no_grad():
        before = ClapEncoder(clap_model, load_tokenizer(tokenizer_dir)[0]).embed_audio(audio)
    load_clap_weights(clap_model, {k: torch.zeros_like(v) for k, v in clap_state.items()}, "zeros")
    try:
        load_clap_weights(clap_model, imported.clap_state, "release")  # strict: every CLAP key fits
        with torch.no_grad():
            after = ClapEncoder(clap_model, load_tokenizer(tokenizer_dir)[0]).embed_audio(audio)
    finally:
        clap_model.load_state_dict(clap_state)
    torch.testing.assert_close(after, before)


@pytest.mark.parametrize("damage, message", [
    (lambda s: s.pop("model.unet.unet.downconv.weight"), "missing model.unet.unet.downconv.weight"),
    (lambda s: s.update({"model.unet.unet.extra.weight": torch.zeros(1)}), "unexpected model.unet.unet.extra"),
    (lambda s: s.update({"model.unet.unet.downconv.weight": torch.zeros(64, 64, 3, 3)}),
     r"has shape \[64, 64, 3, 3\]"),
    (lambda s: s.pop("model.tau2"), "no scalar model.tau2"),
    (lambda s: s.update({"model.clap.model.logit_scale_a": torch.tensor(3.0)}), "the two CLAP copies"),
    (lambda s: [s.pop(k) for k in list(s) if k.startswith(("clap.", "model.clap."))], "no CLAP weights"),
    (lambda s: s.update({"model.resample.kernel": torch.zeros(3, 1, 53)}), "model.resample.kernel"),
    (lambda s: s.update({"model.stft.window": torch.hann_window(512)}), "model.stft.window"),
])
def test_mismatches_are_refused_with_the_file_named(damage, message):
    state = release()
    damage(state)
    with pytest.raises(MacsError, match=message) as err:
        split_release_state(state, PAPER, "separator_FSD50K_full.pt")
    assert str(err.value).startswith("separator_FSD50K_full.pt: ") and "\n" not in str(err.value)


def test_release_file_loads_with_weights_only(tmp_path):
    path = tmp_path / "separator_FSD50K_full.pt"
    state = release()
    torch.save(state, path)
    imported = load_release_separator(path)
    assert torch.equal(imported.separator.unet.state_dict()["unet.downconv.weight"],
                       state["model.unet.unet.downconv.weight"])
    assert imported.source == str(path)

    class Payload:
        def __reduce__(self):
            return (print, ("code ran",))

    torch.save({"x": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(MacsError, match="evil.pt: cannot read the release checkpoint"):
        load_release_separator(tmp_path / "evil.pt")
    with pytest.raises(MacsError, match="release checkpoint not found"):
        load_release_separator(tmp_path / "absent.pt")
