"""The user's own audio files, as ``separate`` and ``generate --audio`` take them: outputs are named by stem."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from macs_bench.errors import MacsError


def audio_inputs(files: Sequence[str | os.PathLike], command: str, outputs: str) -> list[Path]:
    """``files`` as paths (``~`` expanded), refused in one line when none is given, one is missing, or two share
    a stem (their ``outputs`` would collide)."""
    if not files:
        raise MacsError(f"{command}: no audio files given")
    paths = [Path(f).expanduser() for f in files]
    for path in paths:
        if not path.is_file():
            raise MacsError(f"{path}: audio file not found")
    stems = [p.stem for p in paths]
    twins = sorted({s for s in stems if stems.count(s) > 1})
    if twins:
        raise MacsError(f"{command}: several inputs share the name {twins[0]!r}; their {outputs} would collide")
    return paths
