"""The paper's metrics as pure functions on encoder features (numpy arrays in, floats out).

FID and CLIP-FID are ``frechet_distance`` on Inception or CLIP features, KID is
``kernel_inception_distance`` on Inception features, and AIS/IIS with their z-scores come from
``paired_scores``. Beyond the paper: ``source_coverage`` (per-source coverage, AIC), and ``cmmd.cmmd`` and
``prdc.prdc`` in their modules; ``macs_bench.metrics.classes`` wraps them as torchmetrics classes. Encoding images and audio happens elsewhere.
"""

from macs_bench.metrics.coverage import source_coverage
from macs_bench.metrics.fid import feature_stats, frechet_distance, frechet_distance_from_stats
from macs_bench.metrics.kid import kernel_inception_distance
from macs_bench.metrics.similarity import SimilarityScores, cosine_matrix, paired_scores

__all__ = [
    "SimilarityScores",
    "cosine_matrix",
    "feature_stats",
    "frechet_distance",
    "frechet_distance_from_stats",
    "kernel_inception_distance",
    "paired_scores",
    "source_coverage",
]
