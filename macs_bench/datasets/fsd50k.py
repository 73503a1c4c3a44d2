"""FSD50K: separator pre-training lists with the paper's label processing.

Labels come from FSD50K's ``collection`` metadata (AudioSet MIDs). Parent classes are dropped (a label that
is an ontology ancestor of another label of the clip), names come from the ontology, and the CLAP prompts are
"The sound of <name>" padded with "Noise" to M slots (paper section 3.2).
"""

from __future__ import annotations

from pathlib import Path

from macs_bench.datasets.manifest import LIST_SEP, Manifest, Sample
from macs_bench.datasets.metadata import MetadataStore, read_table
from macs_bench.datasets.ontology import Ontology
from macs_bench.errors import MetadataError

COLLECTIONS = {"dev": "macs/collection_dev.csv", "eval": "macs/collection_eval.csv"}
ONTOLOGY = "audioset/ontology.json"
FILES = (*COLLECTIONS.values(), ONTOLOGY)
PROMPT_PREFIX = "The sound of "
PAD_LABEL = "Noise"
DEFAULT_NUM_SOURCES = 6
PAPER = {"n_samples": {"dev": 40966, "eval": 10231}, "n_classes": 200}


def clap_prompts(labels: list[str] | tuple[str, ...], num_sources: int) -> list[str]:
    """The paper's text targets: "The sound of <label>" per label, padded with "Noise" to ``num_sources``."""
    prompts = [PROMPT_PREFIX + label for label in labels[:num_sources]]
    return prompts + [PAD_LABEL] * (num_sources - len(prompts))


def read_collection(path: Path) -> list[tuple[int, str, list[str]]]:
    """``(line, fname, mids)`` per clip of an FSD50K collection CSV (mids may be empty)."""
    rows = []
    for lineno, (fname, labels, mids) in read_table(path, ("fname", "labels", "mids")):
        if not fname.isdigit():
            raise MetadataError(f"{path}:{lineno}: clip id {fname!r} is not a number")
        mid_list = [m.strip() for m in mids.split(",") if m.strip()]
        label_list = [x for x in labels.split(",") if x.strip()]
        if len(mid_list) != len(label_list):
            raise MetadataError(f"{path}:{lineno}: {len(label_list)} labels but {len(mid_list)} MIDs")
        rows.append((lineno, fname, list(dict.fromkeys(mid_list))))
    return rows


def build(store: MetadataStore, *, num_sources: int = DEFAULT_NUM_SOURCES) -> Manifest:
    store.verify(FILES)
    ontology = Ontology.load(store.path(ONTOLOGY))
    samples = []
    unlabelled: dict[str, int] = {}
    truncated: dict[str, int] = {}
    parents_dropped = 0
    for split, rel in COLLECTIONS.items():
        path = store.path(rel)
        unlabelled[split] = truncated[split] = 0
        for lineno, fname, mids in read_collection(path):
            unknown = [m for m in mids if m not in ontology]
            if unknown:
                raise MetadataError(f"{path}:{lineno}: MID {unknown[0]} is not in the ontology")
            if not mids:
                unlabelled[split] += 1
                continue
            leaves = ontology.drop_ancestors(mids)
            parents_dropped += len(mids) - len(leaves)
            if len(leaves) > num_sources:
                truncated[split] += 1
            leaves = leaves[:num_sources]
            labels = tuple(ontology.name(m) for m in leaves)
            samples.append(
                Sample(
                    sample_id=f"{split}_{fname}",
                    labels=labels,
                    mids=tuple(leaves),
                    split=split,
                    extra=(("prompts", LIST_SEP.join(clap_prompts(labels, num_sources))),),
                )
            )
    stats = {
        "label_processing": {
            "rule": "drop labels that are ontology ancestors of another label of the clip; names from the "
            f"ontology; prompts '{PROMPT_PREFIX}<name>' padded with '{PAD_LABEL}' to M",
            "num_sources": num_sources,
            "parent_labels_dropped": parents_dropped,
            "clips_truncated_to_M": truncated,
            "clips_without_labels_dropped": unlabelled,
        },
        "paper": PAPER,
    }
    return Manifest("fsd50k", samples, stats=stats)

