"""macs_bench: build the MACS benchmarks and score audio-to-image models against them.

The notebook front door (each name is imported on first use, so ``import macs_bench`` stays fast and
torch-free)::

    from macs_bench import build, fetch, score, score_folders, compare, leaderboard, read_manifest, ScoreResult, run
"""

from __future__ import annotations

from importlib import import_module

__version__ = "0.1.0"

# name -> (module, attribute)
_FRONT_DOOR = {
    "build": ("macs_bench.datasets", "build"),
    "fetch": ("macs_bench.media.fetch", "fetch"),
    "FetchOptions": ("macs_bench.media.clip", "FetchOptions"),
    "score": ("macs_bench.scoring", "score"),
    "score_folders": ("macs_bench.scoring", "score_folders"),
    "ScoreConfig": ("macs_bench.scoring", "ScoreConfig"),
    "ScoreResult": ("macs_bench.results", "ScoreResult"),
    "compare": ("macs_bench.comparison", "compare"),
    "Comparison": ("macs_bench.comparison", "Comparison"),
    "leaderboard": ("macs_bench.api", "leaderboard"),
    "read_manifest": ("macs_bench.api", "read_manifest"),
    "resolve_device": ("macs_bench.device", "resolve_device"),
    "run": ("macs_bench.models.runner", "run"),
    "load_model": ("macs_bench.models.registry", "load_model"),
    "AudioToImageModel": ("macs_bench.models.protocol", "AudioToImageModel"),
}
__all__ = ["__version__", *_FRONT_DOOR]


def __getattr__(name: str):
    if name in _FRONT_DOOR:
        module, attribute = _FRONT_DOOR[name]
        value = getattr(import_module(module), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'macs_bench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
