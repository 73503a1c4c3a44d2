"""macs_model: the reference two-stage MACS model (separation before generation)."""

from macs_bench import __version__

__all__ = ["__version__"]
