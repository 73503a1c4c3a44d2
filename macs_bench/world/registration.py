"""The world's registration hook for macs_model's registries (``macs_model.registry.PLUGINS``): the ``world``
CLAP-like pair (``--clap world``) and the ``world`` generator preset with the world's SD base as its default."""

from __future__ import annotations


def register() -> None:
    from macs_bench.world import SD_DIR, WORLD_DIR
    from macs_model.generation.config import GeneratorConfig
    from macs_model.registry import register_clap, register_generator_preset

    def world_clap(sample_rate: int):
        from macs_bench.world.clap import WorldClap

        return WorldClap(input_rate=sample_rate)

    register_clap("world", world_clap)
    # 32 x 32 images; the world's 2 s clips heard whole, its square frames centre-cropped, as the tiny preset does
    register_generator_preset("world", GeneratorConfig(
        base="sd", height=32, width=32, clap_dim=64, steps=300, epochs=None, batch_size=16, grad_accum=1, lr=1e-3,
        mixed_precision="no", checkpoint_every=100, log_every=20, inference_steps=20, guidance_scale=3.0,
        lr_schedule="cosine", image_mode="centre-crop", audio_seconds=None), default_base=lambda: WORLD_DIR / SD_DIR)
