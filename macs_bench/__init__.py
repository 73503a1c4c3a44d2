"""macs_bench: build the MACS benchmarks and score audio-to-image models against them."""

__version__ = "0.1.0"
