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
    "cmmd": MetricSet(("clip_l336",), {"cmmd": "lower", "cmmd_unbiased": "lower"}),
    "fd_dinov2": MetricSet(("dinov2",), {"fd_dinov2": "lower"}),
    "prdc_inception": MetricSet((), {f"{k}_inception": "higher" for k in PRDC_KEYS}),
    "prdc_dinov2": MetricSet(("dinov2",), {f"{k}_dinov2": "higher" for k in PRDC_KEYS}),
}
# the version of each group's definition, recorded in the result beside the paper's metric_version
VERSIONS = {"coverage": "coverage-v1", "cmmd": "cmmd-rbf10-x1000-biased+unbiased-v2", "fd_dinov2": "fd-dinov2-cls-v1",
            "prdc_inception": "prdc-k5-v1", "prdc_dinov2": "prdc-k5-v1"}


# each encoder preprocessing version's input size and resize (the last part of an encoder id)
INPUTS = {
    "cleanfid-clean-299-v1": "299 x 299, clean-fid 'clean' resize (PIL bicubic in float32), values 0..255",
    "cleanfid-clip-224-v1": "224 x 224, PIL bicubic short side to 224 then centre crop, OpenAI normalisation",
    "cmmd-crop-336-v1": "336 x 336, centre square crop then PIL bicubic, OpenAI normalisation",
    "dgmeval-224-v1": "224 x 224, bicubic resize (dgm-eval), ImageNet normalisation",
    "tiny-32-v2": "32 x 32, PIL bicubic (tiny random test encoders)",
}
# metric -> (encoders whose features it reads, estimator, scale)
_ESTIMATORS = {
    "fid": (("inception",), "Frechet distance of the fitted Gaussians (biased upwards at small N)", "raw"),
    "clip_fid": (("clip",), "Frechet distance of the fitted Gaussians (biased upwards at small N)", "raw"),
    "kid": (("inception",), "unbiased MMD^2, cubic kernel (x.y/d + 1)^3, mean over random subsets", "raw"),
    "kid_std": (("inception",), "population std (ddof=0) of the subsets' unbiased MMD^2", "raw"),
    "ais": (("wav2clip", "clip"), "mean cosine of each sample's audio and generated image", "raw"),
    "ais_z": (("wav2clip", "clip"), "mean per-sample z of the cosine against every other generated image",
              "raw"),
    "iis": (("clip",), "mean cosine of each ground-truth frame and its generated image", "raw"),
    "iis_z": (("clip",), "mean per-sample z of the cosine against every other generated image", "raw"),
    "cmmd": (("clip_l336",), "biased MMD^2 (V-statistic, as the reference code), RBF sigma 10", "x1000"),
    "cmmd_unbiased": (("clip_l336",), "unbiased MMD^2 (U-statistic, diagonals left out), RBF sigma 10", "x1000"),
    "fd_dinov2": (("dinov2",), "Frechet distance of the fitted Gaussians (biased upwards at small N)", "raw"),
}


def definitions(keys, encoders: dict[str, dict], config: dict) -> dict[str, dict]:
    """Per reported metric: its features (encoder id, weights hash, input size and resize), estimator, scale and
    parameters (KID subsets, subset size and seed; PRDC's k), as recorded in every result."""
    from macs_bench.metrics.prdc import K

    def features(names):
        out = []
        for name in names:
            enc = encoders.get(name)
            if enc is not None:
                version = enc["id"].rsplit("/", 1)[-1]
                out.append({"encoder": name, "id": enc["id"], "weights": enc["weights"],
                            "input": INPUTS.get(version, version)})
        return out

    out = {}
    for key in keys:
        space = key.rsplit("_", 1)[-1]
        if key in _ESTIMATORS:
            names, estimator, scale = _ESTIMATORS[key]
            entry = {"features": features(names), "estimator": estimator, "scale": scale}
            if key.startswith("kid"):
                entry.update(subsets=config.get("kid_subsets"), subset_size=config.get("kid_subset_size"),
                             seed=config.get("kid_seed"))
        elif key.split("_")[0] in PRDC_KEYS and space in ("inception", "dinov2"):
            entry = {"features": features((space,)), "estimator": f"{key.split('_')[0]} with k = {K} nearest "
                     "neighbours (Naeem et al. 2020), strict ball boundary", "scale": "share", "k": K}
        else:  # the coverage family: CLIP image features against the classes' text embeddings
            entry = {"features": features(("clip",)), "estimator": "per-source coverage (see docs/scoring.md)",
                     "scale": "share"}
        out[key] = entry
    return out
