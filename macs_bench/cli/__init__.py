"""``macs-bench``: a thin typer layer over :mod:`macs_bench`'s Python API, one module per command group."""

from macs_bench.cli import compare as _compare, run as _run_cmd, score as _score
from macs_bench.clikit import console, err_console, new_app, run
from macs_bench.cli.datasets import DatasetName, datasets_app
from macs_bench.cli.leaderboard import leaderboard_app
from macs_bench.cli.weights import weights_app

app = new_app("macs-bench", "Build the MACS benchmarks and score audio-to-image models.")
app.add_typer(datasets_app, name="datasets")
app.add_typer(weights_app, name="weights")
_score.register(app)
_compare.register(app)
_run_cmd.register(app)
app.add_typer(leaderboard_app, name="leaderboard")


def main() -> None:
    run(app)


__all__ = ["app", "main", "run", "new_app", "console", "err_console", "DatasetName"]
