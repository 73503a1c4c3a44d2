"""What both CLIs (macs-bench, macs-model) share: the typer app factory, the one-line error contract, consoles
and help texts. Neutral ground: importing it loads no command module of either CLI."""

from __future__ import annotations

import sys
from enum import Enum
from typing import NoReturn

import click
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from typer import rich_utils
from typer.exceptions import TyperException

from macs_bench import __version__
from macs_bench.errors import MacsError

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


NAME_WIDTH = 30  # the option column of --help (longer choice lists show as CHOICE); the help gets the rest


TYPE_LABELS = {"int": "INT", "int range": "INT", "float": "FLOAT", "float range": "FLOAT", "str": "TEXT",
               "path": "PATH", "list[str]": "TEXT", "list[path]": "PATH", "list[int]": "INT"}


def type_label(param, ctx) -> tuple[str, str]:
    """(short label beside the option, note for its help) in click's vocabulary: no label for a flag, PATH,
    INT, FLOAT, TEXT, a|b|c, a number range written into the help."""
    if getattr(param, "is_flag", False) or param.param_type_name == "argument":
        return "", ""
    shown = (param.display_type(ctx) or "").strip("<>")
    note = ""
    if param.metavar:
        label = param.metavar
    elif shown in TYPE_LABELS:
        label = TYPE_LABELS[shown]
    elif "|" in shown:
        label = shown.removeprefix("list[").removesuffix("]")
    else:
        label = shown.upper()
    number_range = param._get_number_range_help_str() if hasattr(param, "_get_number_range_help_str") else None
    if number_range:
        note = number_range
    repeated = shown.startswith("list[") or getattr(param, "multiple", False)
    return label + ("..." if repeated and not label.endswith("...") else ""), note


def _options_panel(*, name, params, ctx, markup_mode, console) -> None:
    """typer's options panel in two columns that read at 80: the option with a short type label, then the help.

    (typer's own spreads long option, short option, negative forms and a `<type>` label over five columns and
    leaves the help about 22.)"""
    table = Table(show_header=False, expand=True, box=None, padding=(0, 1), pad_edge=False)
    table.add_column(width=1)
    table.add_column(max_width=NAME_WIDTH, overflow="fold")
    table.add_column(ratio=1)
    for param in params:
        label, note = type_label(param, ctx)
        if param.param_type_name == "argument":
            names = param.metavar or param.name.upper()
        else:
            names = ", ".join(sorted(param.opts, key=lambda o: not o.startswith("--")))
        if "|" in label and len(names) + 1 + len(label) > NAME_WIDTH:  # too long to stand beside the name
            label, note = "CHOICE", "one of: " + label.replace("|", ", ")
        parts = list(rich_utils._get_parameter_help(param=param, ctx=ctx, markup_mode=markup_mode).renderables)
        if note:
            parts.insert(1 if parts else 0, Text(f"[{note}]", style=rich_utils.STYLE_OPTION_DEFAULT))
        # help, range, default and required run on as one paragraph instead of a line each
        help_text = Text(" ").join(parts) if all(isinstance(p, Text) for p in parts) else rich_utils.Columns(parts)
        required = Text(rich_utils.REQUIRED_SHORT_STRING, style=rich_utils.STYLE_REQUIRED_SHORT) \
            if param.required else ""
        table.add_row(required, Text.assemble((names, "bold cyan"), (f" {label}" if label else "", "yellow")),
                      help_text)
    if params:
        console.print(rich_utils.Panel(table, border_style=rich_utils.STYLE_OPTIONS_PANEL_BORDER, title=name,
                                       title_align=rich_utils.ALIGN_OPTIONS_PANEL))


TYPER_OPTIONS_PANEL = rich_utils._print_options_panel
rich_utils._print_options_panel = _options_panel  # both CLIs build their apps through this module


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
