"""Which files a score run compares: predictions paired with ground truth by sample id (a manifest) or by file
stem (two folders). Every mismatch is found before any encoding and reported in one line."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from macs_bench.datasets.manifest import manifest_csv, manifest_rows, split_list
from macs_bench.errors import MacsError
from macs_bench.media.layout import MediaLayout
from macs_bench.metric_spec import AUDIO_SUFFIXES, IMAGE_SUFFIXES

MIN_SAMPLES = 3


@dataclass
class Pairing:
    sample_ids: list[str]
    predictions: list[Path]
    frames: list[Path]
    audio: list[Path]  # empty when a folder pairing has no audio (AIS is then undefined)
    missing: list[str]
    extra: list[str]
    labels: list[list[str]] = field(default_factory=list)  # each scored sample's label names
    classes: list[str] = field(default_factory=list)  # V: every label in the whole manifest, sorted
    videos: list[str] = field(default_factory=list)  # each sample's resampling unit (manifest ytid, else itself)
    unit: str = "sample"  # what ``videos`` holds: "video" (the manifest's ytid) or "sample"
    skipped: list[str] = field(default_factory=list)  # files in the folders that are not of a scored kind


def skipped_files(folder: Path, suffixes: tuple[str, ...]) -> list[str]:
    """Every visible file in ``folder`` that scoring does not read (another suffix), by path."""
    return [str(p) for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")
            and p.suffix.lower() not in suffixes]


def find_files(folder: Path, suffixes: tuple[str, ...], what: str) -> dict[str, Path]:
    """``{stem: path}`` of the files in ``folder`` with one of ``suffixes``; two files of one stem are an error."""
    if not folder.is_dir():
        raise MacsError(f"{folder}: {what} folder does not exist or is not a folder")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in suffixes:
            continue
        if not path.is_file():
            raise MacsError(f"{path}: a {what} must be a file")
        if path.stem in found:
            raise MacsError(f"{folder}: two {what}s for {path.stem} ({found[path.stem].name}, {path.name})")
        found[path.stem] = path
    return found


def _mismatch(missing: list[str], extra: list[str], missing_what: str, extra_what: str) -> str:
    parts = []
    if missing:
        parts.append(f"{len(missing)} {missing_what} (e.g. {', '.join(missing[:5])})")
    if extra:
        parts.append(f"{len(extra)} {extra_what} (e.g. {', '.join(extra[:5])})")
    return "; ".join(parts)


def pair_files(manifest_dir: Path, pred_dir: Path, media: Path, fold: int | None, allow_missing: bool,
               split: str | None = None) -> Pairing:
    """Match manifest samples with predictions and ground truth; missing or extra predictions are an error
    listing them, unless ``allow_missing`` (then the intersection is scored and the rest recorded)."""
    rows = manifest_rows(manifest_dir)
    by_id = {r["sample_id"]: split_list(r["labels"]) for r in rows}
    video_of = {r["sample_id"]: r.get("ytid") or r["sample_id"] for r in rows}
    counts = Counter(r["sample_id"] for r in rows)
    twice = [sid for sid, k in counts.items() if k > 1]
    if twice:
        raise MacsError(f"{manifest_csv(manifest_dir)}: sample_id {twice[0]} appears {counts[twice[0]]} times "
                        f"({len(twice)} duplicated ids); each sample must be listed once")
    all_ids = set(counts)  # predictions of other folds/splits are expected, not extra
    for column, value in (("fold", fold), ("split", split)):
        if value is not None:
            rows = [r for r in rows if r[column] == str(value)]
            if not rows:
                raise MacsError(f"{manifest_dir}: no sample with {column} {value}")
    wanted = [r["sample_id"] for r in rows]
    found = find_files(Path(pred_dir), IMAGE_SUFFIXES, "prediction")
    missing = [sid for sid in wanted if sid not in found]
    extra = sorted(set(found) - all_ids)
    if (missing or extra) and not allow_missing:
        raise MacsError(f"{pred_dir}: predictions do not match the samples: "
                        f"{_mismatch(missing, extra, 'missing', 'not in the manifest')}; "
                        "allow missing samples to score the intersection")
    ids = [sid for sid in wanted if sid in found]
    layout = MediaLayout(media)
    frames = [layout.frame(sid) for sid in ids]
    audio = [layout.audio(sid) for sid in ids]
    for kind, paths in (("ground-truth frame", frames), ("audio", audio)):
        absent = [p for p in paths if not p.is_file()]
        if absent:
            raise MacsError(f"{absent[0]}: {kind} missing ({len(absent)} in all); fetch media with "
                            "'macs-bench datasets fetch'")
    _enough(pred_dir, ids)
    classes = sorted({x for labels in by_id.values() for x in labels})
    return Pairing(ids, [found[sid] for sid in ids], frames, audio, missing, extra, [by_id[s] for s in ids],
                   classes, [video_of[s] for s in ids], "video", skipped_files(Path(pred_dir), IMAGE_SUFFIXES))


def pair_folders(pred: Path, ref: Path, audio: Path | None, allow_missing: bool) -> Pairing:
    """Pair the images of ``pred`` with those of ``ref`` (and the clips of ``audio``) by file stem; a stem
    without its partner is an error listing them, unless ``allow_missing`` (then the common stems are scored)."""
    preds = find_files(pred, IMAGE_SUFFIXES, "prediction")
    refs = find_files(ref, IMAGE_SUFFIXES, "reference image")
    clips = find_files(audio, AUDIO_SUFFIXES, "audio clip") if audio is not None else None
    common = set(preds) & set(refs) & (set(clips) if clips is not None else set(refs))
    missing = sorted((set(refs) | set(clips or {})) - set(preds))  # ground truth without a prediction
    extra = sorted(set(preds) - common)  # predictions without their ground truth
    if (missing or extra) and not allow_missing:
        unpaired = _mismatch(missing, extra, "without a prediction",
                             "predictions without a reference image" + (" and audio clip" if clips else ""))
        raise MacsError(f"{pred}: unpaired file stems: {unpaired}; pair files by name, or allow_missing to "
                        "score the common stems")
    ids = sorted(common)
    _enough(pred, ids)
    skipped = [*skipped_files(pred, IMAGE_SUFFIXES), *skipped_files(ref, IMAGE_SUFFIXES),
               *(skipped_files(audio, AUDIO_SUFFIXES) if audio is not None else [])]
    return Pairing(ids, [preds[s] for s in ids], [refs[s] for s in ids],
                   [clips[s] for s in ids] if clips is not None else [], missing, extra, videos=list(ids),
                   skipped=skipped)


def _enough(pred_dir: Path, ids: list[str]) -> None:
    if len(ids) < MIN_SAMPLES:
        raise MacsError(f"{pred_dir}: {len(ids)} scorable samples; the metrics need at least {MIN_SAMPLES}")
