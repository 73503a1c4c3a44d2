"""``macs-model``: a thin typer layer over :mod:`macs_model`'s Python API."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from macs_bench.clikit import DEVICE_HELP, MEDIA_HELP, choice_enum, console, new_app, parse_folds, run
from macs_model.generation.config import CHOICES, GeneratorConfig
from macs_model.reproduction import RELEASE_NAMES
from macs_model.separation.config import KINDS

app = new_app(
    "macs-model",
    "The reference two-stage MACS model: separator (stage 1) and Stable Diffusion adapter (stage 2).",
)
train_app = typer.Typer(help="Train a MACS stage.", no_args_is_help=True)
app.add_typer(train_app, name="train")

CLAP_HELP = ("CLAP weights: a laion-clap checkpoint file (default: the registry's verified "
             "clap-630k-audioset-best), or 'tiny', a small random stand-in (smoke tests only).")
TOKENIZER_HELP = ("Folder with RoBERTa's vocab.json and merges.txt (default: the registry's "
                  "roberta-base-tokenizer).")
RESTART_HELP = "Start the run over instead of resuming from OUT/latest."


SeparatorPreset = choice_enum("SeparatorPreset", ("paper", "tiny"))  # the sizes; --kind picks the network
SeparatorKind = choice_enum("SeparatorKind", KINDS)
GeneratorPreset = choice_enum("GeneratorPreset", GeneratorConfig.presets())
TokenOrder = choice_enum("TokenOrder", CHOICES["token_order"])
ReleaseDataset = choice_enum("ReleaseDataset", RELEASE_NAMES)


def _value(choice: Enum | None) -> str | None:
    return None if choice is None else choice.value


def parse_rows(text: str) -> list[str]:
    """``--rows 'no-RL,slots 4,5,6'``: row names split at commas, a bare number joining the name before it."""
    names: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if part.isdigit() and names:
            names[-1] += "," + part
        elif part:
            names.append(part)
    return names


def parse_slots(text: str) -> list[int]:
    """``--slots 4,5,6``: slot numbers counted from 1 (their range is checked against the adapter)."""
    from macs_bench.errors import MacsError

    try:
        slots = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise MacsError(f"--slots must be comma-separated slot numbers such as 4,5,6, got {text!r}") from None
    if not slots:
        raise MacsError("--slots is empty")
    return slots


@app.command("env")
def env() -> None:
    """Report torch, CUDA, torchsort and ffmpeg as this environment has them (JSON)."""
    from macs_model.environment import environment_report

    console.print_json(json.dumps(environment_report()))


@train_app.command("separator")
def train_separator(
    manifest: str = typer.Option(..., "--manifest", help="'fsd50k' or a folder built by 'macs-bench datasets "
                                 "build'."),
    media: Path = typer.Option(..., "--media", help=MEDIA_HELP),
    out: Path = typer.Option(..., "--out", help="Run folder (config, metrics.jsonl, checkpoints); reruns resume."),
    preset: SeparatorPreset = typer.Option("paper", "--preset", help="Separator size and training length (tiny: "
                                           "smoke tests)."),
    kind: SeparatorKind = typer.Option("stft-unet", "--kind", help="stft-unet (the paper) or waveform (Table 4 "
                                       "ablation)."),
    no_rank_loss: bool = typer.Option(False, "--no-rank-loss", help="Ablation: drop the ranking loss."),
    no_contrastive: bool = typer.Option(False, "--no-contrastive", help="Ablation: drop the contrastive loss."),
    clap: Optional[str] = typer.Option(None, "--clap", help=CLAP_HELP),
    tokenizer: Optional[Path] = typer.Option(None, "--tokenizer", help=TOKENIZER_HELP),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="Optimiser steps (overrides the preset)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help="Epochs (overrides the preset)."),
    seed: Optional[int] = typer.Option(None, "--seed", min=0, help="Seed (overrides the preset's 0)."),
    checkpoint_every: Optional[int] = typer.Option(None, "--checkpoint-every", min=1,
                                                   help="Optimiser steps between checkpoints (default: preset's)."),
    restart: bool = typer.Option(False, "--restart", help=RESTART_HELP),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
) -> None:
    """Train the stage-1 separator (MixIT + CLAP contrastive + ranking); multi-GPU under 'accelerate launch'."""
    from macs_model.separation.api import train_separator as train

    summary = train(manifest, media, out, preset=preset.value, kind=kind.value, contrastive=not no_contrastive,
                    ranking=not no_rank_loss, clap=clap, tokenizer=tokenizer, steps=steps, epochs=epochs,
                    seed=seed, checkpoint_every=checkpoint_every, resume=not restart, device=device)
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
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo inputs that already have their stems."),
) -> None:
    """Split audio into M stems ordered by significance (CLAP similarity to the input, in separation.json)."""
    from macs_model.separation.api import separate as run_separate

    records = run_separate(audio, checkpoint, out, clap=clap, tokenizer=tokenizer, device=device,
                           overwrite=overwrite)
    console.print(f"separated {len(records)} file(s) into {out}")


@train_app.command("generator")
def train_generator(
    manifest: Path = typer.Option(..., "--manifest", help="A folder built by 'macs-bench datasets build'."),
    media: Path = typer.Option(..., "--media", help=MEDIA_HELP),
    out: Path = typer.Option(..., "--out", help="Run folder (adapter/, checkpoints, embeddings); reruns resume."),
    fold: Optional[int] = typer.Option(None, "--fold", help="Hold out fold K (train on the others); "
                                       "without it the manifest's train split trains."),
    separator: Optional[Path] = typer.Option(None, "--separator", help="A stage-1 run folder or the authors' "
                                             "separator_FSD50K_full.pt."),
    no_separation: bool = typer.Option(False, "--no-separation", help="Baseline: the mixture's CLAP embedding "
                                       "as one token (no separator)."),
    base: Optional[str] = typer.Option(None, "--base", help="Stable Diffusion v1.x folder or hub id (default: "
                                       "'macs-bench weights fetch stable-diffusion-v1-4')."),
    preset: GeneratorPreset = typer.Option("paper", "--preset", help="tiny: a small random SD, for smoke tests; "
                                           "world: the synthetic world's SD base (--base defaults to it)."),
    no_decoupled: bool = typer.Option(False, "--no-decoupled", help="Ablation: audio tokens appended to the text "
                                      "tokens through the frozen text k/v."),
    prompt: str = typer.Option("", "--prompt", help="Text prompt beside the audio (default: empty)."),
    clap: Optional[str] = typer.Option(None, "--clap", help=CLAP_HELP),
    tokenizer: Optional[Path] = typer.Option(None, "--tokenizer", help=TOKENIZER_HELP),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="Optimiser steps (overrides the preset)."),
    token_order: Optional[TokenOrder] = typer.Option(None, "--token-order", help="slot (the release's, default) "
                                                     "or similarity (re-sorted by CLAP similarity to the mixture)."),
    restart: bool = typer.Option(False, "--restart", help=RESTART_HELP),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    no_latent_cache: bool = typer.Option(False, "--no-latent-cache", help="Encode every frame at every step "
                                         "instead of caching its VAE latents in OUT/latents."),
) -> None:
    """Train the stage-2 audio adapter on a frozen Stable Diffusion (decoupled cross-attention)."""
    from macs_model.generation.api import train_generator as train

    if base is None:
        from macs_model.registry import default_base

        default = default_base(preset.value)  # a plug-in's preset (the world's) names its own base
        base = str(default) if default is not None else None
    summary = train(manifest, media, out, fold=fold, separator=separator, base=base, preset=preset.value,
                    no_separation=no_separation, decoupled=not no_decoupled, prompt=prompt, clap=clap,
                    tokenizer=tokenizer, steps=steps, token_order=_value(token_order), resume=not restart,
                    cache_latents=not no_latent_cache, device=device)
    console.print(f"trained {summary['step']}/{summary['total_steps']} steps on {summary['train_samples']} samples; "
                  f"adapter: {summary['adapter']}")


@app.command("generate")
def generate(
    files: Optional[List[Path]] = typer.Argument(None, metavar="AUDIO...", help="With --audio: the audio files "
                                                 "to draw from."),
    audio: bool = typer.Option(False, "--audio", help="Draw one image per audio file given as an argument "
                               "(OUT/<file stem>.png), with no manifest."),
    manifest: Optional[Path] = typer.Option(None, "--manifest", help="The benchmark manifest folder "
                                            "(default: the adapter run's)."),
    media: Optional[Path] = typer.Option(None, "--media", help="Its MEDIA folder (default: the run's)."),
    adapter: Path = typer.Option(..., "--adapter", help="A 'train generator' run folder."),
    out: Path = typer.Option(..., "--out", help="Prediction folder: <sample_id>.png, ready for 'macs-bench score'."),
    fold: Optional[int] = typer.Option(None, "--fold", help="Generate fold K (default: the fold the adapter "
                                       "held out, or the test split); a fold it trained on is refused."),
    base: Optional[str] = typer.Option(None, "--base", help="Override the Stable Diffusion the adapter names."),
    token_order: Optional[TokenOrder] = typer.Option(None, "--token-order", help="Default: the adapter's; "
                                                     "recorded."),
    top_k: Optional[int] = typer.Option(None, "--top-k", min=1, help="Use only the first K source slots."),
    slots: Optional[str] = typer.Option(None, "--slots", help="Use only these source slots, counted from 1 "
                                        "(Fig. 4: 4,5,6 is the last three of six)."),
    interpolate: Optional[List[Path]] = typer.Option(None, "--interpolate", help="Two audio files A B: one image "
                                                     "per --alpha of (1 - alpha) A + alpha B."),
    alpha: Optional[List[float]] = typer.Option(None, "--alpha", help="Interpolation weights (repeatable)."),
    batch_size: int = typer.Option(4, "--batch-size", min=1, help="Images per pipeline call."),
    seed: int = typer.Option(0, "--seed", min=0, help="Mixed with each sample id into its noise seed."),
    clap: Optional[str] = typer.Option(None, "--clap", help=CLAP_HELP),
    tokenizer: Optional[Path] = typer.Option(None, "--tokenizer", help=TOKENIZER_HELP),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Regenerate images that already exist."),
    allow_partial: bool = typer.Option(False, "--allow-partial", help="Use an unfinished run's latest checkpoint."),
) -> None:
    """Generate one image per test sample, or per audio file (--audio); existing images are kept."""
    from macs_bench.errors import MacsError
    from macs_model.generation.api import generate as run_generate
    from macs_model.generation.api import generate_audio

    chosen = parse_slots(slots) if slots is not None else None
    if files and not audio:
        raise MacsError("audio files given as arguments need --audio (generate --audio A.wav B.wav ...)")
    if audio:
        if not files:
            raise MacsError("--audio needs audio files (generate --audio A.wav B.wav --adapter RUN --out DIR)")
        if manifest or media or fold is not None or interpolate or alpha:
            raise MacsError("--audio draws from the files given: drop --manifest, --media, --fold and "
                            "--interpolate")
        record = generate_audio(files, adapter, out, top_k=top_k, slots=chosen, batch_size=batch_size, seed=seed, clap=clap,
                                tokenizer=tokenizer, base=base, device=device, overwrite=overwrite,
                                allow_partial=allow_partial, token_order=_value(token_order))
        console.print(f"wrote {record['written_now']} image(s) into {out}")
        return
    pair = None
    if alpha and not interpolate:
        raise MacsError("--alpha only applies with --interpolate A --interpolate B")
    if interpolate:
        if len(interpolate) != 2:
            raise MacsError("--interpolate takes exactly two audio files (repeat the option: --interpolate A "
                            "--interpolate B)")
        pair = (interpolate[0], interpolate[1])
    kwargs = {"alphas": tuple(alpha)} if alpha else {}
    record = run_generate(manifest, media, adapter, out, fold=fold, base=base, top_k=top_k, slots=chosen,
                          batch_size=batch_size,
                          seed=seed, clap=clap, tokenizer=tokenizer, overwrite=overwrite, interpolate=pair,
                          device=device, allow_partial=allow_partial, token_order=_value(token_order), **kwargs)
    console.print(f"wrote {record.get('written_now', record.get('written'))} image(s) into {out}")


@app.command("import-release")
def import_release(
    mlp: Path = typer.Option(..., "--mlp", help="The authors' <dataset>_mlp.pt."),
    unet: Path = typer.Option(..., "--unet", help="The authors' <dataset>_unet.pt (only its audio k/v are kept)."),
    separator: Path = typer.Option(..., "--separator", help="The authors' separator_FSD50K_full.pt."),
    out: Path = typer.Option(..., "--out", help="Run folder for 'macs-model generate --adapter'."),
    base: Optional[str] = typer.Option(None, "--base", help="Stable Diffusion v1.4 folder or hub id "
                                       "(default: the registry copy)."),
) -> None:
    """Import the authors' stage-2 checkpoint as a generator run folder (checked key by key)."""
    from macs_model.generation.release_import import import_release_generator

    folder = import_release_generator(mlp, unet, separator, out, base=base)
    console.print(f"imported into {folder}; generate with: macs-model generate --adapter {folder} ...")


@app.command("reproduce")
def reproduce(
    release_dir: Path = typer.Option(..., "--release-dir", help="Folder with the authors' separator_FSD50K_full.pt, "
                                     "<Name>_mlp.pt and <Name>_unet.pt (Hugging Face alxzzz/MACS)."),
    dataset: ReleaseDataset = typer.Option(..., "--dataset", help="The benchmark the release files are for."),
    manifest: Path = typer.Option(..., "--manifest", help="Its manifest folder ('macs-bench datasets build')."),
    media: Path = typer.Option(..., "--media", help=MEDIA_HELP),
    out: Path = typer.Option(..., "--out", help="Run folder: import/, images/, results/, leaderboard/."),
    folds: Optional[str] = typer.Option(None, "--folds", help="Held-out folds to generate and score, e.g. 0 or "
                                        "0,1,2,3,4 (default: the manifest's test split)."),
    preset: SeparatorPreset = typer.Option("paper", "--preset", help="tiny: release-shaped miniatures (tests)."),
    clap: Optional[str] = typer.Option(None, "--clap", help="CLAP: the release separator's own copy (default), "
                                       "a laion-clap checkpoint, or 'tiny' (tests)."),
    base: Optional[str] = typer.Option(None, "--base", help="A local SD v1.4 folder instead of the registry's."),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    batch_size: int = typer.Option(4, "--batch-size", min=1, help="Images per pipeline call."),
    allow_missing: bool = typer.Option(False, "--allow-missing", help="Score the samples that have images."),
) -> None:
    """Import the authors' files, generate the held-out fold(s), score, and write the leaderboard row."""
    from macs_model.reproduction import reproduce as run_reproduce

    chosen = parse_folds(folds) or [None]
    summary = run_reproduce(release_dir, dataset.value, manifest, media, out, folds=chosen, preset=preset.value,
                            clap=clap, base=base, device=device, batch_size=batch_size, allow_missing=allow_missing)
    for step in summary["steps"]:
        console.print(f"fold {step['fold']}: {step['samples']} samples, {step['generated_now']} generated now, "
                      f"{'scored' if step['scored_now'] else 'score kept'}: {step['result']}")
    console.print(f"leaderboard: {summary['leaderboard'].get('md', out / 'leaderboard')}")


@app.command("demo")
def demo(
    out: Optional[Path] = typer.Option(None, "--out", help="Where every stage writes; reruns resume (default: "
                                       "runs/demo, or runs/demo-quick with --quick)."),
    quick: bool = typer.Option(False, "--quick", help="The shortened form the test suite runs."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Processes for the folds (default: one "
                                          "per fold up to the CPU count)."),
) -> None:
    """Offline end-to-end demo in the synthetic world, with its shipped models and control rows."""
    from macs_model.demo import NOTICE, DemoPlan, run_demo

    out = out or Path("runs/demo-quick" if quick else "runs/demo")
    summary = run_demo(out, plan=DemoPlan.quick() if quick else DemoPlan(), processes=workers, log=console.print)
    console.print(f"[bold]{NOTICE}[/bold]")
    console.print(f"done in {summary['total_seconds']:.0f} s: {summary['leaderboard']}, {summary['radar']}, "
                  f"{summary['grid']}")
    console.print(Path(summary["leaderboard"]).read_text(encoding="utf-8"), markup=False, highlight=False)
    console.print("MACS-world minus no-separation-world, paired over the same clips (macs_bench.compare):")
    console.print(Path(summary["separation_table"]).read_text(encoding="utf-8"), markup=False, highlight=False)


@app.command("ablations")
def ablations(
    world: bool = typer.Option(False, "--world", help="The synthetic world (its CLAP, SD base and towers; CPU)."),
    manifest: Optional[Path] = typer.Option(None, "--manifest", help="A real benchmark's manifest folder."),
    media: Optional[Path] = typer.Option(None, "--media", help=MEDIA_HELP),
    pretrain: str = typer.Option("fsd50k", "--pretrain", help="Stage 1's pre-training manifest (the paper: "
                                 "fsd50k) for the separators the ablations retrain."),
    pretrain_media: Optional[Path] = typer.Option(None, "--pretrain-media", help="Its MEDIA folder."),
    clap: Optional[str] = typer.Option(None, "--clap", help=CLAP_HELP),
    base: Optional[str] = typer.Option(None, "--base", help="Stable Diffusion v1.x folder or hub id."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run folder; reruns reuse what is done (default: "
                                       "runs/ablations, runs/ablations-quick with --quick)."),
    folds: Optional[str] = typer.Option(None, "--folds", help="Folds to run, e.g. 0 or 0,1 (default: the plan's)."),
    rows: Optional[str] = typer.Option(None, "--rows", help="Comma-separated subset of the rows (MACS always "
                                       "runs), e.g. 'no-RL,no-CL'."),
    quick: bool = typer.Option(False, "--quick", help="One fold, short training, 200 resampling rounds."),
    no_baselines: bool = typer.Option(False, "--no-baselines", help="Skip the world baselines."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Processes sharing the jobs (default: "
                                          "on the world one per fold up to the CPU count; else 1)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the jobs and exit."),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
) -> None:
    """The paper's ablations (no-RL, no-CL, no-DC, waveform, no separation with 1 or M slots, Fig. 4's slots)
    per fold, one table with paired intervals against MACS, controls beside it, a radar and a grid."""
    from dataclasses import replace

    from macs_bench.errors import MacsError
    from macs_model.ablation_plan import AblationPlan, Benchmark
    from macs_model.ablations import check_real, run_ablations

    if world and (manifest or media or pretrain_media):
        raise MacsError("--world brings its own benchmark: drop --manifest, --media and --pretrain-media")
    changes: dict = {"world": world}
    if folds is not None:
        changes["folds"] = tuple(parse_folds(folds))
    if rows is not None:
        changes["rows"] = tuple(parse_rows(rows))
    if no_baselines or not world:
        changes["baselines"] = False
    if workers is not None:
        changes["workers"] = workers
    if not world:
        changes.update(separator_steps=None, generator_steps=None)  # the paper presets' lengths
    plan = AblationPlan.quick(**changes) if quick else replace(AblationPlan(), **changes)
    if dry_run:
        for line in plan.jobs():
            console.print(line, markup=False, highlight=False)
        return
    benchmark = None
    if not world:
        check_real(manifest, media, pretrain_media, device)
        benchmark = Benchmark(manifest, media, pretrain, pretrain_media, clap=clap, base=base, device=device)
    out = out or Path("runs/ablations-quick" if quick else "runs/ablations")
    result = run_ablations(out, plan=plan, benchmark=benchmark, log=console.print)
    console.print(f"done in {result.seconds / 60:.1f} min: {result.table}, {result.radar}, {result.grid}")


def main() -> None:
    run(app)
