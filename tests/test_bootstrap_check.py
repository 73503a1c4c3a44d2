"""`tools/bootstrap.sh --check` says what it found and what a run would install, and changes nothing."""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "tools" / "bootstrap.sh"
PYTHON = os.environ.get("MACS_PYTHON", "python3.11")
pytestmark = pytest.mark.skipif(shutil.which(PYTHON) is None or shutil.which("ffmpeg") is None,
                                reason="needs the bootstrap's interpreter and ffmpeg")


def check(venv: Path):
    env = {**os.environ, "MACS_VENV": str(venv), "MACS_PYTHON": PYTHON, "MACS_TORCHSORT_CUDA": "0"}
    return subprocess.run(["bash", str(SCRIPT), "--check"], capture_output=True, text=True, env=env, timeout=60)


def fake_venv(tmp_path: Path) -> Path:
    """A folder the script takes for a venv: a working bin/python and the stamp of the current inputs, restated
    here as the script computes it (the three files, `python -V`, the torchsort flavour)."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    version = subprocess.run([PYTHON, "-V"], capture_output=True, text=True).stdout
    files = ["pyproject.toml", "constraints.txt", "tools/bootstrap.sh"]
    data = b"".join((REPO / f).read_bytes() for f in files) + version.encode() + b"cuda=0\n"
    (venv / ".macs-stamp").write_text(hashlib.sha256(data).hexdigest() + "\n")
    lines = [f"{f} {hashlib.sha256((REPO / f).read_bytes()).hexdigest()}" for f in files]
    lines += [f"python {version.strip().replace(' ', '-')}", "torchsort CPU-only"]
    (venv / ".macs-inputs").write_text("\n".join(lines) + "\n")
    return venv


def test_check_reports_up_to_date(tmp_path):
    venv = fake_venv(tmp_path)
    out = check(venv)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"venv {venv}: up to date" in out.stdout and "a run would install nothing" in out.stdout
    assert "ffmpeg: " in out.stdout


def test_check_names_what_changed_and_what_would_be_installed(tmp_path):
    venv = fake_venv(tmp_path)
    before = sorted(p.name for p in venv.iterdir())
    inputs = venv / ".macs-inputs"
    inputs.write_text(inputs.read_text().replace("pyproject.toml ", "pyproject.toml 0", 1))
    (venv / ".macs-stamp").write_text("an older stamp\n")
    out = check(venv)
    assert out.returncode == 1
    assert "out of date (changed: pyproject.toml)" in out.stdout
    assert "a run would reinstall torch and torchvision (constraints.txt), torchsort (CPU-only)" in out.stdout
    assert sorted(p.name for p in venv.iterdir()) == before  # nothing installed or removed

    missing = check(tmp_path / "none")
    assert missing.returncode == 1 and "missing; a run would create it" in missing.stdout
    assert not (tmp_path / "none").exists()
