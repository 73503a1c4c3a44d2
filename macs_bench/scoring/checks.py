"""Checks that run before any encoding (output path, config) and the numerical notes on a result.

Everything here fails fast with one line naming the problem, so a mistake never costs an encoder pass, and a
result whose numbers cannot be trusted says so instead of printing them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from macs_bench.errors import MacsError

# a cubic-kernel value above this leaves float64 (1e-16 relative) with an absolute error above 1e-6 per entry,
# the size of a good model's KID: the estimator is then rounding noise
KID_KERNEL_LIMIT = 1e10
# real Inception pool features lie in about [0, 10]; far beyond that they come from random weights
FEATURE_SCALE_NOTE = 1e4
SEED_LIMIT = 2**32


def check_config(config) -> None:
    """Seeds and knobs that would otherwise fail only after all the encoding."""
    for label, seed in (("KID seed", config.kid_seed), ("bootstrap seed", getattr(config, "bootstrap_seed", 0))):
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < SEED_LIMIT:
            raise MacsError(f"the {label} must be in [0, 2**32), got {seed!r}")
    rounds = getattr(config, "bootstrap", 0)
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 0 or 0 < rounds < 4:
        raise MacsError(f"the interval rounds (bootstrap) must be 0 (none) or at least 4, got {rounds!r}")
    if config.kid_subsets < 1 or config.kid_subset_size < 2:
        raise MacsError(f"KID needs at least 1 subset of at least 2 samples, got {config.kid_subsets} of "
                        f"{config.kid_subset_size}")


def check_out(out: Path, inputs: list[Path]) -> None:
    """Fail before any encoding when the result cannot be written, or would overwrite or land among the inputs
    (the manifest, its stats, a prediction or media file or folder)."""
    from macs_bench.results import features_path, per_sample_path

    if out.is_dir():
        raise MacsError(f"{out}: the output is a folder; give a file name such as result.json")
    for target in (out, per_sample_path(out), features_path(out)):
        resolved = target.resolve()
        for given in inputs:
            where = given.resolve()
            if resolved == where or (given.is_dir() and where in resolved.parents):
                raise MacsError(f"{target}: the output would write over or into an input ({given}); "
                                "choose another file name")
    parent = out.parent if str(out.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise MacsError(f"{parent}: is not a folder, cannot write {out.name}")
    if parent.exists() and not os.access(parent, os.W_OK):
        raise MacsError(f"{parent}: not writable, cannot write {out.name}")


def kid_kernel_peak(a: np.ndarray, b: np.ndarray) -> float:
    """The largest cubic-kernel value (x.y/d + 1)^3 KID can meet, bounded by the rows' squared norms."""
    d = a.shape[1]
    peak = max(float(np.max(np.einsum("ij,ij->i", a, a))), float(np.max(np.einsum("ij,ij->i", b, b)))) / d
    return (peak + 1.0) ** 3


def feature_notes(gen_incep: np.ndarray, gt_incep: np.ndarray) -> tuple[bool, list[str]]:
    """``(kid_ok, notes)``: KID is refused when its kernel terms are beyond float64's reach; a note when the
    Inception features are far outside a trained network's range (FID stays exact, it is computed centred)."""
    notes = []
    scale = max(float(np.abs(gen_incep).max()), float(np.abs(gt_incep).max()))
    if scale > FEATURE_SCALE_NOTE:
        notes.append(f"Inception features reach {scale:.1e} (a trained network's stay below about 10; random "
                     "weights?): FID is exact for them but says nothing about image quality")
    peak = kid_kernel_peak(np.asarray(gen_incep, np.float64), np.asarray(gt_incep, np.float64))
    if peak > KID_KERNEL_LIMIT:
        notes.append(f"KID refused: its cubic kernel reaches {peak:.1e}, where float64 rounding alone exceeds "
                     "the metric's size (kid and kid_std are null)")
        return False, notes
    return True, notes


def wide_images(paths: list[Path]) -> list[Path]:
    """Images stored with more than 8 bits per channel (read from the header only): PIL's RGB conversion, which
    clean-fid uses, clips their values above 255."""
    from PIL import Image, UnidentifiedImageError

    out = []
    for path in paths:
        try:
            with Image.open(path) as img:
                if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                    out.append(path)
        except (UnidentifiedImageError, OSError, ValueError):
            continue  # the encoder pass reports an unreadable file with its own error
    return out


def wide_image_warnings(predictions: list[Path], frames: list[Path]) -> list[str]:
    out = []
    for kind, paths in (("predictions", predictions), ("ground-truth frames", frames)):
        wide = wide_images(paths)
        if wide:
            out.append(f"{len(wide)} {kind} are 16- or 32-bit images (e.g. {wide[0]}): converting them to RGB "
                       "clips every value above 255; save 8-bit images")
    return out
