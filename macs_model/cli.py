"""``macs-model``: a thin typer layer over :mod:`macs_model`'s Python API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from macs_bench.cli import console, new_app, run

app = new_app(
    "macs-model",
    "The reference two-stage MACS model: separator (stage 1) and Stable Diffusion adapter (stage 2).",
)
train_app = typer.Typer(help="Train a MACS stage.", no_args_is_help=True)
app.add_typer(train_app, name="train")

CLAP_HELP = ("CLAP weights: a laion-clap checkpoint file (default: the verified registry copy, see 'macs-bench "
             "weights fetch clap-630k-audioset-best'), or 'tiny' for a small random stand-in (smoke tests only).")
TOKENIZER_HELP = ("Folder with RoBERTa's vocab.json and merges.txt (default: the registry copy, "
                  "'macs-bench weights fetch roberta-base-tokenizer').")


@app.command("env")
def env() -> None:
    """Report torch, CUDA, torchsort and ffmpeg as this environment has them (JSON)."""
    from macs_model.environment import environment_report

    console.print_json(json.dumps(environment_report()))


@train_app.command("separator")
def train_separator(
    data: str = typer.Option(..., "--data", help="'fsd50k' or a folder built by 'macs-bench datasets build'."),
    media: Path = typer.Option(..., "--media", help="The MEDIA folder 'macs-bench datasets fetch' filled."),
    out: Path = typer.Option(..., "--out", help="Run folder (config, metrics.jsonl, checkpoints); reruns resume."),
    preset: str = typer.Option("paper", "--preset", help="paper | tiny (separator size and training length)."),
    kind: str = typer.Option("stft-unet", "--kind", help="stft-unet (the paper) | waveform (Table 4 ablation)."),
    no_rank_loss: bool = typer.Option(False, "--no-rank-loss", help="Ablation: drop the ranking loss."),
    no_contrastive: bool = typer.Option(False, "--no-contrastive", help="Ablation: drop the contrastive loss."),
    clap: Optional[str] = typer.Option(None, "--clap", help=CLAP_HELP),
    tokenizer: Optional[Path] = typer.Option(None, "--tokenizer", help=TOKENIZER_HELP),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="Optimiser steps (overrides the preset)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help="Epochs (overrides the preset)."),
    seed: Optional[int] = typer.Option(None, "--seed", min=0, help="Seed (overrides the preset's 0)."),
    checkpoint_every: Optional[int] = typer.Option(None, "--checkpoint-every", min=1,
                                                   help="Optimiser steps between checkpoints (default: preset's)."),
    restart: bool = typer.Option(False, "--restart", help="Start over instead of resuming from OUT/latest."),
    cpu: bool = typer.Option(False, "--cpu", help="Train on the CPU even where a GPU is present."),
) -> None:
    """Train the stage-1 separator (MixIT + CLAP contrastive + ranking); multi-GPU under 'accelerate launch'."""
    from macs_model.stage1 import train_separator as train

    summary = train(data, media, out, preset=preset, kind=kind, contrastive=not no_contrastive,
                    ranking=not no_rank_loss, clap=clap, tokenizer=tokenizer, steps=steps, epochs=epochs,
                    seed=seed, checkpoint_every=checkpoint_every, resume=not restart, cpu=cpu)
    if summary.get("checkpoint"):
        missing = f" ({summary['missing_audio']} manifest samples without audio skipped)" \
            if summary["missing_audio"] else ""
        console.print(f"trained {summary['step']}/{summary['total_steps']} steps on {summary['clips']} clips"
                      f"{missing}; checkpoint: {summary['checkpoint']}")


@app.command("separate")
def separate(
    audio: List[Path] = typer.Argument(..., help="Audio files (any rate; mixed to mono)."),
    checkpoint: Path = typer.Option(..., "--checkpoint", help="A training run folder, a checkpoint-<step> "
                                    "folder, or the authors' separator_FSD50K_full.pt."),
    out: Path = typer.Option(..., "--out", help="Output folder: OUT/<file>/source-<rank>.wav + separation.json."),
    clap: Optional[str] = typer.Option(None, "--clap", help=CLAP_HELP + " A release checkpoint brings its own."),
    tokenizer: Optional[Path] = typer.Option(None, "--tokenizer", help=TOKENIZER_HELP),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:1 ... (default: cuda if present)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo inputs that already have their stems."),
) -> None:
    """Split audio into M stems ordered by significance (CLAP similarity to the input, in separation.json)."""
    from macs_model.stage1 import separate as run_separate

    records = run_separate(audio, checkpoint, out, clap=clap, tokenizer=tokenizer, device=device,
                           overwrite=overwrite)
    console.print(f"separated {len(records)} file(s) into {out}")


def main() -> None:
    run(app)
