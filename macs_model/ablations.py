"""The paper's ablations computed (issue 21 item 4): ``macs-model ablations``.

Rows (paper §4.6, Tab. 4, Fig. 4, plus the controls a reviewer asks for):

- ``MACS``: the full method; ``no-RL`` / ``no-CL``: stage 1 without the soft-rank / the contrastive loss;
  ``waveform``: the Table 4 waveform-domain (MixIT-style) separator in place of the STFT UNet; ``no-DC``: the
  audio tokens appended to the text tokens instead of decoupled cross-attention (MACS's separator);
- ``no-sep 1 token``: the mixture's CLAP embedding as one token; ``no-sep M slots``: the same embedding repeated
  into M slots, the separator's capacity without its information;
- Fig. 4: MACS's adapter conditioned on its first 1, 2, 3 slots (``top-K``) and on slots 4, 5, 6;
- in the world, the harness's world baselines (``macs_model.baselines.world``);
- controls beside the table, never ranked: oracle, shuffled, noise, colour-only (a flat tint of the clip's
  motif colours) and all-motifs (every class drawn).

Every row is scored per fold; the table gives fold means and, against MACS, each metric's paired difference,
its interval and permutation p (:func:`macs_bench.compare`), Holm-corrected over the whole table. Stage-1 runs,
adapters, images and score results are kept under the output folder and reused by a rerun.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from macs_bench.errors import MacsError
from macs_bench.io import atomic_write_text, dumps_json

SEPARATORS = {  # stage-1 variant -> train_separator options
    "full": {"kind": "stft-unet", "contrastive": True, "ranking": True},
    "no-rl": {"kind": "stft-unet", "contrastive": True, "ranking": False},
    "no-cl": {"kind": "stft-unet", "contrastive": False, "ranking": True},
    "waveform": {"kind": "waveform", "contrastive": True, "ranking": True},
}
REFERENCE = "MACS"


@dataclass(frozen=True)
class Variant:
    """One ablation row: which separator (None: none), how stage 2 conditions, which slots generation uses.
    ``adapter_of`` names the row whose adapter it reuses (Fig. 4 rows change generation only)."""

    name: str
    separator: str | None = "full"
    mixture_slots: int = 1
    decoupled: bool = True
    top_k: int | None = None
    slots: tuple[int, ...] | None = None
    adapter_of: str | None = None
    note: str = ""


VARIANTS = (
    Variant(REFERENCE, note="the full method"),
    Variant("no-sep 1 token", None, note="mixture embedding, one token"),
    Variant("no-sep M slots", None, mixture_slots=-1, note="mixture embedding repeated into M slots"),
    Variant("no-RL", "no-rl", note="stage 1 without the soft-rank loss"),
    Variant("no-CL", "no-cl", note="stage 1 without the contrastive loss"),
    Variant("no-DC", decoupled=False, note="tokens appended to the text, no decoupled cross-attention"),
    Variant("waveform", "waveform", note="waveform-domain separator (Tab. 4)"),
    Variant("top-1", top_k=1, adapter_of=REFERENCE, note="Fig. 4: first slot only"),
    Variant("top-2", top_k=2, adapter_of=REFERENCE, note="Fig. 4: first two slots"),
    Variant("top-3", top_k=3, adapter_of=REFERENCE, note="Fig. 4: first three slots"),
    Variant("slots 4,5,6", slots=(4, 5, 6), adapter_of=REFERENCE, note="Fig. 4: the last three slots"),
)
ROW_NAMES = tuple(v.name for v in VARIANTS)
CONTROLS = ("oracle", "shuffled", "noise", "colour-only", "all-motifs")


@dataclass(frozen=True)
class AblationPlan:
    """How big the run is. ``world``: the synthetic world (its CLAP, SD base and towers); else a real benchmark
    with the paper presets (a GPU's work). ``rows``: a subset of :data:`ROW_NAMES` (MACS always runs)."""

    world: bool = True
    clips: int = 600  # the world's default: 120 test clips per fold, 24 per number of sources
    pretrain_clips: int = 96
    folds: tuple[int, ...] = (0, 1)
    separator_steps: int | None = 150
    generator_steps: int | None = 300
    rows: tuple[str, ...] = ROW_NAMES
    baselines: bool = True
    rounds: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = [r for r in self.rows if r not in ROW_NAMES]
        if unknown:
            raise MacsError(f"unknown ablation row {unknown[0]!r} (known: {', '.join(ROW_NAMES)})")
        if not self.folds or any(isinstance(f, bool) or not isinstance(f, int) or not 0 <= f < 5
                                 for f in self.folds) or len(set(self.folds)) != len(self.folds):
            raise MacsError(f"folds must be distinct fold numbers 0-4, got {list(self.folds)}")
        rows = tuple(dict.fromkeys((REFERENCE, *self.rows)))
        object.__setattr__(self, "rows", rows)
        object.__setattr__(self, "folds", tuple(self.folds))

    @classmethod
    def quick(cls, **changes: Any) -> "AblationPlan":
        """One fold, short training, few resampling rounds: minutes on 2 CPUs."""
        return replace(cls(clips=60, pretrain_clips=32, folds=(0,), separator_steps=20, generator_steps=120,
                           rounds=200), **changes)

    def variants(self) -> list[Variant]:
        return [v for v in VARIANTS if v.name in self.rows]

    def separators(self) -> list[str]:
        """Stage-1 variants the rows need, in :data:`SEPARATORS` order."""
        needed = {v.separator for v in self.variants() if v.separator is not None}
        if self.world and self.baselines:
            needed.add("full")  # AudioToken w/ MSS
        return [k for k in SEPARATORS if k in needed]

    def jobs(self) -> list[str]:
        """What a run does, one line per job, in order (``--dry-run`` prints it)."""
        lines = [f"stage 1: separator {k} ({SEPARATORS[k]})" for k in self.separators()]
        for fold in self.folds:
            for v in self.variants():
                if v.adapter_of is None:
                    lines.append(f"fold {fold}: train adapter {v.name}")
                lines.append(f"fold {fold}: generate + score {v.name}")
            if self.world and self.baselines:
                lines.append(f"fold {fold}: world baselines")
            lines.append(f"fold {fold}: controls {', '.join(CONTROLS)}")
        lines.append("table: fold means, paired intervals and Holm-corrected p against MACS; radar; grid")
        return lines


@dataclass
class AblationResult:
    """What ``run_ablations`` wrote, and how long it took."""

    out: Path
    table: Path
    record: Path
    radar: Path
    grid: Path
    seconds: float
    rows: dict[str, dict[str, float | None]] = field(default_factory=dict)


@dataclass(frozen=True)
class Benchmark:
    """Where the rows train and are scored: a manifest and its media, stage 1's pre-training data, and the
    models they run on (the world's stand-ins, or CLAP / Stable Diffusion / the paper's scoring weights)."""

    manifest: Path
    media: Path
    pretrain: str
    pretrain_media: Path
    clap: str | None = None
    base: str | None = None
    preset: str = "paper"
    separator_preset: str = "paper"
    device: str = "auto"
    ramp: bool | None = None  # stage 1's loss ramp (None: the preset's; the world turns it on, as the demo)


def world_benchmark(out: Path, plan: AblationPlan) -> Benchmark:
    """The synthetic world's benchmark (written once under ``out``) with its shipped CLAP and SD base."""
    from macs_bench.world.synthetic import write_synthetic
    from macs_bench.world import SD_DIR, WORLD_DIR
    from macs_model.separation.api import WORLD_CLAP

    data = write_synthetic(out / "data", n_clips=plan.clips, seed=0, prefix="syn")
    pretrain = write_synthetic(out / "pretrain", n_clips=plan.pretrain_clips, seed=1, prefix="pre")
    return Benchmark(data.manifest, data.media, str(pretrain.manifest), pretrain.media, clap=WORLD_CLAP,
                     base=str(WORLD_DIR / SD_DIR), preset="world", separator_preset="tiny", device="cpu",
                     ramp=True)


def check_real(manifest, media, pretrain_media, device: str) -> None:
    """Argument checks of the real-benchmark path: its folders exist and a GPU is asked for."""
    if manifest is None or media is None:
        raise MacsError("ablations on a real benchmark need --manifest and --media (or --world)")
    for what, path in (("--manifest", manifest), ("--media", media), ("--pretrain-media", pretrain_media)):
        if path is None or not Path(path).is_dir():
            raise MacsError(f"{path}: {what} is not a folder")
    from macs_bench.device import resolve_device

    if resolve_device(device).type == "cpu":
        raise MacsError("ablations on a real benchmark train 7 Stable Diffusion adapters per fold: they need a "
                        "GPU (--device cuda); use --world for the CPU-sized synthetic world")


TABLE_ONLY = ("rows", "baselines", "rounds")  # a rerun may add rows or change the table, reusing the rest


def _claim(path: Path, plan: AblationPlan, bench: dict[str, Any]) -> None:
    """Record the plan a folder holds; refuse another plan before anything is overwritten. Rows, baselines and
    resampling rounds may change: each row keeps its own files, so a rerun adds rows and reuses the others."""
    kept = {k: v for k, v in asdict(plan).items() if k not in TABLE_ONLY}
    wanted = json.loads(dumps_json({"plan": kept, "benchmark": bench}))
    if path.is_file():
        try:
            held = json.loads(path.read_text(encoding="utf-8"))
            held["plan"] = {k: v for k, v in held["plan"].items() if k not in TABLE_ONLY}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            held = None
        if held != wanted:
            raise MacsError(f"{path.parent}: holds an ablation run with another plan ({path.name}); use another "
                            "output folder or delete that one")
        return
    atomic_write_text(path, dumps_json(wanted))


def run_ablations(out: str | os.PathLike = "runs/ablations", *, plan: AblationPlan | None = None,
                  benchmark: Benchmark | None = None, progress: bool = True,
                  log: Callable[[str], None] = print) -> AblationResult:
    """Train (or reuse), generate and score every row of ``plan`` per fold into ``out``; write the table
    (``ablations.md`` / ``ablations.json``), the leaderboard with its radar, and a sample grid. Without
    ``benchmark`` the plan must be a world plan. The world runs torch on one thread (see ``run_demo``)."""
    import torch

    plan = plan or AblationPlan()
    if benchmark is None and not plan.world:
        raise MacsError("a real-benchmark ablation needs its Benchmark (manifest, media, pre-training data)")
    threads = torch.get_num_threads()
    if plan.world:
        torch.set_num_threads(1)
    try:
        return _run(Path(out).expanduser(), plan, benchmark, progress, log)
    finally:
        torch.set_num_threads(threads)


def _run(out: Path, plan: AblationPlan, bench: Benchmark | None, progress: bool,
         log: Callable[[str], None]) -> AblationResult:
    from macs_bench.metrics.scoring import ScoreConfig
    from macs_model.ablation_table import write_outputs
    from macs_model.generation.api import fold_ids
    from macs_model.separation.api import train_separator

    started, cpu_started = time.perf_counter(), time.process_time()
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    world_weights = None
    if plan.world:
        import macs_bench.world.scoring  # noqa: F401  registers the 'world' encoder preset
        from macs_bench.world import WORLD_DIR
        from macs_bench.world.checksums import verify_tree

        world_weights = verify_tree(WORLD_DIR)
        _claim(out / "plan.json", plan, {"world": True})
        bench = world_benchmark(out, plan)
    else:
        _claim(out / "plan.json", plan, {k: str(v) for k, v in asdict(bench).items()})
    scoring = ScoreConfig(preset="world" if plan.world else "paper", cache_dir=str(out / "features"))

    def timed(name: str, job: Callable[[], Any]) -> Any:
        log(f"[ablations] {name}")
        t = time.perf_counter()
        value = job()
        timings[name] = round(time.perf_counter() - t, 2)
        log(f"[ablations] {name}: {timings[name]:.0f} s")
        return value

    separators = out / "separators"
    for key in plan.separators():
        timed(f"stage 1: separator {key}", lambda key=key: train_separator(
            bench.pretrain, bench.pretrain_media, separators / key, preset=bench.separator_preset,
            clap=bench.clap, steps=plan.separator_steps, seed=plan.seed, device=bench.device, ramp=bench.ramp,
            progress=progress, **SEPARATORS[key]))
    results, pred = out / "results", out / "pred"
    for fold in plan.folds:
        _, test = fold_ids(bench.manifest, fold)
        for v in plan.variants():
            timed(f"fold {fold}: {v.name}", lambda v=v: _row(v, fold, bench, plan, out, scoring))
        if plan.world and plan.baselines:
            from macs_model.baselines.world import world_baseline_rows

            timed(f"fold {fold}: world baselines", lambda: world_baseline_rows(
                bench.manifest, bench.media, out / "baselines", folds=[fold], results=results,
                separator=separators / "full", config=scoring, seed=plan.seed, progress=progress))
        timed(f"fold {fold}: controls", lambda: _controls(fold, test, bench, plan, pred, results, scoring))
    seconds = round(time.perf_counter() - started, 2)
    work = _work_ledger(out / "timings.json", timings)
    record = {"work_seconds": round(sum(work.values()), 2), "work": work, "plan": asdict(plan), "benchmark": {k: str(v) for k, v in asdict(bench).items()},
              "world_weights": world_weights, "seconds": timings, "run_seconds": seconds,
              "cpu_seconds": round(time.process_time() - cpu_started, 2),
              "cpus": os.cpu_count(), "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}
    return timed("table, radar and grid", lambda: write_outputs(out, plan, bench, record, log=log))


def _work_ledger(path: Path, timings: dict[str, float]) -> dict[str, float]:
    """Seconds each job took when it did its work (the longest run seen), kept across reruns, so a rerun that
    reuses everything still reports what the table cost."""
    try:
        held = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError):
        held = {}
    ledger = {**held, **{k: max(v, held.get(k, 0.0)) for k, v in timings.items()}}
    atomic_write_text(path, dumps_json(ledger))
    return ledger


def adapter_dir(out: Path, name: str, fold: int) -> Path:
    return out / "generators" / f"{name.replace(' ', '_').replace(',', '-')}-fold{fold}"


def pred_dir(out: Path, name: str) -> Path:
    return out / "pred" / name.replace(" ", "_").replace(",", "-")


def _row(v: Variant, fold: int, bench: Benchmark, plan: AblationPlan, out: Path, scoring) -> None:
    """Train (or reuse) the row's adapter on the other folds, draw its test images, score them."""
    from macs_model.generation.api import generate, train_generator

    trained = v.adapter_of or v.name
    run = adapter_dir(out, trained, fold)
    if v.adapter_of is None:
        if v.separator is None:
            from macs_model.separation.api import separator_preset

            m = separator_preset(bench.separator_preset).num_sources if v.mixture_slots == -1 else v.mixture_slots
            conditioning: dict[str, Any] = {"no_separation": True, "mixture_slots": m}
        else:
            conditioning = {"separator": out / "separators" / v.separator}
        train_generator(bench.manifest, bench.media, run, fold=fold, preset=bench.preset, base=bench.base,
                        clap=bench.clap, steps=plan.generator_steps, decoupled=v.decoupled, progress=False,
                        device=bench.device, **conditioning)
    images = pred_dir(out, v.name)
    generate(bench.manifest, bench.media, run, images, fold=fold, clap=bench.clap, top_k=v.top_k,
             slots=v.slots, seed=plan.seed, device=bench.device, progress=False)
    _score(bench, images, v.name, fold, out / "results", scoring)


def _score(bench: Benchmark, images: Path, name: str, fold: int, results: Path, scoring) -> None:
    """Score unless a result newer than every image of the folder is there already (a rerun reuses it)."""
    from macs_bench.metrics.scoring import score

    target = results / f"{name}-fold{fold}.json"
    newest = max((p.stat().st_mtime for p in images.glob("*.png")), default=0.0)
    if target.is_file() and target.stat().st_mtime >= newest:
        return
    score(bench.manifest, images, bench.media, model_name=name, fold=fold, out=target, config=scoring)


def _controls(fold: int, test: Sequence[str], bench: Benchmark, plan: AblationPlan, pred: Path, results: Path,
              scoring) -> None:
    """Oracle, shuffled (MACS's images on the wrong clips), noise, colour-only and all-motifs, marked as
    controls; on a real benchmark only the shuffled row (the others draw the world's motifs)."""
    from macs_bench.world import controls
    from macs_model.demo import _labels, _mark_control

    labels = _labels(bench.manifest)
    writers = {"oracle": lambda d: controls.write_oracle({s: labels[s] for s in test}, d),
               "shuffled": lambda d: controls.write_shuffled(pred_dir(pred.parent, REFERENCE), test, d),
               "noise": lambda d: controls.write_noise(test, d),
               "colour-only": lambda d: controls.write_colour_only({s: labels[s] for s in test}, d),
               "all-motifs": lambda d: controls.write_all_motifs({s: labels[s] for s in test}, d)}
    for name, write in writers.items():
        if not plan.world and name != "shuffled":
            continue  # drawn controls exist in the world only
        write(pred / name)
        _score(bench, pred / name, name, fold, results, scoring)
        _mark_control(results / f"{name}-fold{fold}.json")
