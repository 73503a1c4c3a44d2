"""Stable unCLIP 2.1 (``stabilityai/stable-diffusion-2-1-unclip``) as the image half of the ImageBind baseline:
diffusers' ``StableUnCLIPImg2ImgPipeline`` fed an image embedding (``image_embeds``) instead of an image.

The pipeline noises the embedding at ``noise_level`` (after its normaliser's mean/std), appends the noise level's
timestep embedding and gives the pair to the UNet as ``class_labels``; classifier-free guidance pairs it with an
all-zero embedding. ``load_unclip`` reads the pinned hub snapshot (``macs-bench weights fetch sd-2-1-unclip``), a
local folder or a hub id; ``tiny_unclip`` builds a small random pipeline of the same classes (tests, ``tiny``).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any

import torch

from macs_bench.errors import MacsError
from macs_model.named_config import NamedConfig

UNCLIP_WEIGHTS = "sd-2-1-unclip"  # the macs-bench weights registry entry (hub commit pinned)
UNCLIP_LICENCE = "CreativeML Open RAIL++-M (Stable unCLIP 2.1)"


@dataclass(frozen=True)
class UnCLIPConfig(NamedConfig):
    """The baseline's settings. ``paper``: ImageBind huge + Stable unCLIP 2.1 at the pipeline's own defaults
    (768 x 768, 20 steps of its scheduler, guidance 10, noise level 0; the MACS paper states none); ``tiny``:
    random small parts, 32 x 32 (tests only).

    ``embed_norm``: None feeds ImageBind's audio embedding as ImageBind returns it (each clip's unit vector x its
    logit scale 20, averaged over the clips), as the public ImageBind -> unCLIP demos do (Anything2Image); a
    number rescales every embedding to that L2 norm first."""

    base: str = "unclip"
    encoder: str = "huge"
    height: int = 768
    width: int = 768
    inference_steps: int = 20
    guidance_scale: float = 10.0
    noise_level: int = 0
    embed_norm: float | None = None
    dtype: str = "auto"  # auto: float16 on CUDA, float32 elsewhere
    seed: int = 0  # the tiny parts' random initialisation

    KIND = "imagebind-unclip"

    def __post_init__(self) -> None:
        if self.base not in ("unclip", "tiny") or self.encoder not in ("huge", "tiny"):
            raise MacsError(f"imagebind-unclip config: base must be unclip or tiny, encoder huge or tiny "
                            f"(got {self.base!r}, {self.encoder!r})")
        self.check_positive_ints("height", "width", "inference_steps")
        if self.height % 8 or self.width % 8:
            raise MacsError(f"imagebind-unclip config: height and width must be multiples of 8, got "
                            f"{self.height}x{self.width}")
        if self.noise_level < 0 or self.guidance_scale < 0 or (self.embed_norm is not None and self.embed_norm <= 0):
            raise MacsError("imagebind-unclip config: noise_level and guidance_scale must be >= 0, embed_norm > 0")
        if self.dtype not in ("auto", "float32", "float16", "bfloat16"):
            raise MacsError(f"imagebind-unclip config: dtype must be auto, float32, float16 or bfloat16, got "
                            f"{self.dtype!r}")

    def torch_dtype(self, device: torch.device) -> torch.dtype:
        if self.dtype == "auto":
            return torch.float16 if device.type == "cuda" else torch.float32
        return getattr(torch, self.dtype)

    @classmethod
    def presets(cls) -> dict[str, "UnCLIPConfig"]:
        return PRESETS


PRESETS = {
    "paper": UnCLIPConfig(),
    "tiny": UnCLIPConfig(base="tiny", encoder="tiny", height=32, width=32, inference_steps=3, guidance_scale=3.0,
                         dtype="float32"),
}


def load_unclip(base: str | os.PathLike | None = None, dtype: torch.dtype = torch.float32) -> tuple[Any, dict]:
    """(pipeline, source): the registry's verified snapshot of Stable unCLIP 2.1, or ``base`` (a local folder in
    the diffusers layout, or a hub id). Missing or unloadable: one MacsError line."""
    from diffusers import StableUnCLIPImg2ImgPipeline

    if base is None:
        from macs_bench import weights

        spec = weights.WEIGHTS[UNCLIP_WEIGHTS]
        where = weights.path(UNCLIP_WEIGHTS)
        source = {"weights": UNCLIP_WEIGHTS, "repo": spec.repo_id, "revision": spec.revision}
    else:
        where, source = base, {"base": str(base)}
    try:
        with warnings.catch_warnings():  # newer diffusers rename torch_dtype to dtype; ours reads >= 0.30
            warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
            pipe = StableUnCLIPImg2ImgPipeline.from_pretrained(str(where), torch_dtype=dtype)
    except (OSError, ValueError, EnvironmentError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise MacsError(f"{where}: cannot load Stable unCLIP ({type(exc).__name__}: {first})") from None
    return pipe, {**source, "path": str(where), "licence": UNCLIP_LICENCE}


def tiny_unclip(embed_dim: int = 32, seed: int = 0) -> tuple[Any, dict]:
    """A small random ``StableUnCLIPImg2ImgPipeline`` from configs (offline, CPU-fast; not Stable unCLIP): the
    tiny SD's tokenizer, text encoder and VAE, a UNet with a projection class embedding of 2 x ``embed_dim``
    (the image embedding and its noise-level embedding), the unCLIP normaliser and noising schedule."""
    from diffusers import DDIMScheduler, DDPMScheduler, StableUnCLIPImg2ImgPipeline, UNet2DConditionModel
    from diffusers.pipelines.stable_diffusion.stable_unclip_image_normalizer import StableUnCLIPImageNormalizer
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    from macs_model.generation.components import tiny_components

    sd = tiny_components(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(
            sample_size=16, block_out_channels=(32, 64), layers_per_block=1, cross_attention_dim=32,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            attention_head_dim=(2, 4), norm_num_groups=32, class_embed_type="projection",
            projection_class_embeddings_input_dim=2 * embed_dim, use_linear_projection=True)
        image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
            hidden_size=32, projection_dim=embed_dim, num_hidden_layers=1, num_attention_heads=2, image_size=32,
            intermediate_size=37, patch_size=16))
        normalizer = StableUnCLIPImageNormalizer(embedding_dim=embed_dim)
        with torch.no_grad():  # a normaliser that is not the identity, so its scale/unscale are exercised
            normalizer.mean.normal_(0, 0.5)
            normalizer.std.uniform_(0.5, 2.0)
    pipe = StableUnCLIPImg2ImgPipeline(
        feature_extractor=CLIPImageProcessor(crop_size=32, size=32), image_encoder=image_encoder,
        image_normalizer=normalizer, image_noising_scheduler=DDPMScheduler(beta_schedule="squaredcos_cap_v2"),
        tokenizer=sd.tokenizer, text_encoder=sd.text_encoder, unet=unet,
        scheduler=DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                                prediction_type="v_prediction", set_alpha_to_one=False, steps_offset=1),
        vae=sd.vae)
    return pipe, {"base": "tiny", "note": "random small StableUnCLIPImg2ImgPipeline built from configs "
                  "(not Stable unCLIP)", "seed": seed}


def image_embed_dim(pipe: Any) -> int:
    """The image-embedding width the pipeline's UNet takes (half its class-embedding input: 1024 for unCLIP-H)."""
    return int(pipe.image_normalizer.mean.shape[-1])


@torch.no_grad()
def draw(pipe: Any, embeds: torch.Tensor, seeds: list[int], config: UnCLIPConfig) -> list[Any]:
    """PIL images from image embeddings [N, D]: item i's latents, then its embedding noise, from ``seeds[i]``
    (so batching changes no image); the empty prompt, as an image-variation call makes it."""
    device = pipe.device
    dtype = pipe.unet.dtype
    factor = pipe.vae_scale_factor
    shape = (pipe.unet.config.in_channels, config.height // factor, config.width // factor)
    generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
    latents = torch.stack([torch.randn(shape, generator=g) for g in generators])
    latents = latents * pipe.scheduler.init_noise_sigma
    return pipe(prompt=[""] * len(seeds), image_embeds=embeds.to(device, dtype), latents=latents.to(device, dtype),
                generator=generators, num_inference_steps=config.inference_steps,
                guidance_scale=config.guidance_scale, noise_level=config.noise_level, height=config.height,
                width=config.width, output_type="pil").images
