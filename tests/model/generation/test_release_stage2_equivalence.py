"""Stage 2 through ``import-release`` gives the release's UNet output.

``ReleaseIPAttn`` and ``release_tokens`` restate ``IPAttnProcessor.__call__`` and ``MLP.forward`` of the release
(alxzzhou/MACS ``modules/custom.py``) in eval mode: the text is the first 77 rows of ``encoder_hidden_states``,
the audio tokens the rest, and each cross-attention layer adds the audio attention (scale 1) to the text
attention before ``to_out``. The release's UNet (the tiny random SD the ``tiny`` preset builds, with the release
file's weights) runs with those processors; ours is the imported run as ``generate`` loads it.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from release_helpers import write_tiny_release

from macs_model.generation.adapter import DECOUPLED
from macs_model.generation.components import tiny_components
from macs_model.generation.pipeline import load_trained
from macs_model.generation.release_import import import_release_generator

pytest.importorskip("diffusers")
TEXT_TOKENS = 77


class ReleaseIPAttn:
    """The release's IPAttnProcessor (no mask, no group/spatial norm in SD v1.x cross-attention)."""

    def __init__(self, k_ip: torch.Tensor, v_ip: torch.Tensor):
        self.k_ip, self.v_ip = k_ip, v_ip

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kw):
        batch = hidden_states.shape[0]
        text, audio = encoder_hidden_states[:, :TEXT_TOKENS], encoder_hidden_states[:, TEXT_TOKENS:]
        query = attn.to_q(hidden_states)
        heads = attn.heads
        head_dim = query.shape[-1] // heads

        def split(x):
            return x.view(batch, -1, heads, head_dim).transpose(1, 2)

        out = F.scaled_dot_product_attention(split(query), split(attn.to_k(text)), split(attn.to_v(text)))
        out = out.transpose(1, 2).reshape(batch, -1, heads * head_dim)
        ip = F.scaled_dot_product_attention(split(query), split(audio @ self.k_ip.T), split(audio @ self.v_ip.T))
        out = out + 1.0 * ip.transpose(1, 2).reshape(batch, -1, heads * head_dim)
        out = attn.to_out[1](attn.to_out[0](out))
        return out / attn.rescale_output_factor


def release_tokens(mlp: dict[str, torch.Tensor], embeddings: torch.Tensor) -> torch.Tensor:
    """MLP.forward in eval mode: adapter(x + pe), adapter = LayerNorm, Linear, GELU, Dropout, Linear, LayerNorm."""
    x = embeddings + mlp["pe"]
    x = F.layer_norm(x, x.shape[-1:], mlp["adapter.0.weight"], mlp["adapter.0.bias"])
    x = F.gelu(F.linear(x, mlp["adapter.1.weight"], mlp["adapter.1.bias"]))
    x = F.linear(x, mlp["adapter.4.weight"], mlp["adapter.4.bias"])
    return F.layer_norm(x, x.shape[-1:], mlp["adapter.5.weight"], mlp["adapter.5.bias"])


def test_imported_release_generator_gives_the_release_unet_output(tmp_path):
    from diffusers.models.attention_processor import AttnProcessor

    release = write_tiny_release(tmp_path / "release")
    run = import_release_generator(release / "LLP_mlp.pt", release / "LLP_unet.pt",
                                   release / "separator_FSD50K_full.pt", tmp_path / "run", preset="tiny")
    components, config, tokens = load_trained(run)
    mlp = torch.load(release / "LLP_mlp.pt", weights_only=True)
    state = torch.load(release / "LLP_unet.pt", weights_only=True)

    theirs = tiny_components(0).unet
    theirs.load_state_dict({k: v for k, v in state.items() if ".processor." not in k})
    processors = {}
    for name in theirs.attn_processors:
        if name.endswith("attn2.processor"):
            layer = name[: -len(".processor")]
            processors[name] = ReleaseIPAttn(state[f"{layer}.processor.to_k_ip.weight"],
                                             state[f"{layer}.processor.to_v_ip.weight"])
        else:
            processors[name] = AttnProcessor()
    theirs.set_attn_processor(processors)
    theirs.eval()

    gen = torch.Generator().manual_seed(0)
    latents = torch.randn(2, 4, 16, 16, generator=gen)
    text = torch.randn(2, TEXT_TOKENS, 32, generator=gen)
    audio = F.normalize(torch.randn(2, 6, 32, generator=gen), dim=-1)
    timesteps = torch.tensor([10, 700])
    with torch.no_grad():
        expected = theirs(latents, timesteps, encoder_hidden_states=torch.cat(
            [text, release_tokens(mlp, audio)], dim=1)).sample
        got = components.unet(latents, timesteps, **DECOUPLED.unet_inputs(text, audio, tokens)).sample
        plain = components.unet(latents, timesteps, **DECOUPLED.unet_inputs(text, torch.zeros_like(audio), tokens)).sample
    assert (got - plain).abs().max() > 1e-3, "the audio barely reaches the output; the comparison would say little"
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    # slot order matters to the release's network too: swapping two slots changes its output
    with torch.no_grad():
        swapped = theirs(latents, timesteps, encoder_hidden_states=torch.cat(
            [text, release_tokens(mlp, audio[:, [1, 0, 2, 3, 4, 5]])], dim=1)).sample
    assert (swapped - expected).abs().max() > 1e-4
