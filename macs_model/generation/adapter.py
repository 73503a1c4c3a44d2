"""Decoupled cross-attention (paper §3.3) with diffusers' own IP-Adapter machinery, and its ``--no-decoupled`` ablation.

Decoupled (the paper): every cross-attention layer (``attn2``) gets diffusers' ``IPAdapterAttnProcessor2_0`` with M
audio tokens; its new ``to_k_ip`` / ``to_v_ip`` start as copies of the layer's text ``to_k`` / ``to_v`` and the
outputs add (H = H_text + H_audio, scale 1). The audio tokens (:class:`~.tokens.AudioTokens`) sit in
``unet.encoder_hid_proj`` as the single projection of a ``MultiIPAdapterImageProjection``, so the UNet and the
stock ``StableDiffusionPipeline`` take the sources' CLAP embeddings as ``image_embeds`` / ``ip_adapter_image_embeds``.
Not decoupled (the "w/o DC" row): the tokens are appended to the text tokens and go through the frozen text
k/v; no processor changes.

Only the adapter trains: the tokens, plus the audio k/v when decoupled (about 22 M parameters on SD v1.x).
:func:`adapter_state_dict` / :func:`save_adapter` keep just those (safetensors, under 100 MB), never the UNet.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from macs_bench.errors import MacsError
from macs_bench.io import atomic_write_bytes, atomic_write_text, dumps_json
from macs_model.generation.tokens import AudioTokens

ADAPTER_FILE = "adapter.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
TOKENS_PREFIX = "encoder_hid_proj.image_projection_layers.0."


def _cross_attention_layers(unet: nn.Module) -> dict[str, Any]:
    """name -> Attention module of every cross-attention (``attn2``) layer, in the UNet's order."""
    return {name: module for name, module in unet.named_modules() if name.endswith("attn2")}


class DecoupledAudio:
    """The paper's decoupled cross-attention: IP-Adapter processors on every ``attn2`` (audio k/v copied from the
    text k/v), the tokens as the UNet's ``encoder_hid_proj``; the UNet trains (its adapter parameters only)."""

    decoupled = True

    def install(self, unet: nn.Module, tokens: AudioTokens) -> nn.Module:
        from diffusers.models.attention_processor import AttnProcessor2_0, IPAdapterAttnProcessor2_0
        from diffusers.models.embeddings import MultiIPAdapterImageProjection

        cross_dim = unet.config.cross_attention_dim
        processors = {}
        layers = _cross_attention_layers(unet)
        for name in unet.attn_processors:
            module_name = name[: -len(".processor")]
            if module_name not in layers:
                processors[name] = AttnProcessor2_0()
                continue
            attn = layers[module_name]
            processor = IPAdapterAttnProcessor2_0(hidden_size=attn.to_k.out_features, cross_attention_dim=cross_dim,
                                                  num_tokens=(tokens.num_tokens,), scale=1.0)
            with torch.no_grad():
                processor.to_k_ip[0].weight.copy_(attn.to_k.weight)
                processor.to_v_ip[0].weight.copy_(attn.to_v.weight)
            processors[name] = processor.to(device=attn.to_k.weight.device, dtype=attn.to_k.weight.dtype)
        unet.set_attn_processor(processors)
        unet.encoder_hid_proj = MultiIPAdapterImageProjection([tokens])
        unet.config.encoder_hid_dim_type = "ip_image_proj"
        for name, parameter in unet.named_parameters():
            parameter.requires_grad_(is_adapter_key(name))
        return unet

    def modules_in_use(self, unet: nn.Module, tokens: AudioTokens, trained: nn.Module) -> tuple[nn.Module, Any]:
        """(UNet, tokens) a training step calls, with the prepared trainable module in its place."""
        return trained, tokens

    def unet_inputs(self, text: torch.Tensor, audio: torch.Tensor, tokens: AudioTokens | None = None
                    ) -> dict[str, Any]:
        """Text as ``encoder_hidden_states``, audio [B, K, 512] as the IP-Adapter ``image_embeds`` [B, 1, K, 512]
        (one "image" of K slots, so the tokens see every slot with its position)."""
        return {"encoder_hidden_states": text, "added_cond_kwargs": {"image_embeds": [audio[:, None]]}}

    def call_kwargs(self, prompt: torch.Tensor, audio: torch.Tensor, tokens: AudioTokens,
                    guided: bool) -> dict[str, Any]:
        """``StableDiffusionPipeline`` arguments: audio as ``ip_adapter_image_embeds``, zero audio unconditional."""
        embeds = torch.cat([torch.zeros_like(audio), audio]) if guided else audio
        return {"prompt_embeds": prompt, "negative_prompt_embeds": prompt,
                "ip_adapter_image_embeds": [embeds[:, None]]}

    def state_dict(self, unet: nn.Module, tokens: AudioTokens | None = None) -> dict[str, torch.Tensor]:
        return {k: v for k, v in unet.state_dict().items() if is_adapter_key(k)}

    def load(self, unet: nn.Module, state: Mapping[str, torch.Tensor], tokens: AudioTokens | None = None) -> None:
        unet.load_state_dict(dict(state), strict=False)


class AppendedAudio:
    """Ablation "w/o DC": the audio tokens appended to the text tokens, through the frozen text k/v; the UNet is
    untouched and frozen, the tokens train."""

    decoupled = False

    def install(self, unet: nn.Module, tokens: AudioTokens) -> nn.Module:
        tokens.requires_grad_(True)
        return tokens

    def modules_in_use(self, unet: nn.Module, tokens: AudioTokens, trained: nn.Module) -> tuple[nn.Module, Any]:
        return unet, trained

    def unet_inputs(self, text: torch.Tensor, audio: torch.Tensor, tokens: AudioTokens | None = None
                    ) -> dict[str, Any]:
        """``tokens(audio)`` appended to the text tokens."""
        if tokens is None:
            raise MacsError("unet_inputs: the appended-tokens ablation needs the audio tokens module")
        return {"encoder_hidden_states": torch.cat([text, tokens(audio).to(text.dtype)], dim=1)}

    def call_kwargs(self, prompt: torch.Tensor, audio: torch.Tensor, tokens: AudioTokens,
                    guided: bool) -> dict[str, Any]:
        return {"prompt_embeds": torch.cat([prompt, tokens(audio)], dim=1),
                "negative_prompt_embeds": torch.cat([prompt, tokens(torch.zeros_like(audio))], dim=1)}

    def state_dict(self, unet: nn.Module, tokens: AudioTokens | None = None) -> dict[str, torch.Tensor]:
        return {f"tokens.{k}": v for k, v in tokens_of(unet, tokens).state_dict().items()}

    def load(self, unet: nn.Module, state: Mapping[str, torch.Tensor], tokens: AudioTokens | None = None) -> None:
        tokens_of(unet, tokens).load_state_dict({k[len("tokens."):]: v for k, v in state.items()}, strict=True)


DECOUPLED, APPENDED = DecoupledAudio(), AppendedAudio()
AudioVariant = DecoupledAudio | AppendedAudio


def audio_variant(decoupled: bool) -> AudioVariant:
    """The variant a config's (or a saved adapter's) ``decoupled`` field names."""
    return DECOUPLED if decoupled else APPENDED


def install_adapter(unet: nn.Module, tokens: AudioTokens, variant: AudioVariant = DECOUPLED) -> nn.Module:
    """Freeze ``unet`` and wire ``tokens`` into it as ``variant`` does; returns the module whose parameters train
    (the UNet when decoupled, with its adapter parameters alone requiring grad; else ``tokens``)."""
    cross_dim = unet.config.cross_attention_dim
    if tokens.token_dim != cross_dim:
        raise MacsError(f"audio tokens are {tokens.token_dim} wide but the UNet's cross-attention takes {cross_dim}")
    unet.requires_grad_(False)
    return variant.install(unet, tokens)


def is_adapter_key(name: str) -> bool:
    """A UNet state-dict key that belongs to the adapter (audio k/v or tokens)."""
    return ".to_k_ip." in name or ".to_v_ip." in name or name.startswith("encoder_hid_proj.")


def tokens_of(unet: nn.Module, tokens: AudioTokens | None = None) -> AudioTokens:
    """The audio tokens: inside a decoupled UNet, else the separate module."""
    proj = getattr(unet, "encoder_hid_proj", None)
    if proj is not None and hasattr(proj, "image_projection_layers"):
        return proj.image_projection_layers[0]
    if tokens is None:
        raise MacsError("the UNet has no audio tokens installed and none were given")
    return tokens


def adapter_state_dict(unet: nn.Module, tokens: AudioTokens | None = None, variant: AudioVariant = DECOUPLED
                       ) -> dict[str, torch.Tensor]:
    """The trainable tensors only: adapter keys of a decoupled UNet, or ``tokens.*`` of the appended variant."""
    return {k: v.detach().cpu().contiguous() for k, v in variant.state_dict(unet, tokens).items()}


def load_adapter_state(unet: nn.Module, state: Mapping[str, torch.Tensor], where: str, *,
                       tokens: AudioTokens | None = None, variant: AudioVariant = DECOUPLED) -> None:
    """Strict load of :func:`adapter_state_dict` output; a mismatch is one error naming ``where``."""
    expected = adapter_state_dict(unet, tokens, variant)
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    misshapen = sorted(k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape))
    if missing or unexpected or misshapen:
        parts = [f"{len(keys)} {label} (e.g. {keys[0]})" for label, keys in
                 (("missing", missing), ("unexpected", unexpected), ("wrong shape", misshapen)) if keys]
        raise MacsError(f"{where}: adapter weights do not fit this UNet: {'; '.join(parts)}")
    variant.load(unet, state, tokens)


def save_adapter(folder: str | os.PathLike, unet: nn.Module, config: Mapping[str, Any], *,
                 tokens: AudioTokens | None = None, variant: AudioVariant = DECOUPLED) -> Path:
    """Write ``adapter.safetensors`` + ``adapter_config.json`` into ``folder`` (atomically each)."""
    return write_adapter(folder, adapter_state_dict(unet, tokens, variant), config, decoupled=variant.decoupled)


def write_adapter(folder: str | os.PathLike, state: Mapping[str, torch.Tensor], config: Mapping[str, Any], *,
                  decoupled: bool) -> Path:
    """The one adapter writer: ``state`` (:func:`adapter_state_dict` keys) as ``adapter.safetensors`` and
    ``config`` with ``decoupled`` and the parameter count as ``adapter_config.json``, each atomically. For a
    state that is not in a UNet (an imported release); :func:`save_adapter` for a trained one."""
    from safetensors.torch import save

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in state.items()}
    atomic_write_bytes(folder / ADAPTER_FILE, save(state, metadata={"decoupled": str(decoupled)}))
    atomic_write_text(folder / ADAPTER_CONFIG, dumps_json({**dict(config), "decoupled": decoupled,
                                                           "parameters": sum(v.numel() for v in state.values())}))
    return folder / ADAPTER_FILE


def read_adapter(folder: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state, config) of a folder :func:`save_adapter` wrote."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        config = json.loads((folder / ADAPTER_CONFIG).read_text(encoding="utf-8"))
        state = load_file(str(folder / ADAPTER_FILE))
    except (OSError, ValueError, SafetensorError) as exc:
        raise MacsError(f"{folder}: not an adapter folder ({ADAPTER_FILE} + {ADAPTER_CONFIG}): {exc}") from exc
    return state, config


def release_adapter_state(mlp: Mapping[str, torch.Tensor], unet: Mapping[str, torch.Tensor], where: str
                          ) -> dict[str, torch.Tensor]:
    """The release's ``<dataset>_mlp.pt`` + the audio k/v of ``<dataset>_unet.pt`` in :func:`adapter_state_dict`
    keys (decoupled): ``pe`` / ``adapter.*`` -> tokens, ``<layer>.attn2.processor.to_k_ip.weight`` -> ``...to_k_ip.0``.
    Everything else of the release UNet (the frozen SD weights) is ignored."""
    expected_mlp = {"pe", "adapter.0.weight", "adapter.0.bias", "adapter.1.weight", "adapter.1.bias",
                    "adapter.4.weight", "adapter.4.bias", "adapter.5.weight", "adapter.5.bias"}
    if set(mlp) != expected_mlp:
        extra, missing = sorted(set(mlp) - expected_mlp), sorted(expected_mlp - set(mlp))
        raise MacsError(f"{where}: not a release MLP state dict (missing {missing[:3]}, unexpected {extra[:3]})")
    state = {TOKENS_PREFIX + k: v for k, v in mlp.items()}
    for key, value in unet.items():
        for kind in ("to_k_ip", "to_v_ip"):
            suffix = f".attn2.processor.{kind}.weight"
            if key.endswith(suffix):
                state[key[: -len(".weight")] + ".0.weight"] = value
    if not any(".to_k_ip." in k for k in state):
        raise MacsError(f"{where}: the release UNet holds no audio k/v (no '*.attn2.processor.to_k_ip.weight' keys)")
    return state
