"""Finding a model by name: Python entry points (group ``macs_bench.models``) or ``pkg.module:Attribute``.

A package registers a model as ``[project.entry-points."macs_bench.models"] my-model = "pkg.module:Class"``;
any other class or factory loads by its import path. ``options`` are passed to the class (or factory).
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from macs_bench.errors import MacsError

GROUP = "macs_bench.models"


def registered() -> dict[str, str]:
    """Entry-point name -> ``module:attribute`` of every installed model (this package's baselines included)."""
    found = {ep.name: ep.value for ep in entry_points(group=GROUP)}
    try:  # the baselines of an uninstalled checkout (entry points need an install to be seen)
        from macs_model.baselines import MODELS
    except ImportError:
        MODELS = {}
    return {**MODELS, **found}


def resolve(spec: str) -> Any:
    """The class or factory that ``spec`` (a registered name or ``pkg.module:Attribute``) names."""
    target = registered().get(spec, spec)
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        known = ", ".join(sorted(registered())) or "none"
        raise MacsError(f"model {spec!r}: not a registered name (known: {known}) nor pkg.module:Class")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise MacsError(f"model {spec!r}: cannot import {module_name} ({exc})") from None
    value = module
    for part in attribute.split("."):
        value = getattr(value, part, None)
        if value is None:
            raise MacsError(f"model {spec!r}: {module_name} has no {attribute}")
    return value


def load_model(spec: str, **options: Any) -> Any:
    """An instance of the model ``spec`` names, built with ``options``."""
    factory = resolve(spec)
    try:
        return factory(**options)
    except TypeError as exc:
        raise MacsError(f"model {spec!r}: {exc}") from None


def parse_options(pairs: list[str] | None) -> dict[str, Any]:
    """``--option key=value`` pairs; values read as JSON when they parse (numbers, booleans), else as text."""
    import json

    options: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise MacsError(f"--option {pair!r}: expected key=value")
        try:
            options[key.strip().replace("-", "_")] = json.loads(value)
        except ValueError:
            options[key.strip().replace("-", "_")] = value
    return options
