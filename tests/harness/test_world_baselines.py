"""The world's computed baseline rows: every analogue fits / generates / scores a fold and lands on a board."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_world_baseline_rows_reach_the_leaderboard(world_fold, tmp_path):
    from macs_bench.boards import build_leaderboard, load_results
    from macs_bench.world.synthetic import write_synthetic
    from macs_model.baselines.world import WORLD_BASELINES, world_baseline_rows
    from macs_model.separation.api import WORLD_CLAP, train_separator

    pretrain = write_synthetic(tmp_path / "pretrain", n_clips=8, seed=77, prefix="p")
    train_separator(str(pretrain.manifest), pretrain.media, tmp_path / "sep", preset="tiny", clap=WORLD_CLAP,
                    steps=2, progress=False)
    written = world_baseline_rows(world_fold.manifest, world_fold.media, tmp_path / "work", folds=[0],
                                  results=tmp_path / "results", separator=tmp_path / "sep", steps=3)
    assert sorted(written) == sorted(WORLD_BASELINES)
    rows = {json.loads(f.read_text())["model"]: json.loads(f.read_text())["row"]
            for files in written.values() for f in files}
    assert rows["GT labels -> SD (world)"]["kind"] == "control"
    assert {rows[n]["kind"] for n in ("CLAP zero-shot -> SD (world)", "AudioToken (world)",
                                      "AudioToken w/ MSS (world)")} == {"model"}
    assert all(r["source"] == "computed" and r["may_have_seen_test"] is False for r in rows.values())
    board = build_leaderboard(load_results(tmp_path / "results"), "synthetic", folds=[0], paper_rows="never")
    assert {row.name for row in board.rows} == set(rows)
