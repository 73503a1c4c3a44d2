"""Registries that plug-ins fill in (as open_clip's pretrained registry): CLAP encoders by ``--clap`` name and
generator presets with their default base, so generic stage-1/2 code never imports a particular world.

A plug-in is a callable ``register()`` named as ``module:function``: the built-in ones in :data:`PLUGINS`
(the synthetic world's hook, ``macs_bench.world.registration``) and any installed under the entry-point group
``macs_model.plugins``. They load once, on the first look-up.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

PLUGINS = ("macs_bench.world.registration:register",)
GROUP = "macs_model.plugins"

_claps: dict[str, Callable[[int], Any]] = {}
_presets: dict[str, Any] = {}
_bases: dict[str, Callable[[], Path]] = {}
_loaded = False


def register_clap(name: str, factory: Callable[[int], Any]) -> None:
    """``factory(sample_rate)`` builds the audio/text encoder that ``--clap name`` selects."""
    _claps[name] = factory


def register_generator_preset(name: str, config: Any, default_base: Callable[[], Path] | None = None) -> None:
    """A stage-2 preset (a ``GeneratorConfig``) and, optionally, the SD base folder it uses by default."""
    _presets[name] = config
    if default_base is not None:
        _bases[name] = default_base


def load_plugins() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    from importlib.metadata import entry_points

    for target in (*PLUGINS, *(ep.value for ep in entry_points(group=GROUP))):
        module, _, function = target.partition(":")
        try:
            register = getattr(importlib.import_module(module), function)
        except (ImportError, AttributeError):
            continue  # a plug-in that is not installed registers nothing
        register()


def clap_factory(name: str) -> Callable[[int], Any] | None:
    load_plugins()
    return _claps.get(name)


def generator_presets() -> dict[str, Any]:
    load_plugins()
    return dict(_presets)


def default_base(preset: str) -> Path | None:
    load_plugins()
    factory = _bases.get(preset)
    return factory() if factory is not None else None
