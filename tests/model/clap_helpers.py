"""A small real RoBERTa (byte-level BPE) tokenizer folder, and the offline-broken one, for CLAP tests."""

from __future__ import annotations

import json
from pathlib import Path

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]


def write_tokenizer(folder: Path, merges: tuple[str, ...] = ("Ġ s", "o u", "n d")) -> Path:
    """vocab.json + merges.txt of a character-level byte BPE: every printable ASCII word tokenizes without <unk>."""
    folder.mkdir(parents=True, exist_ok=True)
    symbols = SPECIALS + [chr(b) for b in range(33, 127)] + ["Ġ"] + ["".join(m.split()) for m in merges] + ["<mask>"]
    vocab = {s: i for i, s in enumerate(dict.fromkeys(symbols))}
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    return folder


def write_specials_only_tokenizer(folder: Path) -> Path:
    """What transformers builds offline for 'roberta-base': its 5 special tokens and nothing else."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab = {s: i for i, s in enumerate(SPECIALS + ["<mask>"])}
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    return folder
