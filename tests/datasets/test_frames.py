from decimal import Decimal

import pytest

from macs_bench.datasets.frames import centre_second, select_frame_second, whole_seconds


@pytest.mark.parametrize(
    "counts, expected",
    [
        ([0, 0, 0, 0, 0, 0, 0, 0, 0, 3], (9, False)),
        ([1] * 10, (4, True)),
        ([2, 0, 0, 0, 0, 0, 0, 0, 0, 2], (0, True)),
        ([0, 0, 0, 0, 0, 1, 0, 0, 1, 0], (5, True)),
        ([0, 0, 1, 0, 0, 0, 0, 1, 0, 0], (2, True)),
        ([0, 0, 1, 0, 0, 0, 1, 0, 0, 0], (6, True)),
    ],
)
def test_select_frame_second(counts, expected):
    assert select_frame_second(counts) == expected


@pytest.mark.parametrize(
    "start, end, second",
    [("0", "10", 4), ("30", "40", 4), ("101.8", "111.8", 4), ("0", "1", 0), ("0", "2", 0), ("0", "3", 1),
     ("0", "5.5", 2), ("7", "7.4", 0)],
)
def test_centre_second(start, end, second):
    assert centre_second(start, end) == second


def test_frames_never_past_the_end(manifests):
    for name in ("audioset-eval", "landscape", "llp-multi"):
        for s in manifests(name).samples:
            (second,) = s.frame_seconds
            assert second + 0.5 < Decimal(s.end) - Decimal(s.start), s.sample_id
            assert second < whole_seconds(s.start, s.end)
