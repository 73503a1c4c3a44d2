"""Which second(s) of a clip its ground-truth frame comes from.

``frame_seconds`` are 0-based whole seconds from the clip start; the frame itself is to be taken from the
middle of that second by ``macs-bench datasets fetch``. One rule serves every dataset: the best-scoring second, ties to
the second nearest the clip centre, then the earlier one. With no per-second scores every second ties, which
gives the central second (second 4 of a 10 s clip, whose middle, 4.5 s, is the clip's centre).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from decimal import Decimal


def select_frame_second(scores: Sequence[int | float]) -> tuple[int, bool]:
    """``(second, was_tied)``: the argmax of per-second scores, ties to the centre, then earlier."""
    if not scores:
        raise ValueError("no per-second scores")
    best = max(scores)
    tied = [k for k, c in enumerate(scores) if c == best]
    centre = (len(scores) - 1) / 2
    return min(tied, key=lambda k: (abs(k - centre), k)), len(tied) > 1


def whole_seconds(start: str, end: str) -> int:
    """The number of whole seconds a clip spans (at least 1), so a selected second never runs past its end."""
    return max(1, math.floor(Decimal(end) - Decimal(start)))


def centre_second(start: str, end: str) -> int:
    """The central whole second of a clip with no per-second scores."""
    return select_frame_second([0] * whole_seconds(start, end))[0]


def frame_histogram(samples: Iterable) -> dict[str, int]:
    """How many samples take their (first) frame from each second: a summary for stats.json."""
    counts = Counter(s.frame_seconds[0] for s in samples if s.frame_seconds)
    return {str(k): counts[k] for k in sorted(counts)}
