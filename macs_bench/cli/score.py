"""``macs-bench score`` and ``macs-bench score-folders``: score generated images, print the table."""

from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from macs_bench.clikit import DEVICE_HELP, MANIFEST_HELP, OVERWRITE_HELP, console, err_console
from macs_bench.errors import MacsError


class Preset(str, Enum):
    paper = "paper"
    random = "random"
    tiny = "tiny"
    world = "world"


PRESET_HELP = ("Encoder weights: paper (published; comparable with the paper), random / tiny (random "
               "weights: smoke tests only), or world (the demo world's towers).")
METRICS_HELP = ("paper (the seven), all, or extras to add, comma-separated: coverage, cmmd, fd_dinov2, "
                "prdc_inception, prdc_dinov2.")


def score_options(
    out: Path = typer.Option(..., "--out", help="Result JSON; per-sample scores go to <out>.per_sample.csv."),
    model_name: str = typer.Option(..., "--model-name", help="Name of the scored model, for the leaderboard."),
    allow_missing: bool = typer.Option(False, "--allow-missing", help="Score the intersection when files are "
                                       "missing or extra."),
    preset: Preset = typer.Option(Preset.paper, "--preset", help=PRESET_HELP),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Files per encoder batch."),
    num_workers: Optional[int] = typer.Option(None, "--num-workers", min=0, help="Decoding: DataLoader worker "
                                              "processes (default: a thread pool, a thread per core up to 8)."),
    kid_seed: int = typer.Option(0, "--kid-seed", help="Seed of KID's subset sampling."),
    metrics: str = typer.Option("paper", "--metrics", help=METRICS_HELP),
    bootstrap: int = typer.Option(0, "--bootstrap", min=0, help="Resampling rounds for 95% intervals of "
                                  "every metric, by video (0: none; else at least 4)."),
    bootstrap_seed: int = typer.Option(0, "--bootstrap-seed", help="Seed of the bootstrap resampling."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Feature cache (default "
                                             "$MACS_HOME/features)."),
    inception_weights: Optional[Path] = typer.Option(None, "--inception-weights", help="Local "
                                                     "inception-2015-12-05.pt instead of the cache."),
    clip_weights: Optional[Path] = typer.Option(None, "--clip-weights", help="Local OpenAI ViT-B-32.pt."),
    wav2clip_weights: Optional[Path] = typer.Option(None, "--wav2clip-weights", help="Local Wav2CLIP.pt."),
    clip_l336_weights: Optional[Path] = typer.Option(None, "--clip-l336-weights", help="Local OpenAI "
                                                     "ViT-L-14-336px.pt (CMMD)."),
    dinov2_weights: Optional[Path] = typer.Option(None, "--dinov2-weights", help="Local DINOv2 ViT-L/14 folder "
                                                  "(config.json, model.safetensors)."),
    coverage_detector: Optional[str] = typer.Option(None, "--coverage-detector", help="An independent "
                                                    "open_clip model for coverage, as ARCH/PRETRAINED (open_clip's "
                                                    "names); default: the CLIP of AIS/IIS."),
    overwrite: bool = typer.Option(False, "--overwrite", help=OVERWRITE_HELP),
) -> dict:
    """The options score and score-folders share (typer reads this signature; see :func:`register`)."""
    return dict(locals())


def _config(o: dict):
    from macs_bench.scoring import ScoreConfig

    if o["preset"] is Preset.world:
        import macs_bench.world.scoring  # noqa: F401  the world registers its encoder preset when imported
    weights = {name: str(o[f"{name}_weights"]) for name in ("inception", "clip", "wav2clip", "clip_l336", "dinov2")
               if o[f"{name}_weights"]}
    return ScoreConfig(preset=o["preset"].value, weights=weights, batch_size=o["batch_size"],
                       num_workers=o["num_workers"], device=o["device"], kid_seed=o["kid_seed"],
                       allow_missing=o["allow_missing"], cache_dir=str(o["cache_dir"]) if o["cache_dir"] else None,
                       metrics=tuple(m.strip() for m in o["metrics"].split(",")), bootstrap=o["bootstrap"],
                       bootstrap_seed=o["bootstrap_seed"], coverage_detector=o["coverage_detector"])


def _run(o: dict, call, title: str, suffix: str = "") -> None:
    """Refuse an existing result unless --overwrite, run ``call`` with a progress bar, print the table."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from macs_bench.results import features_path, per_sample_path

    from macs_bench.metric_sets import parse_metrics

    parse_metrics(o["metrics"])  # a bad option is named before an existing file
    out = o["out"]
    if not o["overwrite"]:
        existing = [p for p in (out, per_sample_path(out), features_path(out)) if p.exists()]
        if existing:
            raise MacsError(f"{existing[0]}: exists; pass --overwrite to replace it")
    bar = Progress(TextColumn("{task.description:>15}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=err_console)

    def progress(key: str, total: int):
        task = bar.add_task(key, total=total)
        return lambda n: bar.update(task, advance=n)

    with bar:
        result = call(_config(o), progress)
    if result is None:  # a non-main process of 'accelerate launch'
        return
    print_result(result, title, suffix)
    console.print(f"wrote {out}, {per_sample_path(out)} and {features_path(out)}")


def print_result(result, title: str, suffix: str = "") -> None:
    table = Table("metric", "value", "better", title=f"{title}: {result['n']} samples{suffix}")
    intervals = result.get("intervals", {}).get("metrics", {})
    if intervals:
        table.add_column("95% interval")
    for key, value in result["metrics"].items():
        row = [key, "undefined" if value is None else f"{value:.6g}", result["directions"].get(key, "")]
        if intervals:
            ci = intervals.get(key, {})
            row.append(f"[{ci['low']:.4g}, {ci['high']:.4g}]" if ci.get("low") is not None else "")
        table.add_row(*row)
    console.print(table)
    for warning in result["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {warning}")
    if not result["comparable_with_paper"]:
        console.print("[yellow]note:[/yellow] these encoders do not all run the published weights: the numbers "
                      "are not comparable with the paper")


def register(app: typer.Typer) -> None:
    """Add ``score`` and ``score-folders`` to the macs-bench app."""
    import inspect

    shared = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
              for p in inspect.signature(score_options).parameters.values()]

    def score_command(manifest: Path, pred: Path, media: Path, fold: Optional[int], split: Optional[str],
                      **o) -> None:
        """Score generated images with FID, CLIP-FID, KID, AIS/AIS-z and IIS/IIS-z (one encoder pass per file),
        and opt-in extras (--metrics)."""
        from macs_bench.scoring import score

        _run(o, lambda config, progress: score(manifest, pred, media, model_name=o["model_name"], fold=fold,
                                               split=split, out=o["out"], config=config, progress=progress),
             o["model_name"], f", fold {fold}" if fold is not None else "")

    own = [
        _param("manifest", Path, typer.Option(..., "--manifest", help=MANIFEST_HELP)),
        _param("pred", Path, typer.Option(..., "--pred", help="Folder with one generated image per sample id "
                                          "(png, jpg, webp, bmp or tif).")),
        _param("media", Path, typer.Option(..., "--media", help="MEDIA folder of 'datasets fetch' (frames/, "
                                           "audio/).")),
        _param("fold", Optional[int], typer.Option(None, "--fold", help="Score only this fold's samples.")),
        _param("split", Optional[str], typer.Option(None, "--split", help="Score only this split's samples "
                                                    "(e.g. test).")),
    ]
    score_command.__signature__ = inspect.Signature(own + shared)
    app.command("score")(score_command)

    def score_folders_command(pred: Path, ref: Path, audio: Optional[Path], unpaired: bool,
                              save_ref_stats: Optional[Path], **o) -> None:
        """Score the images of PRED against those of REF, paired by file name, without a manifest (AIS needs
        --audio). Unpaired: the distribution metrics of two sets of any sizes (REF: a folder or saved
        reference statistics)."""
        from macs_bench.scoring import score_folders
        from macs_bench.scoring.unpaired import score_unpaired

        if unpaired:
            if audio is not None:
                raise MacsError("--audio: unpaired mode has no AIS (it compares paired samples); drop --audio")
            _run(o, lambda config, progress: score_unpaired(pred, ref, model_name=o["model_name"], out=o["out"],
                                                            config=config, progress=progress,
                                                            save_ref_stats=save_ref_stats),
                 o["model_name"], " (unpaired)")
            return
        if save_ref_stats is not None:
            raise MacsError("--save-ref-stats: reference statistics serve the unpaired mode; add --unpaired")
        _run(o, lambda config, progress: score_folders(pred, ref, audio, model_name=o["model_name"], out=o["out"],
                                                       config=config, progress=progress), o["model_name"])

    own = [
        _param("pred", Path, typer.Argument(..., metavar="PRED", help="Folder of generated images (png, jpg, webp, "
                                            "bmp, tif).", show_default=False)),
        _param("ref", Path, typer.Argument(..., metavar="REF", help="Folder of reference images with the same "
                                           "file stems (unpaired: any images, or a reference statistics file).",
                                           show_default=False)),
        _param("audio", Optional[Path], typer.Option(None, "--audio", help="Folder of the audio clips (wav, "
                                                     "flac, ogg) with the same stems; needed for AIS.")),
        _param("unpaired", bool, typer.Option(False, "--unpaired", help="Distribution metrics only (FID, "
                                              "CLIP-FID, KID, and the selected extras) between sets of any sizes.")),
        _param("save_ref_stats", Optional[Path], typer.Option(None, "--save-ref-stats", help="Unpaired mode: "
                                                              "save REF's statistics to this .npz for reuse.")),
    ]
    shared_folders = [p.replace(default=typer.Option("pred", "--model-name", help="Name of the scored model."))
                      if p.name == "model_name" else p for p in shared]
    score_folders_command.__signature__ = inspect.Signature(own + shared_folders)
    app.command("score-folders")(score_folders_command)
    app.command("ref-stats")(ref_stats_command)


def ref_stats_command(
    ref: Optional[Path] = typer.Argument(None, metavar="[REF]", help="Folder of reference images (or, "
                                         "with a manifest and media, a benchmark fold's frames).",
                                         show_default=False),
    out: Path = typer.Option(..., "--out", help="Statistics file to write (.npz)."),
    manifest: Optional[Path] = typer.Option(None, "--manifest", help=MANIFEST_HELP),
    media: Optional[Path] = typer.Option(None, "--media", help="MEDIA folder of 'datasets fetch'."),
    fold: Optional[int] = typer.Option(None, "--fold", help="Only this fold's frames."),
    split: Optional[str] = typer.Option(None, "--split", help="Only this split's frames."),
    preset: Preset = typer.Option(Preset.paper, "--preset", help=PRESET_HELP),
    metrics: str = typer.Option("paper", "--metrics", help="The metrics the statistics will serve: " + METRICS_HELP),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Feature cache (default "
                                             "$MACS_HOME/features)."),
    overwrite: bool = typer.Option(False, "--overwrite", help=OVERWRITE_HELP),
) -> None:
    """Encode a reference set once and save its statistics for 'score-folders --unpaired GEN STATS'."""
    from macs_bench.scoring import ScoreConfig
    from macs_bench.scoring.unpaired import fold_frames, make_reference_stats

    if (ref is None) == (manifest is None) or (manifest is None) != (media is None):
        raise MacsError("give either REF (a folder) or --manifest with --media (a benchmark fold's frames)")
    if out.exists() and not overwrite:
        raise MacsError(f"{out}: exists; pass --overwrite to replace it")
    if preset is Preset.world:
        import macs_bench.world.scoring  # noqa: F401  the world registers its encoder preset when imported
    source = ref if ref is not None else fold_frames(manifest, media, fold, split)
    stats = make_reference_stats(source, out, config=ScoreConfig(preset=preset.value, metrics=metrics,
                                                                 device=device, cache_dir=cache_dir and str(cache_dir)))
    console.print(f"wrote {out}: {stats.n} reference images, encoders {', '.join(stats.encoder_ids)}")


def _param(name: str, annotation, default):
    import inspect

    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
