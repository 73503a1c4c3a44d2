"""`macs-bench score` and `macs-bench weights` as a user runs them."""

import json
import os
import subprocess
import sys
from pathlib import Path

from scoring_helpers import make_scoring_case

BIN = Path(sys.executable).parent / "macs-bench"


def run(*args, home):
    env = {**os.environ, "MACS_HOME": str(home)}
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, env=env, timeout=300)


def test_score_command_writes_results(tmp_path):
    case = make_scoring_case(tmp_path, n=6)
    out = run("score", "--manifest", str(case.manifest), "--pred", str(case.pred), "--media", str(case.media),
              "--out", str(tmp_path / "r.json"), "--model-name", "demo", "--preset", "tiny", "--fold", "0",
              home=tmp_path / "home")
    assert out.returncode == 0, out.stderr
    assert "ais_z" in out.stdout and "not comparable with the paper" in out.stdout
    assert json.loads((tmp_path / "r.json").read_text())["comparable_with_paper"] is False
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["n"] == 3 and result["fold"] == 0 and result["model"] == "demo"
    assert (tmp_path / "r.per_sample.csv").read_text().count("\n") == 4
    assert list((tmp_path / "home" / "features").iterdir())  # the default cache lives under MACS_HOME


def test_paper_preset_offline_says_how_to_fetch(tmp_path):
    case = make_scoring_case(tmp_path, n=4)
    out = run("score", "--manifest", str(case.manifest), "--pred", str(case.pred), "--media", str(case.media),
              "--out", str(tmp_path / "r.json"), "--model-name", "m", home=tmp_path / "home")
    assert out.returncode == 2
    (line,) = out.stderr.strip().splitlines()
    # every missing entry at once, in one fetch command, not only the first
    assert "missing weights inception-2015-12-05, clip-vit-b-32-openai, wav2clip;" in line
    assert line.endswith("macs-bench weights fetch inception-2015-12-05 clip-vit-b-32-openai wav2clip")
    assert not (tmp_path / "r.json").exists()


def test_weights_list_and_verify(tmp_path):
    listed = run("weights", "list", home=tmp_path)
    assert listed.returncode == 0 and "inception-2015-12-05" in listed.stdout
    checked = run("weights", "verify", "wav2clip", home=tmp_path)
    assert checked.returncode == 0 and "missing" in checked.stdout
    bad = tmp_path / "weights" / "inception-2015-12-05.pt"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not the weights")
    checked = run("weights", "verify", "inception-2015-12-05", home=tmp_path)
    assert checked.returncode == 1 and "corrupt" in checked.stdout


def test_score_command_extras_and_intervals(tmp_path):
    case = make_scoring_case(tmp_path, n=6)
    args = ["score", "--manifest", str(case.manifest), "--pred", str(case.pred), "--media", str(case.media),
            "--out", str(tmp_path / "r.json"), "--model-name", "demo", "--preset", "tiny"]
    out = run(*args, "--metrics", "coverage,prdc_inception", "--bootstrap", "10", home=tmp_path / "home")
    assert out.returncode == 0, out.stderr
    assert "source_coverage" in out.stdout and "95% interval" in out.stdout
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["intervals"]["rounds"] == 10 and "precision_inception" in result["metrics"]
    bad = run(*args, "--metrics", "fid2", home=tmp_path / "home")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "unknown 'fid2'" in bad.stderr
