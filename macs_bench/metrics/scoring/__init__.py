"""Scoring: :func:`score` (a benchmark manifest) and :func:`score_folders` (two folders paired by file stem).

:mod:`.core` runs the encoders and the metrics, :mod:`.pairing` finds the files, :mod:`.checks` fails fast on
bad options and untrustworthy numbers, :mod:`.provenance` records which weights ran, :mod:`.distributed` shards
the encoding under ``accelerate launch`` / torchrun.
"""

from macs_bench.device import resolve_device
from macs_bench.metrics.spec import DIRECTIONS, IMAGE_SUFFIXES, METRIC_VERSION
from macs_bench.results import ScoreResult, per_sample_path
from macs_bench.metrics.scoring.core import ScoreConfig, compute_metrics, score, score_folders
from macs_bench.metrics.scoring.provenance import encoders_preset, published_weights

__all__ = ["ScoreConfig", "ScoreResult", "score", "score_folders", "compute_metrics", "resolve_device",
           "per_sample_path", "published_weights", "encoders_preset", "DIRECTIONS", "IMAGE_SUFFIXES",
           "METRIC_VERSION"]
