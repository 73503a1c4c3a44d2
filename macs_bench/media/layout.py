"""The MEDIA folder's layout, in one place: where a sample's WAV and frames live, and the bookkeeping files.

::

    MEDIA/audio/<id>.wav            16 kHz mono clip
    MEDIA/frames/<id>.jpg           the first selected frame
    MEDIA/frames/<id>.s<k>.jpg      further selected frames (second k of the clip)
    MEDIA/frames_all/<id>/<kk>.jpg  every second's frame (fetch --frames all)
    MEDIA/ledger.sqlite, available.txt, fetch_report.json, .tmp/, .lock

Torch-free and side-effect free: every module that reads or writes a MEDIA folder asks this one for paths, so
the layout cannot drift between fetch, merge, export, scoring and training. ``~`` in the root is expanded.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

AUDIO_DIR = "audio"
FRAMES_DIR = "frames"
FRAMES_ALL_DIR = "frames_all"
LEDGER_NAME = "ledger.sqlite"
AVAILABLE_NAME = "available.txt"
REPORT_NAME = "fetch_report.json"
TMP_DIR = ".tmp"
LOCK_NAME = ".lock"


@dataclass(frozen=True)
class MediaLayout:
    """Paths inside one MEDIA folder (nothing is created or checked)."""

    root: Path

    def __init__(self, root: str | os.PathLike):
        object.__setattr__(self, "root", Path(root).expanduser())

    # -- one sample ------------------------------------------------------------------------------------------
    def audio(self, sample_id: str) -> Path:
        return self.root / AUDIO_DIR / f"{sample_id}.wav"

    def frame(self, sample_id: str) -> Path:
        """The sample's (first) selected frame: the ground-truth image scoring and export use."""
        return self.root / FRAMES_DIR / f"{sample_id}.jpg"

    def frames(self, sample_id: str, frame_seconds: Sequence[int]) -> list[Path]:
        """One path per selected second: the first is :meth:`frame`, second ``k`` after it ``<id>.s<k>.jpg``;
        empty for audio-only samples (no frame seconds)."""
        if not frame_seconds:
            return []
        return [self.frame(sample_id)] + [self.root / FRAMES_DIR / f"{sample_id}.s{k}.jpg"
                                          for k in frame_seconds[1:]]

    def sample_files(self, sample_id: str, frame_seconds: Sequence[int]) -> list[Path]:
        """Every file an ``ok`` sample has: its WAV, then its selected frames (``frames_all`` apart)."""
        return [self.audio(sample_id), *self.frames(sample_id, frame_seconds)]

    def frames_all(self, sample_id: str) -> Path:
        """The folder of every second's frame, ``00.jpg``, ``01.jpg``, ... (see :func:`all_frame_name`)."""
        return self.root / FRAMES_ALL_DIR / sample_id

    # -- the folder's bookkeeping ----------------------------------------------------------------------------
    @property
    def audio_dir(self) -> Path:
        return self.root / AUDIO_DIR

    @property
    def frames_dir(self) -> Path:
        return self.root / FRAMES_DIR

    @property
    def ledger(self) -> Path:
        return self.root / LEDGER_NAME

    @property
    def available(self) -> Path:
        return self.root / AVAILABLE_NAME

    @property
    def report(self) -> Path:
        return self.root / REPORT_NAME

    @property
    def tmp(self) -> Path:
        """Private work folders of running fetches; nothing in it ever counts as done."""
        return self.root / TMP_DIR

    @property
    def lock(self) -> Path:
        return self.root / LOCK_NAME


def all_frame_name(second: int) -> str:
    """The file name of second ``second`` inside :meth:`MediaLayout.frames_all`."""
    return f"{second:02d}.jpg"
