"""A score result as a typed object: what ``score`` returns, writes and the leaderboard reads (torch-free).

On disk a result is the JSON ``macs-bench score --out`` writes plus ``<stem>.per_sample.csv`` beside it; both
formats are unchanged. :class:`ScoreResult` holds the headline fields, the metrics, the per-sample table as a
pandas DataFrame and everything else (encoders, seeds, config, hashes, timings) as ``provenance``; the JSON
fields also read as a mapping (``result["n"]``), as the plain dict ``score`` used to return.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from macs_bench.errors import MacsError
from macs_bench.io import atomic_write_bytes, atomic_write_text, dumps_json
from macs_bench.metric_spec import PAPER_METRICS

HEAD = ("model", "dataset", "fold", "split", "n", "metrics", "directions")  # the JSON's first keys, in order
REQUIRED = ("model", "dataset", "fold", "n", "metrics", "metric_version", "encoders", "comparable_with_paper")


@dataclass
class ScoreResult(Mapping):
    """One model's score on one fold / split / whole set."""

    model: str
    dataset: str | None
    fold: int | None
    split: str | None
    n: int
    metrics: dict[str, float | None]
    directions: dict[str, str] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)  # every other JSON field, in file order
    per_sample: Any = None  # pandas DataFrame indexed by sample_id, or None when not loaded
    source: str = "<memory>"  # the file it was read from
    features: dict[str, Any] | None = None  # per-sample feature matrices (gen_*/gt_*), saved as a sidecar .npz

    # ---- the JSON record
    def to_dict(self) -> dict[str, Any]:
        head = {"model": self.model, "dataset": self.dataset, "fold": self.fold, "split": self.split, "n": self.n,
                "metrics": self.metrics, "directions": self.directions}
        return {**head, **self.provenance}

    def to_json(self) -> str:
        """The JSON text ``macs-bench score`` writes (stable key order, byte-identical on rewrite)."""
        return dumps_json(self.to_dict())

    @classmethod
    def from_dict(cls, data: Any, source: str = "<memory>") -> ScoreResult:
        """Check that ``data`` is a macs score result; one MacsError naming ``source`` and the problem if not."""
        check_record(data, source)
        head = {key: data.get(key) for key in HEAD}
        head["directions"] = head["directions"] or {}
        rest = {k: v for k, v in data.items() if k not in HEAD}
        return cls(**head, provenance=rest, source=source)

    @classmethod
    def from_json(cls, text_or_path: str | os.PathLike) -> ScoreResult:
        """From JSON text, or from a result file (then its ``.per_sample.csv`` too, when present)."""
        if isinstance(text_or_path, str) and text_or_path.lstrip().startswith("{"):
            return cls.from_dict(_loads(text_or_path, "<text>"), "<text>")
        path = Path(text_or_path).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise MacsError(f"{path}: cannot read ({exc.strerror})") from None
        except UnicodeDecodeError as exc:
            raise MacsError(f"{path}: not a macs score result (not UTF-8 text, byte {exc.start})") from None
        result = cls.from_dict(_loads(text, str(path)), str(path))
        table = per_sample_path(path)
        if table.is_file():
            result.per_sample = read_per_sample(table)
        return result

    def save(self, out: str | os.PathLike) -> None:
        """Write the JSON and, when there is a per-sample table, ``<stem>.per_sample.csv``, and when there are
        features, ``<stem>.features.npz`` (its name and sha256 recorded in the JSON's ``features_file``), each
        atomically."""
        out = Path(out).expanduser()
        try:
            if self.per_sample is not None:
                atomic_write_text(per_sample_path(out), per_sample_csv(self.per_sample))
            if self.features:
                blob = features_npz(self.features, list(self.per_sample.index) if self.per_sample is not None
                                    else [])
                atomic_write_bytes(features_path(out), blob)
                self.provenance["features_file"] = {"name": features_path(out).name,
                                                    "sha256": hashlib.sha256(blob).hexdigest(),
                                                    "keys": sorted(self.features)}
            atomic_write_text(out, self.to_json())
        except OSError as exc:
            raise MacsError(f"{exc.filename or out}: cannot write the result ({exc.strerror})") from None

    # ---- what the leaderboard reads
    def load_features(self) -> dict[str, Any] | None:
        """The per-sample features of the sidecar ``features_file`` (checked against its sha256), with
        ``sample_ids``; None when the result records none. One MacsError naming the file when it is absent or
        changed."""
        if self.features is not None:
            return self.features
        record = self.provenance.get("features_file")
        if not record or self.source.startswith("<"):
            return None
        path = Path(self.source).with_name(record["name"])
        try:
            blob = path.read_bytes()
        except OSError as exc:
            raise MacsError(f"{path}: cannot read the result's features ({exc.strerror})") from None
        if hashlib.sha256(blob).hexdigest() != record["sha256"]:
            raise MacsError(f"{path}: sha256 differs from the one {self.source} records; the features changed")
        import numpy as np

        with np.load(io.BytesIO(blob), allow_pickle=False) as data:
            self.features = {k: data[k] for k in data.files}
        return self.features

    @property
    def row(self) -> dict[str, Any]:
        """How a leaderboard shows this result: ``kind`` model | control, ``source`` computed | quoted,
        ``may_have_seen_test`` (None: unknown), ``note``; absent fields mean a computed model row."""
        given = self.provenance.get("row") or {}
        return {"kind": given.get("kind", "model"), "source": given.get("source", "computed"),
                "may_have_seen_test": given.get("may_have_seen_test"), "note": given.get("note", "")}

    @property
    def comparable_with_paper(self) -> bool:
        return self.provenance["comparable_with_paper"]

    @property
    def warnings(self) -> list[str]:
        return self.provenance.get("warnings", [])

    @property
    def signature_fields(self) -> dict[str, Any]:
        """What must agree for two results to be averaged or ranked together."""
        config = self.provenance.get("config") or {}
        out: dict[str, Any] = {"metric_version": self.provenance["metric_version"], "preset": config.get("preset")}
        for knob in ("kid_subsets", "kid_subset_size", "kid_seed"):  # they change KID's value
            if knob in config:
                out[f"config.{knob}"] = config[knob]
        for name, version in sorted((self.provenance.get("extra_metric_versions") or {}).items()):
            out[f"extra_metric_versions.{name}"] = version
        encoders = self.provenance["encoders"]
        for name in sorted(encoders):
            out[f"encoders.{name}.weights"] = encoders[name]["weights"]  # first: a weights change changes the id
            out[f"encoders.{name}.id"] = encoders[name]["id"]
        return out

    @property
    def signature(self) -> str:
        """The first 8 hex digits of the sha256 of :attr:`signature_fields` (canonical JSON)."""
        blob = json.dumps(self.signature_fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:8]

    @property
    def data(self) -> dict[str, Any]:
        return self.to_dict()

    # ---- read access to the JSON fields, as the dict ``score`` returned before
    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())

    __eq__ = object.__eq__
    __hash__ = object.__hash__


def _loads(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise MacsError(f"{source}: not a macs score result (invalid JSON: {exc})") from None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# (key, check, what it must be) for the typed fields of a result
_CHECKS = (
    ("model", lambda v: isinstance(v, str) and bool(v.strip()), "a non-empty string"),
    ("dataset", lambda v: v is None or isinstance(v, str), "a string"),
    ("fold", lambda v: v is None or _is_int(v), "an integer or null"),
    ("split", lambda v: v is None or isinstance(v, str), "a string or null"),
    ("n", lambda v: _is_int(v) and v >= 0, "a non-negative integer"),
    ("metrics", lambda v: isinstance(v, dict), "an object"),
    ("metric_version", lambda v: isinstance(v, str), "a string"),
    ("encoders", lambda v: isinstance(v, dict) and bool(v), "a non-empty object"),
    ("comparable_with_paper", lambda v: isinstance(v, bool), "true or false"),
    ("config", lambda v: v is None or isinstance(v, dict), "an object"),
)


def check_record(data: Any, source: str) -> None:
    """One MacsError naming ``source`` and the first problem unless ``data`` is a score result record."""

    def bad(why: str) -> MacsError:
        return MacsError(f"{source}: not a macs score result ({why})")

    if not isinstance(data, dict):
        raise bad(f"a JSON {type(data).__name__}, not an object")
    for key in REQUIRED:
        if key not in data:
            raise bad(f"no {key!r}")
    for key, ok, what in _CHECKS:
        if not ok(data.get(key)):
            raise bad(f"{key!r} must be {what}")
    for m in PAPER_METRICS:
        if m not in data["metrics"]:
            raise bad(f"no metric {m!r}")
        if data["metrics"][m] is not None and not _is_number(data["metrics"][m]):
            raise bad(f"metric {m!r} is {data['metrics'][m]!r}, not a finite number or null")
    for name, enc in data["encoders"].items():
        if not isinstance(enc, dict) or not isinstance(enc.get("id"), str) or not isinstance(enc.get("weights"), str):
            raise bad(f"encoder {name!r} needs string 'id' and 'weights'")


# ---- the per-sample table


def features_path(out: str | os.PathLike) -> Path:
    out = Path(out)
    return out.with_name(out.stem + ".features.npz")


def features_npz(features: dict[str, Any], sample_ids: list[str]) -> bytes:
    """The sidecar's bytes: each feature matrix (float32, as the encoders give them) and the sample ids."""
    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, sample_ids=np.asarray(sample_ids, dtype=str),
             **{k: np.asarray(v, dtype=np.float32) for k, v in sorted(features.items())})
    return buf.getvalue()


def per_sample_path(out: str | os.PathLike) -> Path:
    out = Path(out)
    return out.with_name(out.stem + ".per_sample.csv")


def per_sample_frame(sample_ids: list[str], columns: dict[str, Any]):
    """The per-sample DataFrame: one row per sample id, one column per array (numbers or hashes)."""
    import pandas as pd

    frame = pd.DataFrame({k: list(v) for k, v in columns.items()}, index=pd.Index(sample_ids, name="sample_id"))
    return frame


def _cell(value) -> str:
    """A per-sample CSV cell: a hash as is, a number to 8 digits, an undefined number empty (JSON's null)."""
    if isinstance(value, str):
        return value
    return "" if value is None or math.isnan(value) else f"{value:.8g}"


def per_sample_csv(frame) -> str:
    """The CSV text of a per-sample table (the format ``score`` has always written)."""
    import csv

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["sample_id", *frame.columns])
    for sid, row in zip(frame.index, frame.itertuples(index=False)):
        writer.writerow([sid, *(_cell(v) for v in row)])
    return buf.getvalue()


def read_per_sample(path: str | os.PathLike):
    """A ``.per_sample.csv`` as a DataFrame indexed by sample id (hash columns as strings)."""
    import pandas as pd

    try:
        return pd.read_csv(path, index_col="sample_id", dtype={"sample_id": str},
                           converters={c: str for c in ("pred_sha256", "frame_sha256", "audio_sha256", "video_id")})
    except (OSError, ValueError) as exc:
        raise MacsError(f"{path}: cannot read the per-sample table ({exc})") from None


def load_results(path: str | os.PathLike, *, skip_generator: str | None = None) -> list[ScoreResult]:
    """Results from one JSON file, or from every ``*.json`` under a folder (recursively; other files skipped),
    sorted by path. Any JSON that is not a score result is an error naming it; JSON written by
    ``skip_generator`` (e.g. a leaderboard inside the folder) is skipped."""
    path = Path(path).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.json") if p.is_file())
        if not files:
            raise MacsError(f"{path}: no result JSON (*.json) under this folder")
    elif path.is_file():
        files = [path]
    else:
        raise MacsError(f"{path}: no such file or folder")
    results = []
    for file in files:
        try:
            data = _loads(file.read_text(encoding="utf-8"), str(file))
        except OSError as exc:
            raise MacsError(f"{file}: cannot read ({exc.strerror})") from None
        except UnicodeDecodeError as exc:
            raise MacsError(f"{file}: not a macs score result (not UTF-8 text, byte {exc.start})") from None
        if skip_generator and isinstance(data, dict) and data.get("generator") == skip_generator:
            continue
        results.append(ScoreResult.from_dict(data, str(file)))
    if not results:
        raise MacsError(f"{path}: no score result among its JSON files")
    return results
