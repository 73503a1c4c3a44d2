"""Every metric concept in one package, laid out as the data path from features to a result:

- :mod:`.spec`: the one description of each metric (names, directions, versions, ``definitions``), torch-free;
- the estimators, pure functions on encoder features (numpy in, floats out): ``frechet_distance`` (FID,
  CLIP-FID, FD-DINOv2), ``kernel_inception_distance`` (KID), ``paired_scores`` (AIS/IIS and z-scores),
  ``source_coverage`` (per-source coverage, AIC), :mod:`.cmmd`, :mod:`.prdc`;
- :mod:`.sets`: which metrics a run computes and which encoders they need;
- :mod:`.scoring`: the pass over files and features (``score``, ``score_folders``, unpaired mode);
- :mod:`.resample` (intervals by video) and :mod:`.paired` (paired differences between models);
- :mod:`.classes`, :mod:`.image_metrics`: torchmetrics classes (these import torch; the rest does not).
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
