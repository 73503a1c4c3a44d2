"""Stage-2 training images as the release prepares them (``dataloader/llp.py``): aspect-ratio buckets,
stretch-resize and a random horizontal flip.

The release's buckets (``get_resolutions_and_ar``) are 512 x 512 and, for r in 224, 288, 352, 416, both r x 512
and 512 x r (height x width). Each frame goes to the bucket whose height / width is nearest its own; batches hold
one bucket; a bucket's clips that do not fill a whole batch are trained at 512 x 512. The frame is stretched to
the bucket (torchvision ``Resize``: bilinear with antialiasing), no crop, and flipped left-right with p = 0.5.

``epoch_views`` is the one place that picks each clip's view (height, width, flip) for an epoch, from the run's
seed; ``load_variant`` makes that view's pixels. The generator config's ``image_mode = "centre-crop"`` keeps the
square centre crop instead (the ``tiny`` preset), whose view is ``None``. ``load_view`` and ``view_name`` serve
both kinds, so the latent cache keys on (clip, view) whatever the mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from macs_bench.errors import MacsError

MODES = ("buckets", "centre-crop")
BASE = 512
STEP = 32


def bucket_sizes(base: int = BASE) -> list[tuple[int, int]]:
    """(height, width) of every bucket, in the release's order (square first); other bases scale the release's
    step (32 at 512) with them."""
    step = max(1, base * STEP // BASE)
    sizes = [(base, base)]
    for r in (base + step * i for i in range(-9, -1, 2)):
        sizes += [(r, base), (base, r)]
    return sizes


def nearest_bucket(height: int, width: int, sizes: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """The bucket whose aspect ratio h / w is nearest the image's (the first such, as ``min`` picks)."""
    return min(sizes, key=lambda s: abs(s[0] / s[1] - height / width))


def epoch_views(buckets: Sequence[tuple[int, int]], batch_size: int, seed: int, epoch: int, square: int
                ) -> tuple[list[int], list[tuple[int, int, bool]]]:
    """One epoch's item order and the view of each position, (height, width, flip).

    Whole batches of one bucket come in a shuffled order, then the leftovers of every bucket at ``square`` x ``square``
    (the release's ``get_mapping_table``, reshuffled each epoch); each view is flipped with p = 0.5. Everything is
    drawn from ``torch.Generator(seed + epoch)``, so a resumed run sees the same views.
    """
    generator = torch.Generator().manual_seed(seed + epoch)
    groups: dict[tuple[int, int], list[int]] = {}
    for index in torch.randperm(len(buckets), generator=generator).tolist():
        groups.setdefault(buckets[index], []).append(index)
    batches, leftovers = [], []
    for size in sorted(groups):
        members = groups[size]
        whole = len(members) - len(members) % batch_size
        batches += [(size, members[i:i + batch_size]) for i in range(0, whole, batch_size)]
        leftovers += members[whole:]
    order, sizes = [], []
    for k in torch.randperm(len(batches), generator=generator).tolist():
        size, members = batches[k]
        order += members
        sizes += [size] * len(members)
    order, sizes = order + leftovers, sizes + [(square, square)] * len(leftovers)
    flips = (torch.rand(len(order), generator=generator) < 0.5).tolist()
    return order, [(h, w, flip) for (h, w), flip in zip(sizes, flips)]


def image_size(path: Path) -> tuple[int, int]:
    """(height, width) of an image file, read from its header."""
    try:
        with Image.open(path) as img:
            return img.height, img.width
    except (OSError, ValueError) as exc:
        raise MacsError(f"{path}: cannot read image ({exc})") from None


def load_variant(path: Path, height: int, width: int, flip: bool) -> torch.Tensor:
    """The frame stretched to (height, width) as torchvision's ``Resize`` does it (bilinear, antialiased), flipped
    left-right if ``flip``, as [3, H, W] in [-1, 1]."""
    from torchvision.transforms.v2 import functional as TF

    try:
        with Image.open(path) as img:
            array = np.asarray(img.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError) as exc:
        raise MacsError(f"{path}: cannot read image ({exc})") from None
    pixels = torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 255.0
    pixels = TF.resize(pixels, [height, width], antialias=True)
    if flip:
        pixels = pixels.flip(-1)
    return pixels * 2.0 - 1.0


def load_image(path: Path, height: int, width: int) -> torch.Tensor:
    """An RGB image resized to cover (height, width), centre-cropped, as [3, H, W] in [-1, 1]."""
    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            scale = max(height / img.height, width / img.width)
            size = (max(width, round(img.width * scale)), max(height, round(img.height * scale)))
            img = img.resize(size, Image.BICUBIC)
            left, top = (size[0] - width) // 2, (size[1] - height) // 2
            img = img.crop((left, top, left + width, top + height))
            array = np.asarray(img, dtype=np.float32)
    except (OSError, ValueError) as exc:
        raise MacsError(f"{path}: cannot read image ({exc})") from None
    return torch.from_numpy(array).permute(2, 0, 1) / 127.5 - 1.0


def load_view(path: Path, view: tuple[int, int, bool] | None, height: int, width: int) -> torch.Tensor:
    """The pixels of one view of a frame, [3, H, W] in [-1, 1]: a bucket view (height, width, flip) stretched as
    ``load_variant`` does, or ``None``: the centre crop at ``height`` x ``width``."""
    return load_image(path, height, width) if view is None else load_variant(path, *view)


def view_name(view: tuple[int, int, bool] | None, height: int, width: int) -> str:
    """A file-name-safe name of the view: ``<h>x<w>-crop`` for the centre crop, ``<h>x<w>[-flip]`` for a bucket."""
    if view is None:
        return f"{height}x{width}-crop"
    return f"{view[0]}x{view[1]}{'-flip' if view[2] else ''}"
