"""YouTube segment identifiers: safe parsing of ``<YTID>_<start>_<end>`` and canonical sample ids.

YTIDs are 11 characters of ``[A-Za-z0-9_-]``: they may contain ``_`` and begin with ``-``, so names are split
from the right and never passed where a leading ``-`` could read as an option. Times are kept as exact decimal
strings (``"101.8"``, never ``101.80000000000001``).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

YTID_RE = re.compile(r"[A-Za-z0-9_-]{11}")


def is_ytid(value: str) -> bool:
    return YTID_RE.fullmatch(value) is not None


def normalise_seconds(value: str) -> str:
    """``"30.000"`` -> ``"30"``, ``"8.50"`` -> ``"8.5"``; raises ``ValueError`` for anything but a time >= 0."""
    try:
        number = Decimal(value.strip())
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None
    if not number.is_finite() or number < 0:
        raise ValueError(f"not a time in seconds: {value!r}")
    text = format(number.normalize(), "f")
    return text


def sample_id(ytid: str, start: str, end: str) -> str:
    """The canonical id of a segment, also its media file stem: ``<YTID>_<start>_<end>``."""
    return f"{ytid}_{start}_{end}"


def parse_segment(name: str, sep: str = "_") -> tuple[str, str, str]:
    """Split ``<YTID><sep><start><sep><end>`` into ``(ytid, start, end)``, times normalised.

    Raises ``ValueError`` with the reason when the name is not of that form.
    """
    parts = name.rsplit(sep, 2)
    if len(parts) != 3:
        raise ValueError(f"expected <YTID>{sep}<start>{sep}<end>, got {name!r}")
    ytid, start, end = parts
    if not is_ytid(ytid):
        raise ValueError(f"invalid YouTube id {ytid!r} in {name!r}")
    start, end = normalise_seconds(start), normalise_seconds(end)
    if Decimal(end) <= Decimal(start):
        raise ValueError(f"end {end} is not after start {start} in {name!r}")
    return ytid, start, end
