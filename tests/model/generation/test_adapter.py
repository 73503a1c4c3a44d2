"""Audio tokens + decoupled cross-attention (paper §3.3) on a tiny offline SD UNet (tests/model/sd_helpers.py)."""

from __future__ import annotations

import json
import re

import pytest
import torch
from release_helpers import KEY_FILE, release_shapes
from sd_helpers import (
    BATCH,
    CLAP_DIM,
    CROSS_DIM,
    HIDDEN,
    NUM_TOKENS,
    PAPER_TO_TINY,
    TEXT_LEN,
    cross_attention_layers,
    fixed_inputs,
    randn,
    tiny_tokens,
    tiny_unet,
)

from macs_bench.errors import MacsError
from macs_model.generation.adapter import (
    ADAPTER_CONFIG,
    ADAPTER_FILE,
    APPENDED,
    DECOUPLED,
    TOKENS_PREFIX,
    adapter_state_dict,
    audio_variant,
    install_adapter,
    load_adapter_state,
    read_adapter,
    release_adapter_state,
    save_adapter,
)
from macs_model.generation.tokens import AudioTokens

pytest.importorskip("diffusers")
from diffusers.models.attention_processor import AttnProcessor2_0, IPAdapterAttnProcessor2_0  # noqa: E402

MLP_KEYS = ("pe", "adapter.0.weight", "adapter.0.bias", "adapter.1.weight", "adapter.1.bias",
            "adapter.4.weight", "adapter.4.bias", "adapter.5.weight", "adapter.5.bias")


def forward(unet, inputs, audio, *, decoupled=True, tokens=None, grad=False):
    """The UNet's noise prediction for the fixed latents/text and ``audio``."""
    with torch.set_grad_enabled(grad):
        return unet(inputs["latents"], inputs["timesteps"],
                    **audio_variant(decoupled).unet_inputs(inputs["text"], audio, tokens)).sample


def installed(decoupled=True, unet_seed=0, tokens_seed=1):
    unet, tokens = tiny_unet(unet_seed), tiny_tokens(tokens_seed)
    trainable = install_adapter(unet, tokens, audio_variant(decoupled))
    unet.eval()
    tokens.eval()
    return unet, tokens, trainable


def ip_processors(unet) -> dict[str, IPAdapterAttnProcessor2_0]:
    return {name: p for name, p in unet.attn_processors.items() if isinstance(p, IPAdapterAttnProcessor2_0)}


def expected_adapter_keys(unet, tokens) -> set[str]:
    """Adapter keys of a decoupled UNet, spelled out without macs_model.generation.adapter's key test."""
    keys = {f"{name}.processor.{kind}.0.weight" for name in cross_attention_layers(unet)
            for kind in ("to_k_ip", "to_v_ip")}
    return keys | {TOKENS_PREFIX + k for k in tokens.state_dict()}


def clone_state(module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


# ---------------------------------------------------------------------------------------------------- 1. tokens

def test_tokens_shape_topk_rows_and_errors():
    tokens = tiny_tokens().eval()
    for k in range(1, NUM_TOKENS + 1):
        emb = randn(BATCH, k, CLAP_DIM, seed=20 + k)
        with torch.no_grad():
            out = tokens(emb)
            manual = tokens.adapter(emb + tokens.pe[:k])
        assert out.shape == (BATCH, k, CROSS_DIM)
        assert torch.equal(out, manual), f"K={k}: not adapter(E + pe[:K])"
        if k < NUM_TOKENS:  # the check can tell the rows apart: the last K rows give something else
            with torch.no_grad():
                assert not torch.allclose(out, tokens.adapter(emb + tokens.pe[NUM_TOKENS - k:]))
    # eval mode is deterministic (Dropout off); train mode drops
    emb = randn(BATCH, NUM_TOKENS, CLAP_DIM, seed=30)
    assert torch.equal(tokens(emb), tokens(emb))
    assert isinstance(tokens.adapter[3], torch.nn.Dropout) and tokens.adapter[3].p == 0.5
    assert [type(m).__name__ for m in tokens.adapter] == ["LayerNorm", "Linear", "GELU", "Dropout", "Linear",
                                                           "LayerNorm"]
    for bad in (randn(BATCH, NUM_TOKENS + 1, CLAP_DIM, seed=1),   # K > M
                randn(BATCH, NUM_TOKENS, CLAP_DIM + 1, seed=1),   # wrong width
                randn(BATCH, CLAP_DIM, seed=1)):                  # no slot axis
        with pytest.raises(ValueError, match="AudioTokens"):
            tokens(bad)


def test_tokens_state_dict_is_the_release_mlp_at_paper_sizes():
    shapes, dtypes = release_shapes("_mlp.pt")
    assert set(shapes) == set(MLP_KEYS)
    torch.manual_seed(0)
    tokens = AudioTokens()  # paper sizes: M=6, 512 -> 2048 -> 768
    state = tokens.state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == shapes
    assert all(v.dtype == dtypes[k] for k, v in state.items())
    # a release-shaped dict loads as it is (strict)
    tokens.load_state_dict({k: torch.zeros(s) for k, s in shapes.items()}, strict=True)
    assert 0.045 < AudioTokens().pe.std().item() < 0.055  # E_pos ~ N(0, 0.05)


# ------------------------------------------------------------------------------------------ 2. install, decoupled

def test_install_decoupled_processors_grads_and_one_step_touches_only_the_adapter():
    unet, tokens = tiny_unet(0), tiny_tokens(1)
    before_install = clone_state(unet)
    layers = cross_attention_layers(unet)
    assert len(layers) == 7
    trainable = install_adapter(unet, tokens, DECOUPLED)
    assert trainable is unet

    processors = unet.attn_processors
    for name, processor in processors.items():
        module = name[: -len(".processor")]
        if module in layers:
            assert isinstance(processor, IPAdapterAttnProcessor2_0), name
            assert processor.scale == [1.0]
            attn = layers[module]
            for ip, text in ((processor.to_k_ip[0], attn.to_k), (processor.to_v_ip[0], attn.to_v)):
                assert ip.bias is None and ip.weight.shape == text.weight.shape
                assert torch.equal(ip.weight, text.weight), f"{name}: audio k/v not a copy of the text k/v"
                assert ip.weight.data_ptr() != text.weight.data_ptr(), f"{name}: audio k/v shares the text k/v"
        else:
            assert name.endswith("attn1.processor"), name
            assert type(processor) is AttnProcessor2_0, f"{name}: {type(processor).__name__}"
    assert len(ip_processors(unet)) == len(layers)
    assert unet.encoder_hid_proj.image_projection_layers[0] is tokens

    grads = {n for n, p in unet.named_parameters() if p.requires_grad}
    assert grads == expected_adapter_keys(unet, tokens)
    assert set(adapter_state_dict(unet)) == grads
    state = unet.state_dict()
    assert all(torch.equal(state[k], v) for k, v in before_install.items()), "install changed a UNet weight"

    before = clone_state(unet)
    optimiser = torch.optim.AdamW([p for p in trainable.parameters() if p.requires_grad], lr=1e-3)
    unet.train()
    inputs = fixed_inputs()
    loss = torch.nn.functional.mse_loss(forward(unet, inputs, inputs["audio"], grad=True), inputs["noise"])
    loss.backward()
    assert all(p.grad is None for n, p in unet.named_parameters() if n not in grads)
    optimiser.step()
    after = unet.state_dict()
    assert set(after) == set(before)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == grads, (f"frozen tensors changed: {sorted(changed - grads)[:3]}; "
                              f"adapter tensors unchanged: {sorted(grads - changed)[:3]}")


def test_install_rejects_a_token_width_that_is_not_the_cross_attention_width():
    with pytest.raises(MacsError, match="cross-attention"):
        install_adapter(tiny_unet(), AudioTokens(NUM_TOKENS, CLAP_DIM, HIDDEN, token_dim=CROSS_DIM + 1))


# ------------------------------------------------------------------------------------ 3. size at SD v1.x scale

def test_adapter_size_at_sd_v1_scale(tmp_path):
    """The SD v1.4 UNet is UNet2DConditionModel's default config with cross_attention_dim=768 (859.5 M params).
    Built on the meta device it costs no memory or time (~0.05 s), and install_adapter runs on it unchanged
    (under the same meta context, its new k/v are meta too). Only the audio k/v are then materialised on the CPU
    (the paper-size tokens are real already), so save_adapter writes the true file while the 3.4 GB of frozen
    weights never exist. The count is also checked against the closed form from SD v1.4's block widths."""
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        unet = UNet2DConditionModel(cross_attention_dim=768)
    assert sum(p.numel() for p in unet.parameters()) == 859_520_964  # SD v1.4's UNet
    torch.manual_seed(0)
    tokens = AudioTokens()
    with torch.device("meta"):
        install_adapter(unet, tokens, DECOUPLED)
    processors = ip_processors(unet)
    assert len(processors) == 16  # cross-attention layers of SD v1.x
    for processor in processors.values():
        processor.to_empty(device="cpu")
        with torch.no_grad():
            for p in processor.parameters():
                p.zero_()

    # the release's example key: down_blocks.0...attn2.processor.to_k_ip.weight [320, 768]
    example = re.search(r"e\.g\. (\S+)\.weight \[(\d+), (\d+)\]", KEY_FILE.read_text(encoding="utf-8"))
    assert example, "no example audio k/v key in the release key list"
    layer = unet.get_submodule(example[1].replace(".processor.to_k_ip", ""))
    assert tuple(layer.processor.to_k_ip[0].weight.shape) == (int(example[2]), int(example[3]))

    # SD v1.4: attn2 widths 2x320, 2x640, 2x1280 (down), 1x1280 (mid), 3x1280, 3x640, 3x320 (up)
    widths = [320] * 2 + [640] * 2 + [1280] * 2 + [1280] + [1280] * 3 + [640] * 3 + [320] * 3
    audio_kv = sum(2 * w * 768 for w in widths)
    mlp = 6 * 512 + 2 * 512 + (512 * 2048 + 2048) + (2048 * 768 + 768) + 2 * 768
    expected = audio_kv + mlp
    assert expected == 21_799_168
    trainable = sum(p.numel() for p in unet.parameters() if p.requires_grad)
    assert trainable == expected
    assert 21e6 < trainable < 23e6

    path = save_adapter(tmp_path / "sd", unet, {"base": "sd-v1-4"})
    assert path.stat().st_size < 100 * 1000**2
    assert path.stat().st_size >= 4 * expected  # float32, nothing dropped
    config = json.loads((tmp_path / "sd" / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    assert config["parameters"] == expected and config["decoupled"] is True
    state, _ = read_adapter(tmp_path / "sd")
    assert set(state) == {n for n, p in unet.named_parameters() if p.requires_grad}


# ------------------------------------------------------------------------------------- 4. CFG unconditional branch

def test_zero_audio_still_goes_through_the_adapter_and_never_through_the_text_kv():
    unet, tokens, _ = installed()
    layers = cross_attention_layers(unet)
    calls = {"tokens": [], "k_ip": 0, "v_ip": 0, "text_k": []}

    def count(key):
        def hook(module, args):
            calls[key] += 1
        return hook

    handles = [tokens.register_forward_pre_hook(lambda m, args: calls["tokens"].append(args[0].detach().clone()))]
    for name, processor in ip_processors(unet).items():
        handles.append(processor.to_k_ip[0].register_forward_pre_hook(count("k_ip")))
        handles.append(processor.to_v_ip[0].register_forward_pre_hook(count("v_ip")))
    for attn in layers.values():
        handles.append(attn.to_k.register_forward_pre_hook(lambda m, args: calls["text_k"].append(args[0].shape)))

    inputs = fixed_inputs()
    zeros = torch.zeros(BATCH, NUM_TOKENS, CLAP_DIM)
    out_zero = forward(unet, inputs, zeros)
    assert len(calls["tokens"]) == 1
    assert calls["tokens"][0].shape == (BATCH, NUM_TOKENS, CLAP_DIM) and not calls["tokens"][0].any()
    assert calls["k_ip"] == calls["v_ip"] == len(layers)
    assert len(calls["text_k"]) == len(layers)
    assert all(shape[1] == TEXT_LEN for shape in calls["text_k"]), calls["text_k"]

    # the CFG batch [unconditional; conditional] at once: the text k/v still see the text alone
    calls["text_k"].clear()
    forward(unet, inputs, torch.cat([zeros[:1], inputs["audio"][1:]]))
    assert calls["text_k"] and all(shape[1] == TEXT_LEN for shape in calls["text_k"])
    for handle in handles:
        handle.remove()

    # the zero-audio tokens are not nothing: the output differs from the adapter switched off
    for processor in ip_processors(unet).values():
        processor.scale = [0.0]
    assert not torch.allclose(out_zero, forward(unet, inputs, zeros), atol=1e-6)


# ----------------------------------------------------------------------------------------- 5. --no-decoupled

def test_not_decoupled_appends_tokens_to_the_text_and_trains_only_the_tokens():
    unet, tokens = tiny_unet(0), tiny_tokens(1)
    processors_before = dict(unet.attn_processors)
    trainable = install_adapter(unet, tokens, APPENDED)
    assert trainable is tokens
    after = unet.attn_processors
    assert set(after) == set(processors_before)
    assert all(after[k] is processors_before[k] for k in after), "processors replaced"
    assert not any(isinstance(p, IPAdapterAttnProcessor2_0) for p in after.values())
    assert not any("to_k_ip" in n or "to_v_ip" in n for n, _ in unet.named_modules())
    assert getattr(unet, "encoder_hid_proj", None) is None
    assert not any(p.requires_grad for p in unet.parameters())
    assert all(p.requires_grad for p in tokens.parameters())
    assert set(adapter_state_dict(unet, tokens, APPENDED)) == {f"tokens.{k}" for k in MLP_KEYS}

    unet.eval()
    tokens.eval()
    inputs = fixed_inputs()
    seen = []
    handles = [attn.to_k.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[1]))
               for attn in cross_attention_layers(unet).values()]
    out = forward(unet, inputs, inputs["audio"], decoupled=False, tokens=tokens)
    assert seen and all(n == TEXT_LEN + NUM_TOKENS for n in seen), seen
    seen.clear()
    forward(unet, inputs, inputs["audio"][:, :2], decoupled=False, tokens=tokens)  # --top-k 2
    assert seen and all(n == TEXT_LEN + 2 for n in seen), seen
    for handle in handles:
        handle.remove()
    assert not torch.allclose(out, forward(unet, inputs, inputs["audio2"], decoupled=False, tokens=tokens),
                              atol=1e-6)
    with pytest.raises(MacsError):
        APPENDED.unet_inputs(inputs["text"], inputs["audio"])

    unet_before, tokens_before = clone_state(unet), clone_state(tokens)
    optimiser = torch.optim.AdamW(trainable.parameters(), lr=1e-3)
    unet.train()
    tokens.train()
    loss = torch.nn.functional.mse_loss(forward(unet, inputs, inputs["audio"], decoupled=False, tokens=tokens,
                                                grad=True), inputs["noise"])
    loss.backward()
    optimiser.step()
    assert all(p.grad is None for p in unet.parameters())
    unet_after = unet.state_dict()
    assert all(torch.equal(unet_after[k], v) for k, v in unet_before.items()), "a frozen UNet tensor changed"
    tokens_after = tokens.state_dict()
    assert all(not torch.equal(tokens_after[k], v) for k, v in tokens_before.items()), "a token tensor kept still"


# ------------------------------------------------------------------------------ 6. the audio enters via the adapter

def test_decoupled_output_depends_on_audio_only_through_the_adapter():
    inputs = fixed_inputs()
    plain = tiny_unet(0).eval()
    with torch.no_grad():
        text_only = plain(inputs["latents"], inputs["timesteps"], encoder_hidden_states=inputs["text"]).sample

    unet, tokens, _ = installed()
    out_a = forward(unet, inputs, inputs["audio"])
    out_b = forward(unet, inputs, inputs["audio2"])
    assert (out_a - out_b).abs().max() > 1e-4, "the audio does not change the output"
    assert not torch.allclose(out_a, text_only, atol=1e-5)
    out_top2 = forward(unet, inputs, inputs["audio"][:, :2])  # --top-k 2 < M
    assert out_top2.shape == out_a.shape and not torch.allclose(out_top2, out_a, atol=1e-6)

    for processor in ip_processors(unet).values():
        processor.scale = [0.0]
    off_a = forward(unet, inputs, inputs["audio"])
    off_b = forward(unet, inputs, inputs["audio2"])
    assert torch.equal(off_a, off_b), "audio leaks into the UNet outside the adapter"
    torch.testing.assert_close(off_a, text_only, rtol=0, atol=1e-6)  # the frozen SD path is intact


# --------------------------------------------------------------------------------------- 7. save / read / load

def perturb_adapter(unet, seed=7):
    """Move every adapter weight off its initial value (the audio k/v start as the text k/v of a same-seed UNet)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in sorted((n, p) for n, p in unet.named_parameters() if p.requires_grad):
            p.add_(torch.randn(p.shape, generator=gen) * 0.1)


@pytest.mark.parametrize("decoupled", [True, False], ids=["decoupled", "no-decoupled"])
def test_save_read_load_round_trip_is_bit_identical(tmp_path, decoupled):
    inputs = fixed_inputs()
    unet, tokens, trainable = installed(decoupled, tokens_seed=1)
    perturb_adapter(trainable)
    out = forward(unet, inputs, inputs["audio"], decoupled=decoupled, tokens=tokens)
    folder = tmp_path / "adapter"
    path = save_adapter(folder, unet, {"num_tokens": NUM_TOKENS}, tokens=tokens, variant=audio_variant(decoupled))
    assert path == folder / ADAPTER_FILE and (folder / ADAPTER_CONFIG).is_file()
    original = adapter_state_dict(unet, tokens, audio_variant(decoupled))

    state, config = read_adapter(folder)
    assert set(state) == set(original) and all(torch.equal(state[k], original[k]) for k in original)
    n_expected = sum(v.numel() for v in original.values())
    if decoupled:
        n_expected_independent = sum(p.numel() for p in tokens.parameters()) + sum(
            2 * a.to_k.out_features * CROSS_DIM for a in cross_attention_layers(unet).values())
    else:
        n_expected_independent = sum(p.numel() for p in tokens.parameters())
    assert n_expected == n_expected_independent
    assert config == {"num_tokens": NUM_TOKENS, "decoupled": decoupled, "parameters": n_expected}

    fresh, fresh_tokens, _ = installed(decoupled, tokens_seed=2)
    before = forward(fresh, inputs, inputs["audio"], decoupled=decoupled, tokens=fresh_tokens)
    assert not torch.allclose(before, out, atol=1e-6)  # the load has something to do
    load_adapter_state(fresh, state, str(folder), tokens=fresh_tokens, variant=audio_variant(decoupled))
    after = forward(fresh, inputs, inputs["audio"], decoupled=decoupled, tokens=fresh_tokens)
    assert torch.equal(after, out)
    fresh_state = fresh.state_dict()
    assert all(torch.equal(fresh_state[k], v) for k, v in unet.state_dict().items())


@pytest.mark.parametrize("decoupled", [True, False], ids=["decoupled", "no-decoupled"])
def test_load_rejects_missing_extra_and_misshapen_keys(tmp_path, decoupled):
    unet, tokens, _ = installed(decoupled)
    good = adapter_state_dict(unet, tokens, audio_variant(decoupled))
    pe = (TOKENS_PREFIX if decoupled else "tokens.") + "pe"
    some_key = sorted(k for k in good if k != pe)[0]
    where = str(tmp_path / "ckpt-000100")
    cases = {"missing": {k: v for k, v in good.items() if k != some_key},
             "unexpected": {**good, "down_blocks.9.extra.to_k_ip.0.weight": torch.zeros(3, 3)},
             "wrong shape": {**good, pe: torch.zeros(NUM_TOKENS + 1, CLAP_DIM)}}
    before = clone_state(unet)
    before_tokens = clone_state(tokens)
    for label, state in cases.items():
        with pytest.raises(MacsError, match=re.escape(where) + ".*" + label):
            load_adapter_state(unet, state, where, tokens=tokens, variant=audio_variant(decoupled))
    # nothing was half-loaded
    assert all(torch.equal(unet.state_dict()[k], v) for k, v in before.items())
    assert all(torch.equal(tokens.state_dict()[k], v) for k, v in before_tokens.items())
    # a state of the other variant does not fit either
    other_unet, other_tokens, _ = installed(not decoupled)
    with pytest.raises(MacsError, match=re.escape(where)):
        load_adapter_state(unet, adapter_state_dict(other_unet, other_tokens, audio_variant(not decoupled)), where,
                           tokens=tokens, variant=audio_variant(decoupled))


def test_read_adapter_rejects_folders_without_the_files(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MacsError, match=re.escape(str(empty))):
        read_adapter(empty)
    with pytest.raises(MacsError, match=re.escape(str(tmp_path / "absent"))):
        read_adapter(tmp_path / "absent")
    config_only = tmp_path / "config-only"
    config_only.mkdir()
    (config_only / ADAPTER_CONFIG).write_text("{}", encoding="utf-8")
    with pytest.raises(MacsError, match=re.escape(str(config_only))):
        read_adapter(config_only)
    bad_json = tmp_path / "bad-json"
    unet, tokens, _ = installed()
    save_adapter(bad_json, unet, {})
    (bad_json / ADAPTER_CONFIG).write_text("{not json", encoding="utf-8")
    with pytest.raises(MacsError, match=re.escape(str(bad_json))):
        read_adapter(bad_json)


def test_read_adapter_rejects_a_corrupt_safetensors_file(tmp_path):
    folder = tmp_path / "corrupt"
    unet, tokens, _ = installed()
    path = save_adapter(folder, unet, {})
    path.write_bytes(path.read_bytes()[:20])  # an interrupted copy
    with pytest.raises(MacsError, match=re.escape(str(folder))):
        read_adapter(folder)


# ----------------------------------------------------------------------------------------- 8. release weights

def fake_release(unet, seed=40):
    """(mlp, unet) dicts with the release's key names: the `_mlp.pt` keys at the tiny sizes (the release's
    shapes scaled down dimension by dimension) and `<prefix>.attn2.processor.to_{k,v}_ip.weight` per attn2,
    among frozen SD keys that must be ignored."""
    shapes, _ = release_shapes("_mlp.pt")
    gen = torch.Generator().manual_seed(seed)
    mlp = {k: torch.randn(tuple(PAPER_TO_TINY[d] for d in shape), generator=gen) for k, shape in shapes.items()}
    layers = cross_attention_layers(unet)
    release_unet = {"conv_in.weight": torch.randn(32, 4, 3, 3, generator=gen),
                    "conv_in.bias": torch.randn(32, generator=gen)}
    for name, attn in layers.items():
        hidden = attn.to_k.out_features
        release_unet[f"{name}.to_k.weight"] = torch.randn(hidden, CROSS_DIM, generator=gen)
        release_unet[f"{name.replace('attn2', 'attn1')}.to_k.weight"] = torch.randn(hidden, hidden, generator=gen)
        for kind in ("to_k_ip", "to_v_ip"):
            release_unet[f"{name}.processor.{kind}.weight"] = torch.randn(hidden, CROSS_DIM, generator=gen)
    return mlp, release_unet


def test_release_adapter_state_maps_and_loads_the_release_naming():
    unet, tokens, _ = installed()
    mlp, release_unet = fake_release(unet)
    assert set(mlp) == set(MLP_KEYS) and set(tokens.state_dict()) == set(mlp)
    frozen_before = {k: v for k, v in clone_state(unet).items() if k not in expected_adapter_keys(unet, tokens)}

    state = release_adapter_state(mlp, release_unet, "release/FSD50K")
    assert set(state) == expected_adapter_keys(unet, tokens) == set(adapter_state_dict(unet))
    load_adapter_state(unet, state, "release/FSD50K")

    for key, value in mlp.items():
        assert torch.equal(tokens.state_dict()[key], value), key
    for name, processor in ((n[: -len(".processor")], p) for n, p in ip_processors(unet).items()):
        assert torch.equal(processor.to_k_ip[0].weight, release_unet[f"{name}.processor.to_k_ip.weight"])
        assert torch.equal(processor.to_v_ip[0].weight, release_unet[f"{name}.processor.to_v_ip.weight"])
    after = unet.state_dict()
    assert all(torch.equal(after[k], v) for k, v in frozen_before.items()), "release's frozen SD keys were loaded"


def test_release_adapter_state_rejects_other_dicts():
    unet, _, _ = installed()
    mlp, release_unet = fake_release(unet)
    renamed = {("pos_emb" if k == "pe" else k): v for k, v in mlp.items()}
    wrapped = {f"module.{k}": v for k, v in mlp.items()}
    missing = {k: v for k, v in mlp.items() if k != "adapter.5.bias"}
    for bad in (renamed, wrapped, missing, {**mlp, "adapter.2.weight": torch.zeros(1)}):
        with pytest.raises(MacsError, match="release/FSD50K_mlp.pt"):
            release_adapter_state(bad, release_unet, "release/FSD50K_mlp.pt")
    no_kv = {k: v for k, v in release_unet.items() if "_ip." not in k}
    with pytest.raises(MacsError, match="release/FSD50K_unet.pt.*to_k_ip"):
        release_adapter_state(mlp, no_kv, "release/FSD50K_unet.pt")
    # the audio k/v of only some layers map, but do not load
    partial = {k: v for k, v in release_unet.items() if "to_v_ip" not in k}
    with pytest.raises(MacsError, match="missing"):
        load_adapter_state(unet, release_adapter_state(mlp, partial, "release"), "release")
    # paper-size MLP into the tiny UNet: mapped by name, refused by shape
    shapes, _ = release_shapes("_mlp.pt")
    paper = {k: torch.zeros(s) for k, s in shapes.items()}
    with pytest.raises(MacsError, match="wrong shape"):
        load_adapter_state(unet, release_adapter_state(paper, release_unet, "release"), "release")
