"""The model protocol: what any audio-to-image model implements to be generated and scored by the harness.

As lm-eval-harness owns its ``LM`` interface, the harness owns this one: a model is any object with
``generate(items, seed)``, ``provenance()`` and ``trained_ids()`` (``fit`` is optional). Torch-free: the
waveforms are numpy arrays, the images PIL images (or HxWx3 uint8 arrays).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

RowKind = Literal["model", "control"]
RowSource = Literal["computed", "quoted"]


def sample_seed(sample_id: str, seed: int = 0) -> int:
    """A seed for one sample: a hash of (seed, sample id), so it does not depend on batching or order (generation
    seeds, training windows)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{sample_id}".encode()).digest()[:8], "big") % (2**63)


@dataclass(frozen=True)
class Item:
    """One sample to draw: its id, its mono waveform [T] (float32) at ``sample_rate``, and its own seed
    (``sample_seed(sample_id, run seed)``, so an image does not depend on its batch). ``labels`` are the
    manifest's classes, given only to models that declare ``uses_labels`` (reference rows, never ranked)."""

    sample_id: str
    waveform: Any
    sample_rate: int
    seed: int
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class RowInfo:
    """How the leaderboard should treat the row a model produces (written as ``result["row"]``).

    ``may_have_seen_test``: the weights may have been trained on the evaluated clips (an imported release
    adapter, unless the evaluated ids are known to be held out); such rows are kept out of best marks."""

    kind: RowKind = "model"
    source: RowSource = "computed"
    may_have_seen_test: bool = False
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "source": self.source, "may_have_seen_test": self.may_have_seen_test,
                "note": self.note}


@runtime_checkable
class AudioToImageModel(Protocol):
    """Any audio-to-image model the harness can run.

    - ``generate(items, seed)``: one image per item, in order (PIL image or HxWx3 uint8 array); each item's own
      ``seed`` should decide its noise;
    - ``provenance()``: JSON-ready facts about the weights (ids, sha256s, licences) and what they were trained on;
    - ``trained_ids()``: every sample id the weights have seen (the runner refuses a fold that overlaps it);
      ``None`` when unknown (imported weights): the row is then stamped "may have seen the test clips" unless
      ``row_info()`` says otherwise (the evaluated ids are known to be held out).

    Optional: ``name`` (the row's model name), ``uses_labels`` (True: items carry the manifest's labels),
    ``row_info()`` (a :class:`RowInfo`), ``prepare(manifest, media, fold)`` (read what the benchmark declares,
    e.g. its label vocabulary; no training), ``fit(manifest, media, fold)`` (train on the other folds).
    """

    def generate(self, items: Sequence[Item], seed: int) -> list[Any]: ...

    def provenance(self) -> dict[str, Any]: ...

    def trained_ids(self) -> set[str] | None: ...


@dataclass
class ModelFacts:
    """What the runner reads off a model object, with the protocol's defaults filled in."""

    name: str
    uses_labels: bool
    row: RowInfo
    provenance: dict[str, Any] = field(default_factory=dict)
    trained: set[str] | None = None


def model_facts(model: Any, name: str | None = None) -> ModelFacts:
    """Check that ``model`` follows the protocol (one TypeError naming what is missing) and read its facts."""
    missing = [m for m in ("generate", "provenance", "trained_ids") if not callable(getattr(model, m, None))]
    if missing:
        raise TypeError(f"{type(model).__name__} is not an audio-to-image model: no {', '.join(missing)}() "
                        "(see macs_bench.models.AudioToImageModel)")
    trained = model.trained_ids()
    if callable(getattr(model, "row_info", None)):  # the model knows (e.g. the evaluated ids are held out)
        row = model.row_info()
    else:
        row = RowInfo(may_have_seen_test=trained is None,
                      note="training ids unknown: may have seen the test clips" if trained is None else "")
    return ModelFacts(name or getattr(model, "name", None) or type(model).__name__,
                      bool(getattr(model, "uses_labels", False)), row, dict(model.provenance()),
                      None if trained is None else set(trained))
