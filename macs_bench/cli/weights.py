"""``macs-bench weights``: list, fetch and verify the one verified weights cache."""

from __future__ import annotations

import typer
from rich.table import Table

from macs_bench.clikit import console
from macs_bench.errors import MacsError

weights_app = typer.Typer(help="The model weights every metric and model uses, in one verified cache "
                          "($MACS_HOME, default ~/.cache/macs).", no_args_is_help=True)


@weights_app.command("list")
def weights_list(baselines: bool = typer.Option(False, "--baselines", help="List the runnable baselines "
                                                "(macs-bench run), the weights each loads and their licences.")
                 ) -> None:
    """The registry: each entry, whether it is present, how it is pinned, its size and who uses it."""
    from macs_bench.weights import cache_dir, list_weights

    if baselines:
        _baselines()
        return
    console.print(f"cache: {cache_dir()}", highlight=False, soft_wrap=True)
    table = Table("name", "present", "pin", "size", "used by", box=None, pad_edge=False)
    table.columns[0].no_wrap = True
    for row in list_weights():
        size = f"{row.size / 1e6:,.0f} MB" if row.size else "?"
        table.add_row(row.name, "yes" if row.present else "no", row.pin, size, row.used_by.split(" (")[0])
    console.print(table)


@weights_app.command("fetch")
def weights_fetch(
    names: list[str] = typer.Argument(None, help="Entries to fetch (see 'weights list').", show_default=False),
    all_: bool = typer.Option(False, "--all", help="Fetch every entry (several GB)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Download again even when a verified copy is "
                                   "present."),
) -> None:
    """Download, verify and install weights; a partial download is never used."""
    from macs_bench.weights import WEIGHTS, fetch

    if not names and not all_:
        raise MacsError("name the entries to fetch (see 'macs-bench weights list') or pass --all")
    if names and all_:
        raise MacsError("give entry names or --all, not both")
    for name in names or list(WEIGHTS):
        console.print(f"{name}: {fetch(name, force=overwrite)}")


@weights_app.command("verify")
def weights_verify(names: list[str] = typer.Argument(None, help="Entries to check (default: all).",
                                                     show_default=False)) -> None:
    """Re-check every present file against its pinned (or locally recorded) hash; exit 1 if any is corrupt."""
    from macs_bench.weights import verify

    results = [r for name in (names or [None]) for r in verify(name)]
    table = Table("name", "status", "detail", box=None, pad_edge=False)
    table.columns[0].no_wrap = True
    for r in results:
        table.add_row(r.name, r.status, r.detail)
    console.print(table)
    if any(r.status == "corrupt" for r in results):
        raise typer.Exit(1)


def _baselines() -> None:
    """Each baseline of ``macs_model.baselines`` with its weights and licence (several are non-commercial)."""
    try:
        from macs_model.baselines import LICENCES
    except ImportError:
        raise MacsError("the baselines live in macs_model: install the model extra (pip install 'macs[model]')"
                        ) from None
    for name, (loads, licence) in LICENCES.items():
        console.print(f"{name}\n  weights: {loads}\n  licence: {licence}", highlight=False)
