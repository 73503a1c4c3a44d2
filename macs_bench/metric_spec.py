"""The one description of every metric (names, directions, labels, decimals) and of the files scoring reads.

Torch-free, so the leaderboard, the sample grid and the results module read it without importing an encoder.
"""

from __future__ import annotations

from dataclasses import dataclass

METRIC_VERSION = "macs-metrics-v1"
# the paper's seven, in its column order
PAPER_METRICS = ("fid", "clip_fid", "kid", "ais", "ais_z", "iis", "iis_z")
LABELS = {"fid": "FID", "clip_fid": "CLIP-FID", "kid": "KID", "ais": "AIS", "ais_z": "AIS-z", "iis": "IIS",
          "iis_z": "IIS-z"}
# lower is better for the distances, higher for the similarities
DIRECTIONS = {"fid": "lower", "clip_fid": "lower", "kid": "lower", "ais": "higher", "ais_z": "higher",
              "iis": "higher", "iis_z": "higher"}
DECIMALS = {"fid": 2, "clip_fid": 2, "kid": 4, "ais": 4, "ais_z": 4, "iis": 4, "iis_z": 4}  # as the paper prints
ARROWS = {"lower": "↓", "higher": "↑"}
# what a prediction folder may hold, and the suffixes of the ground truth (see macs_bench.media.layout)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


@dataclass(frozen=True)
class MetricSet:
    """One opt-in group: the encoders it needs beyond the paper's and the result keys it adds (with direction)."""

    encoders: tuple[str, ...]
    keys: dict[str, str]


PRDC_KEYS = ("precision", "recall", "density", "coverage")
EXTRAS: dict[str, MetricSet] = {
    "coverage": MetricSet((), {"source_coverage": "higher", "source_coverage_gt": "higher",
                               "source_coverage_rel": "higher", "aic": "higher", "aic_gt": "higher"}),
    "cmmd": MetricSet(("clip_l336",), {"cmmd": "lower"}),
    "fd_dinov2": MetricSet(("dinov2",), {"fd_dinov2": "lower"}),
    "prdc_inception": MetricSet((), {f"{k}_inception": "higher" for k in PRDC_KEYS}),
    "prdc_dinov2": MetricSet(("dinov2",), {f"{k}_dinov2": "higher" for k in PRDC_KEYS}),
}
# the version of each group's definition, recorded in the result beside the paper's metric_version
VERSIONS = {"coverage": "coverage-v1", "cmmd": "cmmd-rbf10-x1000-biased-v1", "fd_dinov2": "fd-dinov2-cls-v1",
            "prdc_inception": "prdc-k5-v1", "prdc_dinov2": "prdc-k5-v1"}

