"""The judge's own test: per-source coverage of the world's zero-shot detector (image tower vs class-name text
tower) on true motifs and on the cheats it was trained against, for label sets it never saw.

A judge worth trusting scores true motifs near 1 and every picture without the right shapes (a flat tint of
the motifs' colours, colour dots or blobs, the colours in wrong shapes) near chance (|Y| / |V| per clip).
``all-motifs`` (every class drawn) is reported too: a ranking detector cannot credit it above chance either.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

ROWS = ("motifs", "colour-only", "dots", "blobs", "wrong-shapes", "all-motifs", "noise")


def cheat_image(row: str, names: Sequence[str], rng: np.random.Generator, size: int = 32):
    """One 32 x 32 picture of a judge row for a clip with classes ``names``, drawn as the control rows are."""
    from PIL import Image

    from macs_bench.world import motifs
    from macs_bench.world.controls import control_image

    if row in ("motifs", "colour-only", "all-motifs"):
        return control_image("oracle" if row == "motifs" else row, names, rng, size)
    if row == "noise":
        return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    draw = {"dots": motifs.draw_dots, "blobs": motifs.draw_blobs, "wrong-shapes": motifs.draw_wrong_shapes}[row]
    return draw(list(names), rng, 2 * size).resize((size, size))


@torch.no_grad()
def judge_controls(towers, sets: Sequence[Sequence[str]], seed: int = 5) -> dict[str, Any]:
    """Coverage (overall and by number of sources) of every judge row over the label sets ``sets``."""
    from macs_bench.world.controls import chance_coverage, coverage
    from macs_bench.world.synthetic import CLASSES
    from macs_bench.world.towers import image_tensor

    text = towers.text(list(CLASSES)).numpy()
    label_sets = [[CLASSES.index(c) for c in names] for names in sets]
    out: dict[str, Any] = {"clips": len(sets), "chance": chance_coverage(label_sets, len(CLASSES))}
    for row in ROWS:
        images = [cheat_image(row, names, np.random.default_rng([seed, zlib.crc32(row.encode()), i]))
                  for i, names in enumerate(sets)]
        out[row] = coverage(towers.image(image_tensor(images)).numpy(), text, label_sets)
    return out
