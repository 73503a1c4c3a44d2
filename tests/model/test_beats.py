"""BEATs: the official checkpoint's key names, and the forward against the official code restated here on the same
inputs (torchaudio's Kaldi fbank, weight norm by torch._weight_norm, time-major fairseq attention with the
alpha = 32 trick, the gated relative position bias by hand)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from macs_bench.errors import MacsError
from macs_model.encoders.beats import BEATs, BEATsConfig, load_beats


def official_keys(cfg: BEATsConfig) -> dict[str, tuple[int, ...]]:
    """The state-dict names and shapes of unilm's BEATs(cfg) (BEATs.py, backbone.py): weight_norm(dim=2) on the
    position conv, a relative bias table registered under every layer, grep_linear/grep_a for the gate."""
    d, f, h, e = cfg.encoder_embed_dim, cfg.encoder_ffn_embed_dim, cfg.encoder_attention_heads, cfg.embed_dim
    keys = {"patch_embedding.weight": (e, 1, cfg.input_patch_size, cfg.input_patch_size),
            "layer_norm.weight": (e,), "layer_norm.bias": (e,),
            "post_extract_proj.weight": (d, e), "post_extract_proj.bias": (d,),
            "encoder.pos_conv.0.bias": (d,), "encoder.pos_conv.0.weight_g": (1, 1, cfg.conv_pos),
            "encoder.pos_conv.0.weight_v": (d, d // cfg.conv_pos_groups, cfg.conv_pos),
            "encoder.layer_norm.weight": (d,), "encoder.layer_norm.bias": (d,),
            "predictor.weight": (cfg.predictor_class, d), "predictor.bias": (cfg.predictor_class,)}
    for i in range(cfg.encoder_layers):
        p = f"encoder.layers.{i}."
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            keys[p + f"self_attn.{proj}.weight"], keys[p + f"self_attn.{proj}.bias"] = (d, d), (d,)
        keys[p + "self_attn.relative_attention_bias.weight"] = (cfg.num_buckets, h)
        keys[p + "self_attn.grep_linear.weight"], keys[p + "self_attn.grep_linear.bias"] = (8, d // h), (8,)
        keys[p + "self_attn.grep_a"] = (1, h, 1, 1)
        for norm in ("self_attn_layer_norm", "final_layer_norm"):
            keys[p + f"{norm}.weight"], keys[p + f"{norm}.bias"] = (d,), (d,)
        keys[p + "fc1.weight"], keys[p + "fc1.bias"] = (f, d), (f,)
        keys[p + "fc2.weight"], keys[p + "fc2.bias"] = (d, f), (d,)
    return keys


@pytest.mark.parametrize("preset", ["tiny", "iter3-plus-as2m"])
def test_state_dict_names_and_shapes_are_the_official_ones(preset):
    cfg = BEATsConfig.preset(preset)
    with torch.device("meta"):
        model = BEATs(cfg)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == official_keys(cfg)
    if preset == "iter3-plus-as2m":
        assert sum(p.numel() for p in model.parameters()) > 90e6  # the ~90 M-parameter base model


def _buckets(q_len, k_len, num_buckets, max_distance):
    rel = torch.arange(k_len)[None, :] - torch.arange(q_len)[:, None]
    num_buckets //= 2
    out = (rel > 0).long() * num_buckets
    rel = rel.abs()
    max_exact = num_buckets // 2
    large = max_exact + (torch.log(rel.float() / max_exact) / math.log(max_distance / max_exact)
                         * (num_buckets - max_exact)).long()
    large = torch.min(large, torch.full_like(large, num_buckets - 1))
    return out + torch.where(rel < max_exact, rel, large)


def reference_forward(sd, cfg, waves):
    """unilm's extract_features restated on the raw state dict (T x B x C layout, fairseq attention)."""
    import torchaudio.compliance.kaldi as kaldi

    fb = torch.stack([kaldi.fbank(w[None] * 2**15, num_mel_bins=128, sample_frequency=16000, frame_length=25,
                                  frame_shift=10) for w in waves])
    fb = (fb - 15.41663) / (2 * 6.55582)
    x = F.conv2d(fb[:, None], sd["patch_embedding.weight"], stride=cfg.input_patch_size)
    x = x.reshape(x.shape[0], x.shape[1], -1).transpose(1, 2)
    x = F.layer_norm(x, (cfg.embed_dim,), sd["layer_norm.weight"], sd["layer_norm.bias"])
    x = F.linear(x, sd["post_extract_proj.weight"], sd["post_extract_proj.bias"])
    w = torch._weight_norm(sd["encoder.pos_conv.0.weight_v"], sd["encoder.pos_conv.0.weight_g"], 2)
    conv = F.conv1d(x.transpose(1, 2), w, sd["encoder.pos_conv.0.bias"], padding=cfg.conv_pos // 2,
                    groups=cfg.conv_pos_groups)
    conv = F.gelu(conv[:, :, :-1] if cfg.conv_pos % 2 == 0 else conv)
    x = x + conv.transpose(1, 2)
    d = cfg.encoder_embed_dim
    x = F.layer_norm(x, (d,), sd["encoder.layer_norm.weight"], sd["encoder.layer_norm.bias"]).transpose(0, 1)
    tgt, bsz, _ = x.shape
    heads, hd = cfg.encoder_attention_heads, d // cfg.encoder_attention_heads
    scaling, alpha, deep = hd**-0.5, 32, (2 * cfg.encoder_layers) ** 0.25
    pos_bias, outs = None, []
    for i in range(cfg.encoder_layers):
        p = f"encoder.layers.{i}."

        def lin(name, t):
            return F.linear(t, sd[p + name + ".weight"], sd[p + name + ".bias"])

        if pos_bias is None:
            table = sd[p + "self_attn.relative_attention_bias.weight"]
            values = table[_buckets(tgt, tgt, cfg.num_buckets, cfg.max_distance)].permute(2, 0, 1)
            pos_bias = values.unsqueeze(0).repeat(bsz, 1, 1, 1).view(bsz * heads, tgt, tgt)
        q = lin("self_attn.q_proj", x) * scaling / alpha
        k, v = lin("self_attn.k_proj", x), lin("self_attn.v_proj", x)
        q = q.contiguous().view(tgt, bsz * heads, hd).transpose(0, 1)
        k = k.contiguous().view(-1, bsz * heads, hd).transpose(0, 1)
        v = v.contiguous().view(-1, bsz * heads, hd).transpose(0, 1)
        att = torch.bmm(q, k.transpose(1, 2))
        att = (att - att.max(dim=-1, keepdim=True)[0]) * alpha
        query = q.view(bsz, heads, tgt, hd) * alpha / scaling
        ga, gb = torch.sigmoid(F.linear(query, sd[p + "self_attn.grep_linear.weight"],
                                        sd[p + "self_attn.grep_linear.bias"]).view(bsz, heads, tgt, 2, 4)
                               .sum(-1)).chunk(2, dim=-1)
        gate = ga * (gb * sd[p + "self_attn.grep_a"] - 1.0) + 2.0
        att = att + (gate.view(bsz * heads, tgt, 1) * pos_bias).view(att.shape)
        out = torch.bmm(F.softmax(att, dim=-1), v).transpose(0, 1).contiguous().view(tgt, bsz, d)
        y = x * deep + lin("self_attn.out_proj", out)
        y = F.layer_norm(y, (d,), sd[p + "self_attn_layer_norm.weight"], sd[p + "self_attn_layer_norm.bias"])
        z = y * deep + lin("fc2", F.gelu(lin("fc1", y)))
        x = F.layer_norm(z, (d,), sd[p + "final_layer_norm.weight"], sd[p + "final_layer_norm.bias"])
        outs.append(x.transpose(0, 1))
    return x.transpose(0, 1), outs


def _randomised(seed=0):
    """A tiny BEATs with every parameter random (LayerNorms and grep_a too, so nothing hides behind 1s and 0s)."""
    torch.manual_seed(seed)
    model = BEATs(BEATsConfig.preset("tiny"))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name or "grep_a" in name or name.endswith("weight_g"):
                param.copy_(1 + 0.3 * torch.randn_like(param))
            elif "relative_attention_bias" in name:
                param.copy_(2 * torch.randn_like(param))
    return model.eval()


def test_forward_matches_the_official_computation_restated():
    model = _randomised()
    torch.manual_seed(1)
    waves = 0.3 * torch.randn(2, 16000 * 2)  # 2 s: 198 frames -> 12 time x 8 frequency patches
    with torch.no_grad():
        last, layers = model.extract_features(waves)
        ref_last, ref_layers = reference_forward(model.state_dict(), model.config, waves)
    assert last.shape == (2, 96, 32) and len(layers) == 2
    for mine, ref in zip([last, *layers], [ref_last, *ref_layers]):
        torch.testing.assert_close(mine, ref, atol=2e-5, rtol=1e-4)
    assert not torch.allclose(layers[0], layers[1], atol=1e-2)
    sd = model.state_dict()  # the fine-tuned head: sigmoid of the patch-mean logits (no padding)
    with torch.no_grad():
        scores = model.classify(waves)
    torch.testing.assert_close(scores, torch.sigmoid(F.linear(ref_last, sd["predictor.weight"],
                                                              sd["predictor.bias"]).mean(dim=1)), atol=1e-5, rtol=1e-4)


def test_checkpoint_round_trip_and_clear_errors(tmp_path, monkeypatch):
    from macs_bench.io import sha256_file

    model = _randomised(3)
    cfg = {**model.config.to_dict(), "dropout": 0.0, "encoder_layerdrop": 0.05, "layer_wise_gradient_decay_ratio": 0.6}
    for key in ("fbank_mean", "fbank_std"):
        cfg.pop(key)  # the official cfg has no fbank statistics: the defaults apply
    path = tmp_path / "BEATs_tiny.pt"
    torch.save({"cfg": cfg, "model": model.state_dict()}, path)
    loaded, info = load_beats(path, sha256=sha256_file(path))
    waves = 0.2 * torch.randn(1, 16000)
    with torch.no_grad():
        torch.testing.assert_close(loaded.extract_features(waves)[0], model.extract_features(waves)[0])
    assert info["sha256"] == sha256_file(path) and info["config"]["encoder_layers"] == 2
    with pytest.raises(MacsError, match="sha256 .* expected 0+$"):
        load_beats(path, sha256="0" * 64)
    with pytest.raises(MacsError, match="no BEATs checkpoint there"):
        load_beats(tmp_path / "absent.pt")
    bad = tmp_path / "bad.pt"
    torch.save({"cfg": {**cfg, "encoder_layers": 3}, "model": model.state_dict()}, bad)
    with pytest.raises(MacsError, match="do not fit its config"):
        load_beats(bad)
    monkeypatch.setenv("MACS_HOME", str(tmp_path / "home"))
    with pytest.raises(MacsError, match="missing weights 'beats-as2m-cpt2'.*weights fetch beats-as2m-cpt2"):
        load_beats()
