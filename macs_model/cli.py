"""``macs-model``: a thin typer layer over :mod:`macs_model`'s Python API."""

from __future__ import annotations

import json

from macs_bench.cli import console, new_app, run

app = new_app(
    "macs-model",
    "The reference two-stage MACS model: separator (stage 1) and Stable Diffusion adapter (stage 2).",
)


@app.command("env")
def env() -> None:
    """Report torch, CUDA, torchsort and ffmpeg as this environment has them (JSON)."""
    from macs_model.environment import environment_report

    console.print_json(json.dumps(environment_report()))


def main() -> None:
    run(app)
