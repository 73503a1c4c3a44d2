"""A radar chart of leaderboard rows in the style of the paper's Fig. 1 (matplotlib, Agg backend)."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

from macs_bench.errors import MacsError
from macs_bench.io import atomic_write_bytes
from macs_bench.boards.rows import REF_MARK, Row
from macs_bench.metrics.spec import ARROWS, DIRECTIONS, LABELS, PAPER_METRICS as METRICS

RADAR_SIZE = 800  # pixels: the height, and the chart's square
LEGEND_WIDTH = 320  # pixels beside the chart for the legend


def radar_values(rows: list[Row], ranges: dict[str, tuple[float, float]] | None = None) -> list[list[float]]:
    """Per row, each metric on [0, 1] with 1 the best. With ``ranges`` (metric -> (worst, best)), a fixed axis:
    (v - worst) / (best - worst), clipped to [0, 1]. Without, min-max normalised across the rows, lower-is-better
    metrics inverted; a metric on which every row agrees is 1. A missing value is NaN."""
    out = [[math.nan] * len(METRICS) for _ in rows]
    for j, m in enumerate(METRICS):
        values = [r.mean.get(m) for r in rows]
        present = [v for v in values if v is not None]
        if not present:
            continue
        if ranges is not None and m in ranges:
            worst, best = ranges[m]
            for i, v in enumerate(values):
                if v is not None:
                    out[i][j] = min(1.0, max(0.0, (v - worst) / (best - worst))) if best != worst else math.nan
            continue
        lo, hi = min(present), max(present)
        for i, v in enumerate(values):
            if v is None:
                continue
            norm = 1.0 if hi == lo else (v - lo) / (hi - lo)
            out[i][j] = 1.0 - norm if DIRECTIONS[m] == "lower" and hi != lo else norm
    return out


def radar_png(rows: list[Row], path: str | os.PathLike, *, title: str | None = None,
              names: list[str] | None = None, size: int = RADAR_SIZE,
              ranges: dict[str, tuple[float, float]] | None = None, scale_note: str | None = None) -> Path:
    """A radar chart in the style of the paper's Fig. 1 (one axis per metric, values normalised across the rows,
    outward is better): the chart ``size`` x ``size`` pixels with its radial scale (0 at the centre, 1 at the
    rim) labelled, the legend in a column of ``LEGEND_WIDTH`` pixels beside it; written atomically (Agg)."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not rows:
        raise MacsError("a radar chart needs at least one row")
    names = names or [r.name + (REF_MARK if r.reference_only else "") for r in rows]
    values = radar_values(rows, ranges)
    dpi = 100
    width = size + LEGEND_WIDTH
    fig = Figure(figsize=(width / dpi, size / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    chart = size / width  # the chart's share of the width
    ax = fig.add_axes((0.12 * chart, 0.1, 0.76 * chart, 0.76), projection="polar")
    ax.set_theta_offset(math.pi / 2)  # FID at the top, clockwise
    ax.set_theta_direction(-1)
    angles = [2 * math.pi * j / len(METRICS) for j in range(len(METRICS))]
    cmap = matplotlib.colormaps["tab10" if len(rows) <= 10 else "tab20"]
    for i, (row, name, vals) in enumerate(zip(rows, names, values)):
        style = "--" if row.reference_only else ":" if row.paper and any(not r.paper for r in rows) else "-"
        color = cmap(i % cmap.N)
        ax.plot(angles + angles[:1], vals + vals[:1], style, color=color, linewidth=1.8, marker="o", markersize=3,
                label=name)
        if not row.reference_only:
            ax.fill(angles + angles[:1], [0 if math.isnan(v) else v for v in vals + vals[:1]], color=color,
                    alpha=0.06)
    ax.set_xticks(angles)
    ax.set_xticklabels([f"{LABELS[m]}{ARROWS[DIRECTIONS[m]]}" + (" (inv.)" if DIRECTIONS[m] == "lower" else "")
                        for m in METRICS], fontsize=11)
    ax.set_ylim(0, 1.05)
    ax.set_rorigin(-0.15)
    ax.set_yticks([0.25, 0.5, 0.75, 1.0])
    ax.set_yticklabels(["0.25", "0.5", "0.75", "1"], fontsize=8, color="0.35")
    ax.set_rlabel_position(180 / len(METRICS))  # the scale between the first two axes
    ax.tick_params(axis="x", pad=16)
    if title:
        fig.suptitle(title, fontsize=14, y=0.975)
    fig.legend(loc="center left", ncol=1, fontsize=10, frameon=False, bbox_to_anchor=(chart, 0.5))
    note = scale_note or ("fixed axis ranges" if ranges else "min-max normalised across rows")
    fig.text(0.01, 0.005, f"scale: 0 (centre) to 1 (rim), {note}; outward is better", ha="left", va="bottom",
             fontsize=8, color="0.4")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    path = Path(path)
    try:
        atomic_write_bytes(path, buf.getvalue())
    except OSError as exc:
        raise MacsError(f"{exc.filename or path}: cannot write the radar chart ({exc.strerror})") from None
    return path


