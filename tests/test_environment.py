"""The set-up the README promises: pinned torch, a working torchsort, ffmpeg, an idempotent bootstrap."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
IN_REPO_VENV = Path(sys.prefix).resolve() == (REPO / ".venv").resolve()


def test_macs_model_env_reports_working_stack():
    out = subprocess.run([str(Path(sys.executable).parent / "macs-model"), "env"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["torchsort_cpu_soft_rank"] == [3.0, 1.0, 2.0]
    assert report["ffmpeg"] and report["ffmpeg_version"].startswith("ffmpeg version")
    if IN_REPO_VENV:
        assert report["torch"].split("+")[0] == "2.14.1"


@pytest.mark.skipif(not IN_REPO_VENV, reason="checks the repository's own .venv")
def test_bootstrap_has_nothing_left_to_do():
    """After `make test` set the venv up, a second bootstrap would install nothing (checked without installing)."""
    out = subprocess.run(["bash", str(REPO / "tools" / "bootstrap.sh"), "--check"], capture_output=True, text=True,
                         timeout=120, env={k: v for k, v in os.environ.items() if k != "MACS_VENV"})
    assert out.returncode == 0, "tools/bootstrap.sh would reinstall: the stamp does not match " + out.stderr
