"""What a score result says about its encoders: which preset built them, whether they run the published
weights (only then are the numbers comparable with the paper), which weights are missing, and why a result is
not comparable although its numbers are right."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from macs_bench.errors import MacsError

if TYPE_CHECKING:  # the encoders import torch; the functions below import what they need when they run
    from macs_bench.features.encoders import Encoder


def encoders_preset(encoders: dict[str, Encoder]) -> str:
    """The preset that built ``encoders`` when a caller passes them in: tiny, random, paper, else custom."""
    weights = [enc.weights for enc in encoders.values()]
    if all(w.startswith("tiny-random") for w in weights):
        return "tiny"
    if all(w.startswith("random:") for w in weights):
        return "random"
    return "paper" if published_weights(encoders) else "custom"


def published_weights(encoders: dict[str, Encoder]) -> bool:
    """Whether every encoder runs the published weights (the registry's pinned sha256; a hash recorded on first
    use proves nothing about where a file came from): only then are the numbers comparable with the paper's."""
    from macs_bench.features import encoders as registry
    from macs_bench.features.encoders import PAPER_ENCODERS

    return all(registry.published_hash(name) is not None and enc.weights == registry.published_hash(name)
               for name, enc in encoders.items() if name in PAPER_ENCODERS)


def missing_weights(preset: str, names: tuple[str, ...], given: dict[str, str]) -> None:
    """Before building anything: one error listing every cache entry the ``paper`` preset needs and lacks."""
    if preset != "paper":
        return
    from macs_bench.features.encoders import WEIGHT_NAMES
    from macs_bench.weights import local_path

    missing = [WEIGHT_NAMES[n] for n in names if n not in given and n in WEIGHT_NAMES
               and not local_path(WEIGHT_NAMES[n]).exists()]
    if missing:
        raise MacsError(f"{local_path(missing[0]).parent}: missing weights {', '.join(missing)}; fetch them with: "
                        f"macs-bench weights fetch {' '.join(missing)}")


def scope_warnings(pairing, encoders: dict[str, Encoder], benchmark: bool = True) -> list[str]:
    """Why a result is not comparable with the paper although its numbers are right."""
    out = []
    if pairing.missing:
        total = len(pairing.sample_ids) + len(pairing.missing)
        out.append(f"scored {len(pairing.sample_ids)} of {total} samples (missing ones allowed): not comparable with "
                   "the paper, which scores every sample")
    if not benchmark:
        out.append("two folders paired by file stem, not a benchmark manifest: not comparable with the paper")
        if not pairing.audio:
            out.append("ais and ais_z are undefined: no audio folder was given")
    from macs_bench.features.encoders import PAPER_ENCODERS, published_hash

    unpinned = [name for name, enc in encoders.items()
                if name in PAPER_ENCODERS and published_hash(name) is None and enc.weights.startswith("sha256:")]
    if unpinned:
        out.append(f"{', '.join(unpinned)}: no published checksum exists for these weights, so they cannot be "
                   "verified as the paper's: not comparable with the paper")
    return out


def default_cache_dir() -> Path:
    from macs_bench.weights import cache_dir

    return cache_dir().parent / "features"


def run_provenance(selected_label: str, selected: list[str], encoders: dict, device, comparable: bool,
                   seeds: dict, config, processes: int | None = None) -> dict:
    """The head every score result records, in its file order: what was selected and at which versions, the
    encoders and their weights, device, comparability, seeds, config (less the cache folder) and the tool."""
    from dataclasses import asdict

    from macs_bench import __version__
    from macs_bench.metric_spec import METRIC_VERSION, VERSIONS
    from macs_bench.provenance import SCORE_LIBRARIES, package_versions, source_commit

    tool = {"name": "macs-bench", "version": __version__, "source_commit": source_commit(),
            "libraries": package_versions(*SCORE_LIBRARIES)}
    return {
        "metrics_selected": [selected_label, *selected],
        "metric_version": METRIC_VERSION,
        "extra_metric_versions": {name: VERSIONS[name] for name in selected},
        "encoders": {name: {"id": enc.id, "weights": enc.weights} for name, enc in encoders.items()},
        "device": device.type,
        "comparable_with_paper": comparable,
        "seeds": seeds,
        "config": {k: v for k, v in asdict(config).items() if k != "cache_dir"},
        "tool": {**tool, "processes": processes} if processes is not None else tool,
    }
