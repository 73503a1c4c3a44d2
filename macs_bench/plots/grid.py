"""A qualitative sample grid: per sample, the ground-truth frame beside each model's image (PIL only).

Layout (pixels): a header strip of :data:`HEADER_H` with a caption per column (its name, wrapped onto two lines
of the tile's width), then per sample a caption strip of
:data:`CAPTION_H` (sample id and labels) above a row of square tiles; :data:`PAD` between and around tiles.
Width ``PAD + columns * (tile + PAD)``, height ``HEADER_H + rows * (CAPTION_H + tile + PAD)`` (see
:func:`grid_size`), where the columns are the ground truth plus one per model. Small images (the synthetic world's 32 px) are
upscaled nearest-neighbour by a whole factor, so their pixels stay sharp squares; larger ones are reduced (Lanczos).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from macs_bench.errors import MacsError
from macs_bench.io import atomic_write_bytes
from macs_bench.media.layout import MediaLayout
from macs_bench.metrics.spec import IMAGE_SUFFIXES

HEADER_H = 32  # two lines of the 12 px font
CAPTION_H = 30  # two lines of the 12 px font
PAD = 4
BACKGROUND = (255, 255, 255)
TILE_BACKGROUND = (235, 235, 235)
TEXT = (20, 20, 20)
GROUND_TRUTH = "ground truth"


def grid_size(n_rows: int, n_models: int, tile: int) -> tuple[int, int]:
    """(width, height) of a grid with ``n_rows`` samples and ``n_models`` model columns."""
    return PAD + (1 + n_models) * (tile + PAD), HEADER_H + n_rows * (CAPTION_H + tile + PAD)


def _font():
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=12)
    except TypeError:  # Pillow < 10.1: the bitmap font only
        return ImageFont.load_default()


def _fit(text: str, font, width: float) -> str:
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "...") > width:
        text = text[:-1]
    return text + "..."


def _wrap(text: str, font, width: float, max_lines: int = 2) -> list[str]:
    words, lines, current = text.split(" "), [], ""
    for i, word in enumerate(words):
        trial = f"{current} {word}".strip()
        if font.getlength(trial) <= width or not current:
            current = trial
            continue
        lines.append(current)
        current = word
        if len(lines) == max_lines - 1:
            current = " ".join(words[i:])
            break
    lines.append(current)
    return [_fit(line, font, width) for line in lines[:max_lines]]


def _predictions(name: str, folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise MacsError(f"{folder}: prediction folder of {name!r} does not exist or is not a folder")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            if path.stem in found:
                raise MacsError(f"{folder}: two images for {path.stem} ({found[path.stem].name}, {path.name})")
            found[path.stem] = path
    return found


def _tile(path: Path, tile: int):
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            factor = tile // max(img.size)
            if factor >= 1:
                img = img.resize((img.width * factor, img.height * factor), Image.Resampling.NEAREST)
            else:
                img = ImageOps.contain(img, (tile, tile), Image.Resampling.LANCZOS)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise MacsError(f"{path}: cannot read the image ({exc})") from None
    canvas = Image.new("RGB", (tile, tile), TILE_BACKGROUND)
    canvas.paste(img, ((tile - img.width) // 2, (tile - img.height) // 2))
    return canvas


def sample_grid(manifest_dir: str | os.PathLike, media: str | os.PathLike, predictions: dict[str, Path],
                out_png: str | os.PathLike, *, sample_ids: list[str] | None = None, n: int = 6,
                tile: int = 128) -> list[str]:
    """Write a PNG grid: per sample one row (ground-truth frame ``MEDIA/frames/<id>.jpg``, then each model's
    ``<id>.png|jpg`` in ``predictions`` order), captioned with the sample's labels from ``manifest.csv``.

    Samples: ``sample_ids`` when given, else the first ``n`` sorted manifest ids that every model has an image
    for. A missing image is an error naming it. Returns the sample ids shown.
    """
    from PIL import Image, ImageDraw

    from macs_bench.datasets.manifest import manifest_rows, split_list

    out = Path(out_png)
    if out.is_dir():
        raise MacsError(f"{out}: is a folder; give a file name such as grid.png")
    if not predictions:
        raise MacsError("a sample grid needs at least one model's predictions")
    if n < 1:
        raise MacsError(f"the number of samples must be >= 1, got {n}")
    if tile < 16:
        raise MacsError(f"the tile size must be >= 16 pixels, got {tile}")
    found = {name: _predictions(name, Path(folder)) for name, folder in predictions.items()}
    labels = {row["sample_id"]: split_list(row["labels"]) for row in manifest_rows(manifest_dir)}
    if sample_ids is not None:
        ids = list(sample_ids)
        if not ids:
            raise MacsError("no sample ids given")
        for sid in ids:
            if sid not in labels:
                raise MacsError(f"{sid}: not a sample of {manifest_dir}")
            for name, folder in predictions.items():
                if sid not in found[name]:
                    raise MacsError(f"{Path(folder) / sid}.png: no image of {name!r} for sample {sid} "
                                    f"(looked for {'/'.join(IMAGE_SUFFIXES)})")
    else:
        ids = [sid for sid in sorted(labels) if all(sid in f for f in found.values())][:n]
        if not ids:
            raise MacsError(f"{manifest_dir}: no sample has an image in every prediction folder "
                            f"({', '.join(str(p) for p in predictions.values())})")
    frames = [MediaLayout(media).frame(sid) for sid in ids]
    for frame in frames:
        if not frame.is_file():
            raise MacsError(f"{frame}: ground-truth frame missing; fetch media with 'macs-bench datasets fetch'")

    columns = [GROUND_TRUTH, *predictions]
    width, height = grid_size(len(ids), len(predictions), tile)
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    font = _font()
    for c, name in enumerate(columns):
        x = PAD + c * (tile + PAD)
        lines = _wrap(name, font, tile)
        top = (HEADER_H - 14 * len(lines)) // 2
        for k, text in enumerate(lines):
            draw.text((x + (tile - font.getlength(text)) / 2, top + 14 * k), text, fill=TEXT, font=font)
    for r, (sid, frame) in enumerate(zip(ids, frames)):
        y = HEADER_H + r * (CAPTION_H + tile + PAD)
        caption = f"{sid}: {', '.join(labels[sid]) or '(no labels)'}"
        for k, line in enumerate(_wrap(caption, font, width - 2 * PAD)):
            draw.text((PAD, y + 2 + 14 * k), line, fill=TEXT, font=font)
        paths = [frame, *(found[name][sid] for name in predictions)]
        for c, path in enumerate(paths):
            canvas.paste(_tile(path, tile), (PAD + c * (tile + PAD), y + CAPTION_H))
    buf = io.BytesIO()
    canvas.save(buf, format="PNG", optimize=False)
    try:
        atomic_write_bytes(out, buf.getvalue())
    except OSError as exc:
        raise MacsError(f"{exc.filename or out}: cannot write the grid ({exc.strerror})") from None
    return ids
