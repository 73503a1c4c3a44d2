"""Unpaired distribution mode: sets of different sizes, saved reference statistics reused and refused when made
differently; the numbers equal the functional metrics (and clean-fid's Frechet distance) on the same features."""

import numpy as np
import pytest
import torch
from PIL import Image

from macs_bench.errors import MacsError
from macs_bench.features.cache import FeatureCache
from macs_bench.features.encoders import build_encoders
from macs_bench.features.extract import content_hash, encode_sets
from macs_bench.metrics import frechet_distance_from_stats, kernel_inception_distance
from macs_bench.metrics.fid import feature_stats
from macs_bench.metrics.prdc import prdc
from macs_bench.scoring import ScoreConfig
from macs_bench.scoring.unpaired import (fold_frames, load_reference_stats, make_reference_stats,
                                         score_unpaired)


def _folder(root, n, seed, shift=0):
    rng = np.random.default_rng(seed)
    root.mkdir()
    for i in range(n):
        array = np.clip(rng.integers(0, 200, (36, 44, 3)) + shift, 0, 255).astype(np.uint8)
        Image.fromarray(array).save(root / f"img{i:03d}.png")
    return root


def _config(tmp_path, **kw):
    return ScoreConfig(preset="tiny", cache_dir=str(tmp_path / "cache"), kid_subset_size=5, kid_subsets=20, **kw)


def _features(folder, names, tmp_path):
    paths = sorted(folder.iterdir())
    got = encode_sets(paths, [content_hash(p) for p in paths], build_encoders("tiny", names=names),
                      FeatureCache(tmp_path / "oracle-cache"), device=torch.device("cpu"), num_workers=0)
    return {k: v[0] for k, v in got.items()}


def test_sets_of_different_sizes_match_the_functional_metrics(tmp_path):
    gen, ref = _folder(tmp_path / "gen", 7, 0, shift=30), _folder(tmp_path / "ref", 12, 1)
    result = score_unpaired(gen, ref, config=_config(tmp_path, metrics="prdc_inception"),
                            out=tmp_path / "r.json")
    assert result.n == 7 and result["inputs"]["n_reference"] == 12 and result["mode"] == "unpaired"
    g, r = _features(gen, ["inception", "clip"], tmp_path), _features(ref, ["inception", "clip"], tmp_path)
    assert result.metrics["fid"] == pytest.approx(
        frechet_distance_from_stats(*feature_stats(g["inception"]), *feature_stats(r["inception"])), rel=1e-6)
    assert result.metrics["clip_fid"] == pytest.approx(
        frechet_distance_from_stats(*feature_stats(g["clip"]), *feature_stats(r["clip"])), rel=1e-6)
    assert result.metrics["kid"] == pytest.approx(
        kernel_inception_distance(g["inception"], r["inception"], 20, 5, 0)[0], rel=1e-9)
    assert result.metrics["precision_inception"] == prdc(r["inception"], g["inception"])["precision"]
    assert result.metrics["iis"] is None and not result.comparable_with_paper


def test_saved_reference_stats_are_reused_and_refused_when_made_differently(tmp_path):
    gen, ref = _folder(tmp_path / "gen", 6, 0, shift=30), _folder(tmp_path / "ref", 9, 1)
    config = _config(tmp_path)
    direct = score_unpaired(gen, ref, config=config, save_ref_stats=tmp_path / "ref.npz")
    stats = load_reference_stats(tmp_path / "ref.npz")
    assert stats.n == 9 and set(stats.encoder_ids) == {"inception", "clip"} and len(stats.sha256) == 64
    reused = score_unpaired(gen, tmp_path / "ref.npz", config=config)
    assert reused.metrics == direct.metrics
    assert reused["inputs"]["reference_stats_sha256"] == stats.sha256
    assert reused["inputs"]["reference_files_sha256"] == direct["inputs"]["reference_files_sha256"]
    other_seed = {name: enc for name, enc in build_encoders("tiny", seed=1).items() if name != "wav2clip"}
    with pytest.raises(MacsError, match="ref.npz: reference statistics were made with inception/tiny-random:0"):
        score_unpaired(gen, tmp_path / "ref.npz", config=config, encoders=other_seed)
    with pytest.raises(MacsError, match="reference statistics have no dinov2 features"):
        score_unpaired(gen, tmp_path / "ref.npz", config=_config(tmp_path, metrics="fd_dinov2"))
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(MacsError, match="junk.npz: not a reference statistics file"):
        score_unpaired(gen, tmp_path / "junk.npz", config=config)


def test_a_benchmark_folds_frames_as_reference(tmp_path, scoring_case):
    frames = fold_frames(scoring_case.manifest, scoring_case.media, fold=0)
    assert 0 < len(frames) < 8 and all(p.parent == scoring_case.media / "frames" for p in frames)
    stats = make_reference_stats(frames, tmp_path / "fold0.npz", config=_config(tmp_path))
    result = score_unpaired(scoring_case.pred, tmp_path / "fold0.npz", config=_config(tmp_path))
    assert stats.n == len(frames) and result.n == 8 and result.metrics["fid"] is not None
    with pytest.raises(MacsError, match="coverage needs each sample's labels"):
        score_unpaired(scoring_case.pred, tmp_path / "fold0.npz", config=_config(tmp_path, metrics="coverage"))


def test_unpaired_command_and_ref_stats_command(tmp_path, scoring_case):
    import json

    from typer.testing import CliRunner

    from macs_bench.cli import app

    runner = CliRunner()
    cache = ["--preset", "tiny", "--cache-dir", str(tmp_path / "cache")]
    made = runner.invoke(app, ["ref-stats", "--manifest", str(scoring_case.manifest), "--media",
                               str(scoring_case.media), "--fold", "1", "--out", str(tmp_path / "f1.npz"), *cache])
    assert made.exit_code == 0, made.output
    done = runner.invoke(app, ["score-folders", "--unpaired", str(scoring_case.pred), str(tmp_path / "f1.npz"),
                               "--out", str(tmp_path / "u.json"), *cache])
    assert done.exit_code == 0, done.output
    saved = json.loads((tmp_path / "u.json").read_text())
    assert saved["mode"] == "unpaired" and saved["n"] == 8 and saved["inputs"]["reference_stats_sha256"]
    refused = runner.invoke(app, ["score-folders", str(scoring_case.pred), str(scoring_case.media / "frames"),
                                  "--save-ref-stats", str(tmp_path / "x.npz"), "--out", str(tmp_path / "v.json"),
                                  *cache])
    assert refused.exit_code != 0 and "add --unpaired" in str(refused.exception)
