"""The harness: protocol checks, the leak refusal, per-sample seeds, resume, slicing, and loading by name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from macs_bench.errors import MacsError
from macs_bench.models import load_model, registered, run
from macs_bench.models.runner import fold_samples, merged_missing, slice_ids
from macs_bench.scoring import ScoreConfig

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))
from colour_model import ColourModel  # noqa: E402


def _config(tmp_path):
    return ScoreConfig(preset="world", cache_dir=str(tmp_path / "features"))


def _ids(world_fold, fold):
    return fold_samples(world_fold.manifest / "manifest.csv", fold, None).ids


def test_a_fold_the_model_trained_on_is_refused(world_fold, tmp_path):
    model = ColourModel(trained=_ids(world_fold, 1))
    with pytest.raises(MacsError, match="trained on 4 of the 4 samples of fold 1"):
        run(model, world_fold.manifest, world_fold.media, tmp_path / "r1", fold=1, config=_config(tmp_path),
            progress=False)
    assert model.calls == [] and not (tmp_path / "r1" / "images").exists()
    done = run(model, world_fold.manifest, world_fold.media, tmp_path / "r0", fold=0, config=_config(tmp_path),
               progress=False)
    assert done.samples == 4 and done.score.n == 4


def test_result_records_the_model_and_row(world_fold, tmp_path):
    done = run(ColourModel(unknown_training=True), world_fold.manifest, world_fold.media, tmp_path / "r",
               fold=2, config=_config(tmp_path), progress=False)
    data = json.loads(done.result_file.read_text())
    assert data["model"] == "colour" and data["fold"] == 2 and data["n"] == 4
    assert data["row"]["kind"] == "model" and data["row"]["source"] == "computed"
    assert data["row"]["may_have_seen_test"] is True  # training ids unknown: stamped
    assert data["model_provenance"] == {"weights": "none", "trained_on": []}
    assert data["generation"]["samples"] == 4 and data["generation"]["seed"] == 0


def test_images_are_seeded_per_sample_and_a_run_resumes(world_fold, tmp_path):
    config = _config(tmp_path)
    a = run(ColourModel(), world_fold.manifest, world_fold.media, tmp_path / "a", fold=3, batch_size=1,
            config=config, progress=False)
    b = run(ColourModel(), world_fold.manifest, world_fold.media, tmp_path / "b", fold=3, batch_size=3,
            config=config, progress=False)
    for png in sorted(a.images.glob("*.png")):
        assert png.read_bytes() == (b.images / png.name).read_bytes()
    other_seed = run(ColourModel(), world_fold.manifest, world_fold.media, tmp_path / "c", fold=3, seed=1,
                     config=config, progress=False)
    assert any(p.read_bytes() != (other_seed.images / p.name).read_bytes() for p in a.images.glob("*.png"))
    first = sorted(a.images.glob("*.png"))[0]
    first.unlink()
    model = ColourModel()
    again = run(model, world_fold.manifest, world_fold.media, tmp_path / "a", fold=3, config=config, progress=False)
    assert again.generated_now == 1 and model.calls == [[first.stem]]
    with pytest.raises(MacsError, match="another seed"):
        run(ColourModel(), world_fold.manifest, world_fold.media, tmp_path / "a", fold=3, seed=9, config=config,
            progress=False)


def test_slices_are_disjoint_and_cover_the_fold(tmp_path):
    ids = [f"s{i}" for i in range(11)]
    for count in (1, 2, 3, 4):
        slices = [slice_ids(ids, k, count) for k in range(count)]
        assert sorted(x for s in slices for x in s) == sorted(ids)
        assert sum(len(s) for s in slices) == len(ids)
    (tmp_path / "s1.png").write_bytes(b"x")
    assert merged_missing(tmp_path, ["s1", "s2"]) == ["s2"]
    with pytest.raises(ValueError):
        slice_ids(ids, 2, 2)


def test_not_a_model_is_named():
    from macs_bench.models import model_facts

    with pytest.raises(TypeError, match="no generate, trained_ids"):
        model_facts(type("Half", (), {"provenance": lambda self: {}})())


def test_unknown_model_is_one_error():
    with pytest.raises(MacsError, match="not a registered name"):
        load_model("no-such-model")
    with pytest.raises(MacsError, match="cannot import"):
        load_model("no_such_pkg.mod:Model")


def test_entry_points_are_discovered(tmp_path, monkeypatch):
    dist = tmp_path / "thirdparty_demo-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-demo\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[macs_bench.models]\ncolour = colour_model:ColourModel\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert registered()["colour"] == "colour_model:ColourModel"
    assert isinstance(load_model("colour", trained=["x"]), ColourModel)


def test_pyproject_declares_the_baselines_table():
    import tomllib

    from macs_model.baselines import LICENCES, MODELS

    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]["macs_bench.models"]
    assert declared == MODELS
    assert set(LICENCES) == set(MODELS)


def _cli(*args, env_path, cwd):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(env_path), str(REPO)])}
    return subprocess.run([sys.executable, "-m", "macs_bench", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=300)


@pytest.mark.slow
def test_third_party_model_runs_through_the_cli(world_fold, tmp_path):
    pkg = tmp_path / "plugins" / "lab_models"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "flat.py").write_text((HERE / "colour_model.py").read_text())
    out = tmp_path / "run"
    args = ["run", "lab_models.flat:ColourModel", "--manifest", str(world_fold.manifest), "--media",
            str(world_fold.media), "--fold", "0", "--out", str(out), "--preset", "world", "--cache-dir",
            str(tmp_path / "features")]
    done = _cli(*args, env_path=tmp_path / "plugins", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    data = json.loads((out / "result.json").read_text())
    assert data["model"] == "colour" and data["n"] == 4 and len(list((out / "images").glob("*.png"))) == 4
    ids = ",".join(f'"{i}"' for i in _ids(world_fold, 0))
    refused = _cli(*args[:-4], "--out", str(tmp_path / "run2"), "--option", f"trained=[{ids}]",
                   env_path=tmp_path / "plugins", cwd=tmp_path)
    assert refused.returncode == 2 and "trained on 4 of the 4 samples of fold 0" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


def test_weights_list_shows_each_baseline_licence():
    from typer.testing import CliRunner

    from macs_bench.cli import app
    from macs_model.baselines import LICENCES

    shown = CliRunner().invoke(app, ["weights", "list", "--baselines"], env={"COLUMNS": "80"})
    assert shown.exit_code == 0, shown.output
    for name, (_, licence) in LICENCES.items():
        assert f"{name}\n" in shown.output and f"licence: {licence}" in shown.output


@pytest.mark.slow
def test_two_processes_draw_disjoint_slices_and_merge(world_fold, tmp_path):
    """torchrun with 2 CPU processes (what accelerate launch starts): the images equal a 1-process run's."""
    single = run(ColourModel(), world_fold.manifest, world_fold.media, tmp_path / "one", fold=4,
                 config=_config(tmp_path), progress=False)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO)]), "OMP_NUM_THREADS": "1",
           "COLOUR_LOG": str(tmp_path / "drawn.txt")}
    out = tmp_path / "two"
    done = subprocess.run([str(Path(sys.executable).parent / "torchrun"), "--standalone", "--nproc_per_node", "2",
                           "-m", "macs_bench", "run", "colour_model:ColourModel", "--manifest",
                           str(world_fold.manifest), "--media", str(world_fold.media), "--fold", "4", "--out",
                           str(out), "--preset", "world", "--batch-size", "1", "--cache-dir",
                           str(tmp_path / "features")], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads((out / "result.json").read_text())
    assert data["generation"]["processes"] == 2 and data["tool"]["processes"] == 2 and data["n"] == 4
    for png in sorted(single.images.glob("*.png")):
        assert png.read_bytes() == (out / "images" / png.name).read_bytes()
    assert data["metrics"] == json.loads(single.result_file.read_text())["metrics"]
    drawn = [line.split() for line in (tmp_path / "drawn.txt").read_text().splitlines()]
    by_rank = {rank: {sid for r, sid in drawn if r == rank} for rank in ("0", "1")}
    assert len(drawn) == 4 and all(len(ids) == 2 for ids in by_rank.values())
    assert by_rank["0"] | by_rank["1"] == set(_ids(world_fold, 4))
