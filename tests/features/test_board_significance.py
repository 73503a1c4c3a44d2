"""``leaderboard build``: a best mark only for a significant lead; controls and may-have-seen rows unranked."""

import json

import numpy as np
import pytest
from PIL import Image

import macs_bench.boards as lb
from macs_bench.results import ScoreResult
from macs_bench.scoring import ScoreConfig, score
from scoring_helpers import make_scoring_case


def _images(src, dst, fn):
    dst.mkdir()
    for p in src.iterdir():
        Image.fromarray(np.clip(fn(np.asarray(Image.open(p)).astype(float)), 0, 255).astype(np.uint8)).save(
            dst / p.name)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("board")
    case = make_scoring_case(root, n=24, folds=1)
    rng = np.random.default_rng(0)
    _images(case.pred, root / "dark", lambda a: a * 0.3)
    _images(case.pred, root / "noisy", lambda a: a + rng.normal(0, 1.0, a.shape))
    config = ScoreConfig(preset="tiny", cache_dir=str(root / "cache"), kid_subset_size=4)
    out = {}
    for name, pred in (("good", case.pred), ("copy", case.pred), ("dark", root / "dark"),
                       ("noisy", root / "noisy")):
        out[name] = score(case.manifest, pred, case.media, model_name=name, out=root / f"{name}.json",
                          config=config)
    return root, out


def _board(root, names, **kw):
    results = [ScoreResult.from_json(root / f"{n}.json") for n in names]
    return lb.build_leaderboard(results, results[0].dataset, rounds=200, **kw)


def test_a_significant_lead_keeps_its_best_mark(models):
    root, _ = models
    board = _board(root, ["good", "dark"])
    marked = {m for mk in board.marks for m, v in mk.items() if v == "best"}
    assert {"fid", "clip_fid", "iis"} <= marked
    assert any("only where the best row's lead over the second is significant" in n for n in board.notes)


def test_a_tie_or_a_lead_within_noise_is_not_marked(models):
    root, _ = models
    tie = _board(root, ["good", "copy"])
    assert tie.marks == [{}, {}] and any("FID (a tie for best)" in n for n in tie.notes)
    close = _board(root, ["good", "noisy"])
    unmarked = [m for m in lb.METRICS if not any(m in mk for mk in close.marks)]
    assert unmarked and any("lead not significant (p = " in n for n in close.notes)
    by_value = _board(root, ["good", "noisy"], significance=False)
    assert sum(len(mk) for mk in by_value.marks) > sum(len(mk) for mk in close.marks)


def test_controls_and_rows_that_may_have_seen_the_test_are_stamped_and_never_ranked(models, tmp_path):
    root, _ = models
    for name, row in (("dark", {"kind": "control", "source": "computed", "note": "colour-only"}),
                      ("good", {"kind": "model", "may_have_seen_test": True, "note": "release adapter"})):
        data = json.loads((root / f"{name}.json").read_text())
        data["row"] = row
        (tmp_path / f"{name}.json").write_text(json.dumps(data))
        for suffix in (".per_sample.csv", ".features.npz"):
            (tmp_path / f"{name}{suffix}").write_bytes((root / f"{name}{suffix}").read_bytes())
    (tmp_path / "noisy.json").write_bytes((root / "noisy.json").read_bytes())
    board = _board(tmp_path, ["good", "dark", "noisy"], significance=False)
    names = [r.name for r in board.rows]
    assert [board.marks[names.index(n)] for n in ("good", "dark")] == [{}, {}]
    assert all(v == "best" for v in board.marks[names.index("noisy")].values())
    md = lb.to_markdown(board)
    assert "computed, control" in md and "computed, may have seen the test clips" in md
    assert any(n.startswith("Controls, never ranked: dark") for n in board.notes)
    assert any("May have seen the test clips, kept out of the marks: good" in n for n in board.notes)
    rows = {r["name"]: r for r in json.loads(lb.to_json(board))["rows"]}
    assert rows["dark"]["row"]["kind"] == "control" and rows["noisy"]["row"]["may_have_seen_test"] is None
