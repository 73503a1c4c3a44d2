"""Frozen config dataclasses with named presets and a JSON-safe, validated dict form."""

from __future__ import annotations

import dataclasses
from typing import Any

from macs_bench.errors import MacsError


class NamedConfig:
    """Shared by the model's frozen config dataclasses: named presets, checked replace, strict JSON round trip.

    A subclass sets ``KIND`` (its name in messages) and ``presets()`` (its preset table).
    """

    KIND = "config"

    @classmethod
    def presets(cls) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def preset(cls, name: str, **overrides: Any):
        """The named preset, optionally with some fields replaced."""
        table = cls.presets()
        if name not in table:
            raise MacsError(f"unknown {cls.KIND} preset {name!r} (known: {', '.join(sorted(table))})")
        return table[name].replace(**overrides) if overrides else table[name]

    def check_positive_ints(self, *names: str, optional: bool = False) -> None:
        """Each named field is an int >= 1 (or None, with ``optional``); else one MacsError naming it."""
        for name in names:
            value = getattr(self, name)
            if optional and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                kind = "a positive integer or None" if optional else "a positive integer"
                raise MacsError(f"{self.KIND} config: {name} must be {kind}, got {value!r}")

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)}

    def replace(self, **changes: Any):
        """A copy with some fields changed; unknown field names are a MacsError."""
        unknown = sorted(set(changes) - self.field_names())
        if unknown:
            raise MacsError(f"{self.KIND} config: unknown field(s) {', '.join(unknown)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe dict of every field (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        """Inverse of to_dict; every field must be present and no other key, so a saved config is never guessed."""
        if not isinstance(data, dict):
            raise MacsError(f"{cls.KIND} config must be a JSON object, got {type(data).__name__}")
        unknown = sorted(set(data) - cls.field_names())
        missing = sorted(cls.field_names() - set(data))
        if unknown or missing:
            parts = ([f"unknown field(s) {', '.join(unknown)}"] if unknown else []) + (
                [f"missing field(s) {', '.join(missing)}"] if missing else [])
            raise MacsError(f"{cls.KIND} config: {'; '.join(parts)}")
        return cls(**data)
