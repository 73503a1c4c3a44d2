"""score_folders: two folders (and an audio folder) paired by file stem give the manifest path's numbers."""

import json
import shutil

import numpy as np
import pytest

from macs_bench.errors import MacsError
from macs_bench.results import ScoreResult
from macs_bench.metrics.scoring import ScoreConfig, score, score_folders


def _config(tmp_path, name, **kw):
    return ScoreConfig(preset="tiny", cache_dir=str(tmp_path / name), kid_subset_size=4, **kw)


def test_folders_give_the_manifest_paths_numbers(tmp_path, scoring_case):
    media = scoring_case.media
    by_manifest = score(scoring_case.manifest, scoring_case.pred, media, model_name="m",
                        config=_config(tmp_path, "cache-a"))
    by_folders = score_folders(scoring_case.pred, media / "frames", media / "audio", model_name="m",
                               out=tmp_path / "f.json", config=_config(tmp_path, "cache-b"))
    assert by_folders.n == by_manifest.n == 8
    assert by_folders.metrics == by_manifest.metrics  # the same files, encoded independently: the same numbers
    np.testing.assert_array_equal(by_folders.per_sample[["ais", "iis", "ais_z", "iis_z"]].to_numpy(),
                                  by_manifest.per_sample[["ais", "iis", "ais_z", "iis_z"]].to_numpy())
    assert list(by_folders.per_sample.index) == scoring_case.ids == list(by_manifest.per_sample.index)
    saved = json.loads((tmp_path / "f.json").read_text())
    assert saved["inputs"]["reference"] == str(media / "frames") and saved["dataset"] is None
    assert saved["comparable_with_paper"] is False and any("not a benchmark manifest" in w for w in saved["warnings"])
    assert ScoreResult.from_json(tmp_path / "f.json").metrics == by_folders.metrics


def test_without_audio_ais_is_undefined_and_the_rest_unchanged(tmp_path, scoring_case):
    media = scoring_case.media
    full = score_folders(scoring_case.pred, media / "frames", media / "audio", config=_config(tmp_path, "c"))
    silent = score_folders(scoring_case.pred, media / "frames", config=_config(tmp_path, "c"))
    assert silent.metrics["ais"] is None and silent.metrics["ais_z"] is None
    assert {k: v for k, v in silent.metrics.items() if not k.startswith("ais")} == \
        {k: v for k, v in full.metrics.items() if not k.startswith("ais")}
    assert "wav2clip" not in silent["encoders"]
    assert any("no audio folder" in w for w in silent.warnings)


def test_unpaired_stems_are_one_line_naming_them(tmp_path, scoring_case):
    ref = tmp_path / "ref"
    shutil.copytree(scoring_case.media / "frames", ref)
    (ref / f"{scoring_case.ids[0]}.jpg").unlink()
    shutil.copy(scoring_case.pred / f"{scoring_case.ids[1]}.png", scoring_case.pred / "stranger.png")
    with pytest.raises(MacsError) as err:
        score_folders(scoring_case.pred, ref, config=_config(tmp_path, "c"))
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{scoring_case.pred}: unpaired file stems")
    assert f"2 predictions without a reference image (e.g. stranger, {scoring_case.ids[0]})" in message
    scored = score_folders(scoring_case.pred, ref, config=_config(tmp_path, "c", allow_missing=True))
    assert scored.n == 7 and scored["inputs"]["left_out_extra"] == ["stranger", scoring_case.ids[0]]


def test_score_folders_command(tmp_path, scoring_case):
    from typer.testing import CliRunner

    from macs_bench.cli import app

    out = tmp_path / "r.json"
    args = ["score-folders", str(scoring_case.pred), str(scoring_case.media / "frames"), "--audio",
            str(scoring_case.media / "audio"), "--out", str(out), "--preset", "tiny", "--cache-dir",
            str(tmp_path / "c"), "--device", "cpu"]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "ais_z" in result.output and json.loads(out.read_text())["n"] == 8
    again = CliRunner().invoke(app, args)
    assert again.exit_code != 0 and "exists; pass --overwrite" in str(again.exception)
    assert CliRunner().invoke(app, [*args, "--overwrite"]).exit_code == 0
