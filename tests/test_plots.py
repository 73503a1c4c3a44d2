"""Plots for reading small synthetic images: the grid upscales nearest-neighbour and captions every column; the
radar keeps its legend in a column beside the chart and labels its radial scale."""

from __future__ import annotations

from PIL import Image

from macs_bench.boards.rows import Row
from macs_bench.plots.grid import HEADER_H, PAD, sample_grid
from macs_bench.boards.radar import LEGEND_WIDTH, RADAR_SIZE, radar_png


def test_grid_upscales_small_images_nearest_neighbour(tmp_path):
    from macs_bench.datasets.manifest import COLUMNS

    (tmp_path / "manifest").mkdir()
    (tmp_path / "manifest" / "manifest.csv").write_text(",".join(COLUMNS) + "\ns1,,,,dog,,2,,0,test\n")
    (tmp_path / "media" / "frames").mkdir(parents=True)
    checker = Image.new("RGB", (4, 4))
    for x in range(4):
        for y in range(4):
            checker.putpixel((x, y), (250, 10, 10) if (x + y) % 2 else (10, 10, 250))
    checker.save(tmp_path / "media" / "frames" / "s1.jpg", quality=100)
    (tmp_path / "a long model name").mkdir()
    checker.save(tmp_path / "a long model name" / "s1.png")
    out = tmp_path / "grid.png"
    sample_grid(tmp_path / "manifest", tmp_path / "media", {"a long model name": tmp_path / "a long model name"},
                out, tile=32)
    with Image.open(out) as img:
        rgb = img.convert("RGB")
    x0, y0 = PAD + 32 + PAD, HEADER_H + 30  # the model's tile
    tile = [[rgb.getpixel((x0 + x, y0 + y)) for x in range(32)] for y in range(32)]
    for y in range(32):
        for x in range(32):  # every 8 x 8 block is one source pixel, exactly (a smooth filter would blend)
            assert tile[y][x] == checker.getpixel((x // 8, y // 8)), (x, y)
    header = [rgb.getpixel((x, y)) for x in range(x0, x0 + 32) for y in range(HEADER_H)]
    lower_half = [rgb.getpixel((x, y)) for x in range(x0, x0 + 32) for y in range(HEADER_H // 2, HEADER_H)]
    assert any(p != (255, 255, 255) for p in header)
    assert any(p != (255, 255, 255) for p in lower_half)  # the caption wrapped onto a second line


def test_radar_legend_beside_the_chart(tmp_path):
    rows = [Row(f"row {i}", {"fid": 10.0 + i, "clip_fid": 5.0 - i, "kid": 0.1, "ais": 0.2 + i / 10,
                             "ais_z": 1.0, "iis": 0.5, "iis_z": i / 2}) for i in range(3)]
    path = radar_png(rows, tmp_path / "radar.png", title="t")
    with Image.open(path) as img:
        rgb = img.convert("RGB")
    assert rgb.size == (RADAR_SIZE + LEGEND_WIDTH, RADAR_SIZE)
    legend = rgb.crop((RADAR_SIZE, 0, RADAR_SIZE + LEGEND_WIDTH, RADAR_SIZE))
    colours = {c for _, c in legend.getcolors(1 << 20)}
    assert (31, 119, 180) in colours  # tab10's first line colour: the legend's handle, in the side column
    below = rgb.crop((0, RADAR_SIZE - 60, RADAR_SIZE, RADAR_SIZE - 20))
    assert (31, 119, 180) not in {c for _, c in below.getcolors(1 << 20)}  # no legend under the chart
