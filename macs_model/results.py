"""Typed results of the stage entry points: :class:`TrainSummary` (``train_separator``, ``train_generator``) and
:class:`Separation` (one per file of ``separate``). Each also reads as the mapping the functions used to return
(``summary["step"]``), so older callers keep working while new ones use attributes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class _RecordMapping(Mapping):
    record: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.record[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.record)

    def __len__(self) -> int:
        return len(self.record)


@dataclass(frozen=True, eq=False)  # compares as the record mapping
class TrainSummary(_RecordMapping):
    """Where a training run stands: steps done of the total, the last logged metrics, what it wrote."""

    run: Path
    step: int
    total_steps: int
    last_metrics: dict[str, float]
    samples: int  # clips (stage 1) or training samples (stage 2) used
    skipped: int  # manifest samples without the media they need
    checkpoint: str | None = None  # stage 1: the latest checkpoint
    adapter: str | None = None  # stage 2: the final adapter folder, once training has finished
    record: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def finished(self) -> bool:
        return self.step >= self.total_steps


@dataclass(frozen=True, eq=False)  # compares as the record mapping
class Separation(_RecordMapping):
    """One input's stems (``source-1.wav`` most significant), their CLAP similarities and provenance."""

    input: Path
    folder: Path
    input_sha256: str
    stems: list[dict[str, Any]]
    record: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def stem_files(self) -> list[Path]:
        return [self.folder / stem["file"] for stem in self.stems]

    @classmethod
    def from_record(cls, record: dict[str, Any], folder: Path) -> Separation:
        return cls(Path(record["input"]), Path(folder), record["input_sha256"], list(record["stems"]), record)
