"""What both CLIs (macs-bench, macs-model) share: the typer app factory, the one-line error contract, consoles
and help texts. Neutral ground: importing it loads no command module of either CLI."""

from __future__ import annotations

from enum import Enum

import sys
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from typer.exceptions import TyperException

from macs_bench import __version__
from macs_bench.errors import MacsError

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def new_app(name: str, help: str) -> typer.Typer:
    """A typer app with the settings and ``--version`` option every macs CLI shares."""
    app = typer.Typer(name=name, help=help, no_args_is_help=True, rich_markup_mode="rich",
                      pretty_exceptions_enable=False)

    def version(value: bool) -> None:
        if value:
            console.print(f"{name} {__version__}")
            raise typer.Exit()

    @app.callback(help=help)
    def root(
        _: bool = typer.Option(False, "--version", callback=version, is_eager=True, help="Print the version."),
    ) -> None:
        pass

    return app


def run(app: typer.Typer) -> None:
    """Run a CLI: a user error (bad input or bad usage) becomes one line on stderr and exit status 2."""
    try:
        code = app(standalone_mode=False)
    except MacsError as exc:
        _fail(str(exc))
    except TyperException as exc:  # bad usage: unknown option, invalid value, missing argument
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError":
            app(args=[*sys.argv[1:], "--help"])  # a bare group: show its rich help, as standalone typer does
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        _fail(exc.format_message().replace("\n", " ") + hint)
    except typer.Abort:
        _fail("aborted")
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str) -> NoReturn:
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    sys.exit(2)



MANIFEST_HELP = "Folder of a built manifest (datasets build --out)."
MEDIA_HELP = "MEDIA folder of 'datasets fetch' (audio/, frames/, ledger, reports)."
DEVICE_HELP = "auto (cuda when available), cpu, cuda or cuda:N."
OVERWRITE_HELP = "Replace existing output files (default: refuse)."


def parse_folds(text: str | None) -> list[int] | None:
    """``--folds 0,1,2``: a comma-separated list of fold numbers (None when not given)."""
    if text is None:
        return None
    try:
        folds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise MacsError(f"--folds must be comma-separated integers such as 0,1,2,3,4, got {text!r}") from None
    if not folds:
        raise MacsError("--folds is empty")
    return folds


def choice_enum(name: str, values) -> type[Enum]:
    """A ``str`` Enum of the allowed ``values`` for a typer option, built from the library's own list of them so
    the CLI's choices cannot drift from what the API accepts (member names: values with ``-`` as ``_``)."""
    return Enum(name, {value.replace("-", "_"): value for value in values}, type=str)
