"""The registry of encoder presets (as open_clip's pretrained registry): a name -> how to build the encoders.

``macs_bench.features.encoders`` registers the generic presets (``paper``, ``random``, ``tiny``); a package that
brings its own encoders (the synthetic world, ``macs_bench/world/scoring.py``) registers its preset when it is
imported. The generic factory thus never imports a particular world, and an unknown name lists what is known.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from macs_bench.errors import MacsError


@dataclass(frozen=True)
class EncoderPreset:
    """``build(names, weights, seed)`` returns ``{name: Encoder}`` for the requested encoder names.

    ``provides``: the encoder names the preset can build (``None``: every registered builder)."""

    name: str
    build: Callable[[list[str], dict[str, Path], int], dict]
    description: str
    provides: tuple[str, ...] | None = None


_PRESETS: dict[str, EncoderPreset] = {}
# modules that register presets of their own, imported by name when a preset is not yet known (the generic code
# names them, it does not import them: as macs_model.registry.PLUGINS)
PLUGINS = ("macs_bench.world.scoring",)


def register_preset(preset: EncoderPreset) -> None:
    """Add (or replace, e.g. on a module reload) the preset of this name."""
    _PRESETS[preset.name] = preset


def preset_names() -> tuple[str, ...]:
    return tuple(_PRESETS)


def get_preset(name: str) -> EncoderPreset:
    """The registered preset (a plug-in module is imported on first need); an unknown name is one line listing the
    registered ones."""
    if name not in _PRESETS:
        import importlib

        for module in PLUGINS:
            importlib.import_module(module)
    if name not in _PRESETS:
        raise MacsError(f"unknown encoder preset {name!r}; choose one of {', '.join(_PRESETS)} (a package that "
                        "brings its own encoders registers its preset when imported)")
    return _PRESETS[name]
