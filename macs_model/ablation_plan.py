"""What ``macs-model ablations`` runs and where it keeps it: the rows (stage-1 variants, conditioning variants,
Fig. 4's slot choices), the controls, the plan, the benchmark and the result. Shared by :mod:`.ablations` (the
runner) and :mod:`.ablation_table` (the table it writes)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from macs_bench.errors import MacsError
from macs_model.demo import CONTROLS  # the demo's controls: the same rows beside the table


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


@dataclass(frozen=True)
class AblationPlan:
    """How big the run is. ``world``: the synthetic world (its CLAP, SD base and towers); else a real benchmark
    with the paper presets (a GPU's work). ``rows``: a subset of :data:`ROW_NAMES` (MACS always runs)."""

    world: bool = True
    clips: int = 600  # the world's default: 120 test clips per fold, 24 per number of sources
    pretrain_clips: int = 96
    folds: tuple[int, ...] = (0, 1, 2, 3, 4)  # 600 test clips, 120 per number of sources
    separator_steps: int | None = 150
    generator_steps: int | None = 300
    rows: tuple[str, ...] = ROW_NAMES
    baselines: bool = True
    rounds: int = 1000
    seed: int = 0
    workers: int | None = None  # processes sharing the jobs (None: the world's min(folds, CPUs), else 1)

    def __post_init__(self) -> None:
        unknown = [r for r in self.rows if r not in ROW_NAMES]
        if unknown:
            raise MacsError(f"unknown ablation row {unknown[0]!r} (known: {', '.join(ROW_NAMES)})")
        if not self.folds or any(isinstance(f, bool) or not isinstance(f, int) or not 0 <= f < 5
                                 for f in self.folds) or len(set(self.folds)) != len(self.folds):
            raise MacsError(f"folds must be distinct fold numbers 0-4, got {list(self.folds)}")
        if self.workers is not None and (isinstance(self.workers, bool) or not isinstance(self.workers, int)
                                         or self.workers < 1):
            raise MacsError(f"workers must be a positive number of processes, got {self.workers!r}")
        rows = tuple(dict.fromkeys((REFERENCE, *self.rows)))
        object.__setattr__(self, "rows", rows)
        object.__setattr__(self, "folds", tuple(self.folds))

    @classmethod
    def quick(cls, **changes: Any) -> "AblationPlan":
        """One fold, short training, few resampling rounds: minutes on 2 CPUs."""
        return replace(cls(clips=60, pretrain_clips=32, folds=(0,), separator_steps=20, generator_steps=120,
                           rounds=200), **changes)

    def processes(self) -> int:
        """How many processes share the jobs (stage 1, the folds' rows, the table's comparisons): ``workers``,
        else on the world one per fold up to the CPU count (each runs torch on one thread; the world's jobs are
        independent and seeded, so the table is the same for any count), else 1 (a real benchmark's jobs share
        one GPU)."""
        from macs_model.jobs import default_processes

        if self.workers is not None:
            return self.workers
        return default_processes(len(self.folds)) if self.world else 1

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
        if self.processes() > 1:
            lines.insert(0, f"{self.processes()} processes share the jobs: the stage-1 runs, then every fold's "
                            "adapters and baselines, then its Fig. 4 rows and controls")
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


def adapter_dir(out: Path, name: str, fold: int) -> Path:
    return out / "generators" / f"{name.replace(' ', '_').replace(',', '-')}-fold{fold}"


def pred_dir(out: Path, name: str) -> Path:
    return out / "pred" / name.replace(" ", "_").replace(",", "-")
