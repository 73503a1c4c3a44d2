"""The light install: `pip install .` resolves no torch, and its tools (datasets, fetch, leaderboards) and the
notebook front door run without torch until a score runs."""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HEAVY_MODULES = ("torch", "torchvision", "torchaudio", "cleanfid", "open_clip", "transformers", "diffusers")


def _checker():
    spec = importlib.util.spec_from_file_location("check_light_install", REPO / "tools" / "check_light_install.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _python(tmp_path: Path, *code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "MACS_HOME": str(tmp_path / "home")}
    return subprocess.run([sys.executable, "-c", "".join(textwrap.dedent(c) for c in code)], capture_output=True,
                          text=True, cwd=tmp_path, env=env, timeout=120)


def _item(name, requires=(), requested=False):
    return {"metadata": {"name": name, "requires_dist": list(requires)}, "requested": requested}


def test_heavy_chains_name_what_pulls_torch_in():
    report = {"install": [
        _item("macs", ["typer>=0.12", "clean-fid>=0.1.35", "torch; extra == 'model'"], requested=True),
        _item("typer", ["click"]), _item("click"), _item("numpy"),
        _item("clean_fid", ["torch", "requests"]), _item("requests"),
        _item("torch", ["nvidia-cublas-cu12; platform_system == 'Linux'", "triton==3.0"]),
        _item("nvidia-cublas-cu12"), _item("Triton"),
    ]}
    chains = _checker().heavy_chains(report)
    assert ["macs", "clean-fid"] in chains
    assert ["macs", "clean-fid", "torch"] in chains
    assert ["macs", "clean-fid", "torch", "triton"] in chains
    assert {c[-1] for c in chains} == {"clean-fid", "torch", "triton", "nvidia-cublas-cu12"}
    assert _checker().heavy_chains({"install": [_item("macs", ["typer"], requested=True), _item("typer")]}) == []


def test_checker_fails_with_the_chain_on_a_heavy_report(monkeypatch, capsys):
    checker = _checker()
    monkeypatch.setattr(checker, "resolve", lambda project, extras: {"install": [
        _item("macs", ["clean-fid"], requested=True), _item("clean-fid", ["torch"]), _item("torch")]})
    assert checker.main([str(REPO)]) == 1
    err = capsys.readouterr().err
    assert "would install 2 torch package(s) among 3, pulled in by: macs -> clean-fid" in err
    assert err.count("\n") == 1


@pytest.mark.slow
def test_checker_says_in_one_line_when_pip_cannot_resolve(tmp_path, capsys):
    (tmp_path / "pyproject.toml").write_text(
        "[project]\nname = 'x'\nversion = '0'\ndependencies = ['no such package']\n")
    with pytest.raises(SystemExit) as exc:
        _checker().resolve(tmp_path, [])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: pip could not resolve {tmp_path} (the check needs the package index): ")
    assert err.count("\n") == 1


@pytest.mark.slow
def test_light_install_resolves_no_torch():
    """The CI check itself: pip's resolution of `pip install .` against the configured indexes (about 10 s)."""
    done = subprocess.run([sys.executable, str(REPO / "tools" / "check_light_install.py"), str(REPO)],
                          capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr
    assert "no torch" in done.stdout


def test_front_door_and_clis_import_no_torch(tmp_path):
    import macs_bench

    names = [n for n in macs_bench.__all__ if n != "__version__"]
    done = _python(tmp_path, f"""
        import json, sys
        from macs_bench import {", ".join(names)}
        import macs_bench.cli, macs_model.cli
        import macs_model
        print(json.dumps([m for m in {HEAVY_MODULES!r} if m in sys.modules]))
        """)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


BLOCK_HEAVY = f"""
    import importlib.abc, sys

    class NoTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {HEAVY_MODULES!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}} (blocked: the light install has no torch)")

    sys.meta_path.insert(0, NoTorch())
"""


def test_light_tools_run_without_torch(tmp_path):
    """Without torch installed at all: build a manifest, read it, render a paper table, show the help."""
    done = _python(tmp_path, BLOCK_HEAVY, """
        from macs_bench.cli import main

        for args in (["--help"], ["datasets", "build", "landscape", "--out", "runs/landscape"],
                     ["leaderboard", "paper", "--table", "1", "--out", "board"], ["datasets", "fetch", "--help"]):
            sys.argv = ["macs-bench", *args]
            try:
                main()
            except SystemExit as exc:
                assert exc.code in (0, None), (args, exc.code)
        from macs_bench import read_manifest
        print(len(read_manifest("runs/landscape")))
        """)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "1000"
    assert (tmp_path / "board" / "leaderboard.md").exists()


def test_the_blocker_blocks(tmp_path):
    """The test above would notice a torch import: the same blocker makes scoring's encoders fail."""
    done = _python(tmp_path, BLOCK_HEAVY, """
        import macs_bench.features.encoders
        """)
    assert done.returncode != 0 and "blocked: the light install has no torch" in done.stderr
