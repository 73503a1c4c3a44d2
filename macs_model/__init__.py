"""macs_model: the reference two-stage MACS model (separation before generation).

The front door: ``from macs_model import train_separator, separate, train_generator, generate,
AudioToImagePipeline, reproduce, run_ablations``.
Each name is imported on first use, so ``import macs_model`` stays light (no torch until a stage is touched).
"""

from __future__ import annotations

import importlib
from typing import Any

from macs_bench import __version__

_ENTRY_POINTS = {
    "train_separator": "macs_model.separation.api",
    "separate": "macs_model.separation.api",
    "load_separator": "macs_model.separation.api",
    "train_generator": "macs_model.generation.api",
    "generate": "macs_model.generation.api",
    "generate_audio": "macs_model.generation.api",
    "AudioToImagePipeline": "macs_model.generation.audio_to_image",
    "import_release_generator": "macs_model.generation.release_import",
    "reproduce": "macs_model.reproduction",
    "run_ablations": "macs_model.ablations",
    "AblationPlan": "macs_model.ablation_plan",
    "AblationResult": "macs_model.ablation_plan",
    "TrainSummary": "macs_model.results",
    "Separation": "macs_model.results",
}

__all__ = ["__version__", *_ENTRY_POINTS]


def __getattr__(name: str) -> Any:
    module = _ENTRY_POINTS.get(name)
    if module is None:
        raise AttributeError(f"module 'macs_model' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
