"""No import circle among stage 2's front modules (every import counted, lazy ones inside functions too)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODULES = ("macs_model.generation.api", "macs_model.generation.audio_to_image", "macs_model.reproduction",
           "macs_model.generation.release_import", "macs_model.run_folder", "macs_model.baselines.macs")


def _imports(module: str) -> set[str]:
    tree = ast.parse((ROOT / (module.replace(".", "/") + ".py")).read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n for n in names if n in MODULES}


def test_no_circle_among_generation_modules():
    graph = {m: _imports(m) for m in MODULES}

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        return any(n == target or (n not in seen and reaches(n, target, seen | {n})) for n in graph[start])

    circles = [m for m in MODULES if reaches(m, m, {m})]
    assert circles == [], {m: sorted(graph[m]) for m in circles}
