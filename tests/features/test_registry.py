"""The encoder-preset registry: generic code never imports the synthetic world; the world registers itself."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from macs_bench.errors import MacsError
from macs_bench.features import encoders
from macs_bench.features.registry import EncoderPreset, get_preset, preset_names, register_preset

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def test_no_features_module_imports_the_world():
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "macs_bench" / "features").glob("*.py")
                 if any(m == "macs_bench.world" or m.startswith("macs_bench.world.") for m in _imports(p))]
    assert offenders == []


def test_world_preset_exists_only_once_the_world_is_imported():
    code = ("from macs_bench.features.registry import preset_names; a = preset_names(); "
            "import macs_bench.world.scoring; print(a, preset_names())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT).stdout
    before, after = out.strip().split(") (")
    assert "world" not in before and "'world'" in after


def test_registered_preset_builds_and_limits_its_encoders():
    seen = {}

    def build(names, weights, seed):
        seen.update(names=names, seed=seed)
        return {n: encoders.tiny(n, seed) for n in names}

    register_preset(EncoderPreset("test-only", build, "a test preset", provides=("inception", "clip")))
    try:
        built = encoders.build_encoders("test-only", seed=3, names=["clip"])
        assert list(built) == ["clip"] and seen == {"names": ["clip"], "seed": 3}
        with pytest.raises(MacsError, match="the test-only preset has no 'wav2clip' encoder"):
            encoders.build_encoders("test-only")
    finally:
        from macs_bench.features import registry
        registry._PRESETS.pop("test-only")
    assert {"paper", "random", "tiny"} <= set(preset_names())
    with pytest.raises(MacsError, match="unknown encoder preset 'huge'; choose one of paper, random, tiny"):
        get_preset("huge")
