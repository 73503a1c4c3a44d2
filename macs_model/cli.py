"""``macs-model``: a thin typer layer over :mod:`macs_model`'s Python API."""

from __future__ import annotations

import json

import typer

from macs_model import __version__

app = typer.Typer(
    name="macs-model",
    help="The reference two-stage MACS model: separator (stage 1) and Stable Diffusion adapter (stage 2).",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"macs-model {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """The reference two-stage MACS model."""


@app.command("env")
def env() -> None:
    """Report torch, CUDA, torchsort and ffmpeg as this environment has them (JSON)."""
    from macs_model.environment import environment_report

    typer.echo(json.dumps(environment_report(), indent=2))


def main() -> None:
    app()
