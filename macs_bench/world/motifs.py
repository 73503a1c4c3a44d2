"""The world's visual motifs: each sound class is a (colour, shape) pair, and colours are shared.

Four colours times three shapes (disc, square, triangle) give the twelve classes, so every colour belongs to
three classes and every shape to four: only colour *and* shape together name a class. A frame draws its
clip's motifs in distinct cells of a 3 x 3 grid (no occlusion) on a grey ground.

Besides the true frames this module draws the cheats a judge must not be fooled by (the training negatives of
the scoring towers and the control rows): a flat tint of the motifs' colours (no shape), small colour dots,
the right colours in wrong shapes (ring, cross, diamond: no class has them) and every class's motif at once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from macs_bench.world.sounds import CLASSES

GROUND = (128, 128, 128)
COLOURS = {"red": (220, 40, 40), "blue": (40, 70, 220), "green": (40, 170, 60), "yellow": (230, 200, 30)}
SHAPES = ("disc", "square", "triangle")
WRONG_SHAPES = ("ring", "cross", "diamond")
GRID = 3


def motif_of(name: str) -> tuple[str, str]:
    """The class's (colour, shape): colours cycle fastest, so Hum, Buzz, Drone, Horn are the four discs."""
    index = CLASSES.index(name)
    return list(COLOURS)[index % len(COLOURS)], SHAPES[index // len(COLOURS)]


def draw_shape(draw: ImageDraw.ImageDraw, shape: str, box: tuple[int, int, int, int], colour) -> None:
    x0, y0, x1, y1 = box
    cx, cy, w = (x0 + x1) // 2, (y0 + y1) // 2, max(2, (x1 - x0) // 4)
    if shape == "disc":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    elif shape == "triangle":
        draw.polygon([(x0, y1), (cx, y0), (x1, y1)], fill=colour)
    elif shape == "ring":
        draw.ellipse(box, outline=colour, width=w)
    elif shape == "cross":
        draw.rectangle((cx - w // 2, y0, cx + w // 2, y1), fill=colour)
        draw.rectangle((x0, cy - w // 2, x1, cy + w // 2), fill=colour)
    elif shape == "diamond":
        draw.polygon([(cx, y0), (x1, cy), (cx, y1), (x0, cy)], fill=colour)
    else:
        raise ValueError(f"unknown motif shape {shape!r}")


def _boxes(n: int, rng: np.random.Generator, image_size: int, grid: int = GRID) -> list[tuple[int, int, int, int]]:
    """``n`` boxes in distinct random cells of a ``grid`` x ``grid`` layout, 55-90 % of a cell, jittered."""
    cell = image_size // grid
    cells = rng.permutation(grid * grid)[:n]
    boxes = []
    for c in cells:
        size = int(rng.integers(int(0.55 * cell), int(0.9 * cell) + 1))
        x = int(c % grid) * cell + int(rng.integers(0, cell - size + 1))
        y = int(c // grid) * cell + int(rng.integers(0, cell - size + 1))
        boxes.append((x, y, x + size - 1, y + size - 1))
    return boxes


def draw_motifs(motifs: Sequence[tuple[str, str]], rng: np.random.Generator, image_size: int = 64,
                grid: int = GRID) -> Image.Image:
    """(colour, shape) pairs drawn in distinct grid cells on the grey ground."""
    image = Image.new("RGB", (image_size, image_size), GROUND)
    draw = ImageDraw.Draw(image)
    for (colour, shape), box in zip(motifs, _boxes(len(motifs), rng, image_size, grid)):
        draw_shape(draw, shape, box, COLOURS[colour])
    return image


def draw_frame(names: Sequence[str], rng: np.random.Generator, image_size: int = 64) -> Image.Image:
    """A frame showing the classes' motifs in random cells at random sizes."""
    return draw_motifs([motif_of(n) for n in names], rng, image_size)


def draw_colour_only(names: Sequence[str], image_size: int = 64) -> Image.Image:
    """A flat image: the grey ground tinted halfway to the mean colour of the classes' motifs. No shape at all."""
    mean = np.mean([COLOURS[motif_of(n)[0]] for n in names], axis=0)
    tint = tuple(int(round(0.5 * g + 0.5 * m)) for g, m in zip(GROUND, mean))
    return Image.new("RGB", (image_size, image_size), tint)


def draw_dots(names: Sequence[str], rng: np.random.Generator, image_size: int = 64) -> Image.Image:
    """The motifs' colours as small dots (about 3 pixels at 32 x 32) where the motifs would be."""
    image = Image.new("RGB", (image_size, image_size), GROUND)
    draw = ImageDraw.Draw(image)
    dot = max(2, image_size * 3 // 32)
    for name, (x0, y0, x1, y1) in zip(names, _boxes(len(names), rng, image_size)):
        cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
        draw.rectangle((cx - dot // 2, cy - dot // 2, cx - dot // 2 + dot - 1, cy - dot // 2 + dot - 1),
                       fill=COLOURS[motif_of(name)[0]])
    return image


def draw_blobs(names: Sequence[str], rng: np.random.Generator, image_size: int = 64) -> Image.Image:
    """The motifs' colours as blurred blobs: colour where the motifs would be, no shape edges."""
    image = draw_frame(names, rng, image_size)
    return image.filter(ImageFilter.GaussianBlur(radius=image_size / 12))


def draw_wrong_shapes(names: Sequence[str], rng: np.random.Generator, image_size: int = 64) -> Image.Image:
    """The classes' colours in shapes no class has (ring, cross, diamond)."""
    motifs = [(motif_of(n)[0], WRONG_SHAPES[int(rng.integers(len(WRONG_SHAPES)))]) for n in names]
    return draw_motifs(motifs, rng, image_size)


def draw_all_motifs(rng: np.random.Generator, image_size: int = 64) -> Image.Image:
    """Every class's motif at once (a 4 x 4 grid, random order): a cheat that covers any label set."""
    order = [CLASSES[i] for i in rng.permutation(len(CLASSES))]
    return draw_motifs([motif_of(n) for n in order], rng, image_size, grid=4)
