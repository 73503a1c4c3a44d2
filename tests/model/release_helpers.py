"""A state dict with the release checkpoints' key names and shapes (tests/model/data/release-checkpoint-keys.txt,
copied from the project notes, which list the authors' files key by key)."""

from __future__ import annotations

import re
from pathlib import Path

import torch

KEY_FILE = Path(__file__).resolve().parent / "data" / "release-checkpoint-keys.txt"


def release_shapes(section: str = "separator_FSD50K_full.pt") -> tuple[dict, dict]:
    """({key: shape}, {key: dtype}) of one section of the key list."""
    shapes, dtypes, inside = {}, {}, False
    for line in KEY_FILE.read_text(encoding="utf-8").splitlines():
        if line.startswith("# release"):
            inside = section in line
            continue
        match = re.fullmatch(r"(\S+) \[([\d, ]*)\] (\w+).*", line.strip())
        if inside and match:
            shapes[match[1]] = tuple(int(d) for d in match[2].split(",") if d.strip())
            dtypes[match[1]] = getattr(torch, match[3])
    assert shapes, f"no keys for {section} in {KEY_FILE}"
    return shapes, dtypes


def release_state_dict(seed: int = 2) -> dict[str, torch.Tensor]:
    """Random tensors under every non-CLAP key of separator_FSD50K_full.pt."""
    shapes, dtypes = release_shapes()
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        if dtypes[key] == torch.int64:
            state[key] = torch.randint(0, 1000, shape, generator=gen)
        else:
            state[key] = torch.rand(shape, generator=gen) + 0.5
    return state
