"""``macs-bench run``: generate a fold's images with any model of the protocol, score them, print the table."""

from pathlib import Path
from typing import List, Optional

import typer

from macs_bench.clikit import DEVICE_HELP, MANIFEST_HELP, MEDIA_HELP, console
from macs_bench.cli.score import PRESET_HELP, Preset, print_result


def run_command(
    model: str = typer.Argument(..., metavar="MODEL", help="A registered model name (macs-bench models) or "
                                "pkg.module:Class.", show_default=False),
    manifest: Path = typer.Option(..., "--manifest", help=MANIFEST_HELP),
    media: Path = typer.Option(..., "--media", help=MEDIA_HELP),
    out: Path = typer.Option(..., "--out", help="Run folder: images/, run.json, result.json."),
    fold: Optional[int] = typer.Option(None, "--fold", help="Evaluate this fold's samples."),
    split: Optional[str] = typer.Option(None, "--split", help="Without --fold: this split's samples."),
    option: Optional[List[str]] = typer.Option(None, "--option", help="key=value passed to the model (repeat)."),
    model_name: Optional[str] = typer.Option(None, "--model-name", help="Row name (default: the model's)."),
    fit: bool = typer.Option(False, "--fit", help="Train the model on the other folds first (models with fit)."),
    seed: int = typer.Option(0, "--seed", help="Run seed; each sample's seed is a hash of it and its id."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Samples per generate() call."),
    preset: Preset = typer.Option(Preset.paper, "--preset", help=PRESET_HELP),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Feature cache (default "
                                             "$MACS_HOME/features)."),
    allow_missing: bool = typer.Option(False, "--allow-missing", help="Skip samples without audio."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the images of another model or seed."),
) -> None:
    """Generate the fold's images with MODEL (batched, seeded per sample, resumable), refuse a fold the model
    trained on, score them and write OUT/result.json. Under 'accelerate launch' each process draws a slice."""
    from macs_bench.models.registry import load_model, parse_options
    from macs_bench.models.runner import run
    from macs_bench.scoring import ScoreConfig

    config = ScoreConfig(preset=preset.value, device=device, cache_dir=str(cache_dir) if cache_dir else None)
    done = run(load_model(model, **parse_options(option)), manifest, media, out, fold=fold, split=split,
               seed=seed, batch_size=batch_size, config=config, model_name=model_name, fit=fit,
               overwrite=overwrite, allow_missing=allow_missing)
    if done.score is None:  # a non-main process of 'accelerate launch'
        return
    row = done.score.provenance["row"]
    print_result(done.score, done.score.model, f", fold {fold}" if fold is not None else "")
    if row["may_have_seen_test"]:
        console.print(f"[yellow]note:[/yellow] {row['note'] or 'the weights may have seen these test clips'}; "
                      "this row is kept out of best marks")
    console.print(f"generated {done.generated_now} of {done.samples}; wrote {done.result_file}")


def models_command() -> None:
    """The registered model names (entry points of group macs_bench.models) and what they load."""
    from macs_bench.models.registry import registered

    for name, target in sorted(registered().items()):
        console.print(f"{name:28} {target}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("run")(run_command)
    app.command("models")(models_command)
