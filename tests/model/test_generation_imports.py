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


def test_stage_code_reaches_the_world_only_through_the_registry():
    """No module of macs_model's separation, generation or cli imports ``macs_bench.world``; the world's hook fills
    the registries instead (its CLAP and its generator preset with the world's SD base as default)."""
    from macs_model.generation.config import GeneratorConfig
    from macs_model.registry import clap_factory, default_base

    files = [*(ROOT / "macs_model" / "separation").glob("*.py"), *(ROOT / "macs_model" / "generation").glob("*.py"),
             ROOT / "macs_model" / "cli.py"]
    offenders = []
    for file in files:
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom) else
                     [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            offenders += [f"{file.name}: {n}" for n in names if n.startswith("macs_bench.world")]
    assert offenders == []
    assert GeneratorConfig.preset("world").clap_dim == 64 and default_base("world").name == "sd"
    assert clap_factory("world") is not None and clap_factory("no-such-clap") is None
