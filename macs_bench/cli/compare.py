"""``macs-bench compare A.json B.json [C.json ...]``: paired differences of models on the same videos."""

from pathlib import Path
from typing import List, Optional

import typer

from macs_bench.clikit import console
from macs_bench.io import atomic_write_text, dumps_json


def register(app: typer.Typer) -> None:
    @app.command("compare")
    def compare_command(
        results: List[Path] = typer.Argument(..., metavar="RESULT.json...", show_default=False,
                                             help="Score results, one per model (and fold)."),
        metrics: Optional[str] = typer.Option(None, "--metrics", help="Comma-separated metric names (default: "
                                              "every metric all results can recompute)."),
        rounds: int = typer.Option(1000, "--rounds", min=4, help="Resampling and permutation rounds."),
        seed: int = typer.Option(0, "--seed", help="Seed of the resampling and the permutations."),
        intersect: bool = typer.Option(False, "--intersect", help="Compare on the common samples when the "
                                       "results were scored on different ones (else refused)."),
        level: float = typer.Option(0.95, "--level", help="Interval level."),
        out: Optional[Path] = typer.Option(None, "--out", help="Also write the comparison as JSON."),
    ) -> None:
        """Per metric and pair of models: the difference, its interval over the same resampled videos, a paired
        permutation p-value and Holm's correction."""
        from macs_bench.comparison import compare

        names = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
        comparison = compare(results, metrics=names, rounds=rounds, seed=seed, intersect=intersect, level=level)
        console.print(comparison.table(), highlight=False, markup=False)
        if out is not None:
            atomic_write_text(out, dumps_json(comparison.to_dict()))
            console.print(f"wrote {out}", highlight=False, markup=False)
