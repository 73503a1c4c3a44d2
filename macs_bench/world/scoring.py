"""The ``world`` scoring preset: the world's towers in the roles of Inception, CLIP ViT-B/32 and wav2clip.

Inception's pool features -> the image tower's 128-d trunk; CLIP's image embedding -> its 64-d projection;
wav2clip -> the audio tower trained into that projection's space. Meaningful for the synthetic world only.
"""

from __future__ import annotations

from pathlib import Path

import torch

PREPROCESS = "world-32-v1"


def image_input(path: Path) -> torch.Tensor:
    from macs_bench.features.inputs import load_image
    from macs_bench.world.towers import image_tensor

    return image_tensor([load_image(path)])[0]


def world_encoders(path: Path | None = None) -> dict:
    """Encoders named as ``build_encoders`` names them, all sharing one verified towers file."""
    from macs_bench.features.encoders import Encoder, audio_input
    from macs_bench.features.inputs import AUDIO_RATE
    from macs_bench.world import TOWERS_FILE, WORLD_DIR
    from macs_bench.world.towers import EMBED_DIM, TRUNK_DIM, load_towers

    path = Path(path) if path else WORLD_DIR / TOWERS_FILE
    towers = load_towers(path)
    weights = f"world-sha256:{towers.weights_sha256}"
    return {
        "inception": Encoder("inception", "image", TRUNK_DIM, weights, PREPROCESS, image_input, towers.image,
                             lambda m, x: m.features(x)),
        "clip": Encoder("clip", "image", EMBED_DIM, weights, PREPROCESS, image_input, towers.image,
                        lambda m, x: m(x)),
        "wav2clip": Encoder("wav2clip", "audio", EMBED_DIM, weights, f"wave-{AUDIO_RATE}-mono-v1", audio_input,
                            towers.audio, lambda m, x: m(x)),
    }


def _preset(names: list[str], weights: dict, seed: int) -> dict:
    return {name: encoder for name, encoder in world_encoders().items() if name in names}


def _register() -> None:
    """Fill the encoder-preset registry's ``world`` entry (the generic factory never imports the world)."""
    from macs_bench.features.registry import EncoderPreset, register_preset

    register_preset(EncoderPreset("world", _preset, "the synthetic world's trained towers (the demo's)",
                                  provides=("inception", "clip", "wav2clip")))


_register()
