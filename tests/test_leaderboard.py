"""Leaderboards, radar charts and sample grids: aggregation, marking, refusals, renderers, the committed paper
tables and the CLI."""

import ast
import csv
import hashlib
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from macs_bench import boards as lb
from macs_bench.errors import MacsError
from macs_bench.plots.grid import grid_size, sample_grid

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SHARED_CSV = REPO.parent / "shared" / "reference" / "paper_tables.csv"
PUBLISHED = {"inception": "sha256:" + "a" * 64, "clip": "sha256:" + "b" * 64, "wav2clip": "sha256:" + "c" * 64}


def make_result(model="ours", fold=0, *, dataset="llp-multi", metrics=None, metric_version="macs-metrics-v1",
                weights=None, preset="paper", comparable=True, split=None, n=100):
    """A dict shaped like the JSON macs_bench.metrics.scoring.score() writes."""
    weights = {**PUBLISHED, **(weights or {})}
    base = {"fid": 100.0, "clip_fid": 30.0, "kid": 0.02, "ais": 0.07, "ais_z": 1.0, "iis": 0.55, "iis_z": 1.2}
    return {
        "model": model, "dataset": dataset, "fold": fold, "split": split, "n": n,
        "metrics": {**base, "kid_std": 0.001, **(metrics or {})},
        "directions": dict(lb.DIRECTIONS), "metric_version": metric_version,
        "encoders": {name: {"id": f"{name}/{w}/prep-v1", "weights": w} for name, w in weights.items()},
        "device": "cpu", "comparable_with_paper": comparable, "seeds": {"kid": 0},
        "config": {"preset": preset, "batch_size": 32},
        "tool": {"name": "macs-bench", "version": "0.1.0"},
    }


def write(folder: Path, name: str, data) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def row(name, reference_only=False, **metrics):
    return lb.Row(name=name, mean={m: metrics.get(m) for m in lb.METRICS}, reference_only=reference_only)


def md_rows(markdown: str) -> dict[str, list[str]]:
    """Table lines of a rendered leaderboard as {display name: cells}."""
    out = {}
    for line in markdown.splitlines():
        if line.startswith("| ") and not line.startswith("| Method"):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            out[cells[0]] = cells[1:]
    return out


def run_cli(*args, cwd=None):
    return subprocess.run([str(BIN / "macs-bench"), *args], capture_output=True, text=True, cwd=cwd, timeout=120)


# ------------------------------------------------------------------------------------------ reference data


def test_reference_rows_live_in_one_pinned_place():
    shipped = (REPO / "macs_bench" / "reference" / "paper_tables.csv").read_bytes()
    assert shipped == lb.reference_csv_bytes()
    digest = hashlib.sha256(shipped).hexdigest()
    assert f"{digest}  paper_tables.csv" in (REPO / "macs_bench" / "reference" / "README.md").read_text()
    copies = [p for top in ("macs_bench", "macs_model", "leaderboards", "docs", "datasets", "tests")
              for p in (REPO / top).rglob("paper_tables*.csv")]
    assert copies == [REPO / "macs_bench" / "reference" / "paper_tables.csv"]
    if SHARED_CSV.is_file():
        assert SHARED_CSV.read_bytes() == shipped


def test_metric_names_and_directions_are_defined_once():
    """The scorer, the leaderboard and the grid read macs_bench.metrics.spec; no module keeps its own copy."""
    from macs_bench.metrics import scoring as score, spec as metric_spec

    assert score.DIRECTIONS is lb.DIRECTIONS is metric_spec.DIRECTIONS
    assert lb.METRICS == metric_spec.PAPER_METRICS == tuple(lb.DIRECTIONS)
    spec_names = {"DIRECTIONS", "LABELS", "IMAGE_SUFFIXES", "METRICS", "PAPER_METRICS", "DECIMALS", "EXTRAS"}
    copies = []
    for path in (REPO / "macs_bench").rglob("*.py"):
        # datasets: class labels, not metrics
        if path == REPO / "macs_bench" / "metrics" / "spec.py" or "datasets" in path.parts:
            continue
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign):
                copies += [f"{path.name}:{t.id}" for t in node.targets if getattr(t, "id", None) in spec_names]
    assert copies == []


def test_paper_tables_and_reference_rows():
    sizes = {n: len(lb.paper_table(n)) for n in (1, 2, 3, 4)}
    assert sizes == {1: 7, 2: 7, 3: 7, 4: 2}
    ref_only = {(n, r.name) for n in (1, 2, 3, 4) for r in lb.paper_table(n) if r.reference_only}
    assert ref_only == {(1, "ImageBind"), (2, "ImageBind")}  # Landscape's ImageBind is an ordinary row
    t1 = lb.paper_table(1)
    assert all(r.paper and r.paper_table == 1 for r in t1)
    assert t1[-1].name == "MACS" and t1[-1].mean["fid"] == 87.09 and t1[-1].mean["iis_z"] == 1.7231
    assert [r.name for r in lb.reference_rows("llp-multi")] == [r.name for r in t1]
    assert lb.reference_rows("audioset-eval")[0].mean["fid"] == 41.69
    assert lb.reference_rows("landscape")[-1].mean["kid"] == 0.0098
    assert lb.reference_rows("fsd50k") == []
    with pytest.raises(MacsError, match="Tables 1-4, not 5"):
        lb.paper_table(5)
    with pytest.raises(MacsError, match="not on landscape"):
        lb.reference_rows("landscape", table=1)


# The paper's underlined (second-best) cells, read from its text. Three cells where the paper underlines nothing
# although a distinct second-best value exists are listed apart: our rule marks them.
PAPER_SECOND = {
    1: {"fid": "Sound2Scene", "clip_fid": "Sound2Scene", "kid": "Sound2Scene", "ais": "MACS", "ais_z": "CoDi",
        "iis": "Sound2Scene", "iis_z": "CoDi"},
    2: {"fid": "Sound2Scene", "clip_fid": "Sound2Scene", "kid": "CoDi", "ais": "CoDi", "ais_z": "MACS",
        "iis_z": "CoDi"},
    3: {"fid": "CoDi", "clip_fid": "CoDi", "kid": "CoDi", "iis": "CoDi", "iis_z": "CoDi"},
}
PAPER_UNMARKED_SECOND = {2: {"iis": "AudioToken (w/ MSS)"}, 3: {"ais": "ImageBind", "ais_z": "ImageBind"}}


@pytest.mark.parametrize("table", [1, 2, 3])
def test_marks_reproduce_the_papers_underlines(table):
    board = lb.paper_leaderboard(table)
    second = {m: [r.name for r, mk in zip(board.rows, board.marks) if mk.get(m) == "second"] for m in lb.METRICS}
    expected = {**PAPER_SECOND[table], **PAPER_UNMARKED_SECOND.get(table, {})}
    assert second == {m: [expected[m]] for m in lb.METRICS}
    best = {m: [r.name for r, mk in zip(board.rows, board.marks) if mk.get(m) == "best"] for m in lb.METRICS}
    assert "ImageBind" not in sum(best.values(), []) or table == 3  # reference-only never marked
    assert best["fid"] == ["MACS"] and best["ais"] == ["TempoTokens"]


# ---------------------------------------------------------------------------------------------- aggregation


def test_aggregate_mean_std_against_numpy(tmp_path):
    rng = np.random.default_rng(0)
    values = {}
    for model, folds in (("alpha", range(5)), ("beta", range(3))):
        for fold in folds:
            metrics = {m: float(rng.uniform(0.01, 200)) for m in lb.METRICS}
            if model == "alpha" and fold == 2:
                metrics["ais_z"] = None  # undefined in one fold: averaged over the other four
            values[model, fold] = metrics
            write(tmp_path, f"{model}/fold{fold}.json", make_result(model, fold, metrics=metrics, n=10 + fold))
    (tmp_path / "alpha" / "fold0.per_sample.csv").write_text("sample_id,ais\n")  # not JSON: skipped
    results = lb.load_results(tmp_path)
    assert len(results) == 8
    rows = {r.name: r for r in lb.aggregate(results, "llp-multi")}
    assert list(rows) == ["alpha", "beta"]
    for model, folds in (("alpha", range(5)), ("beta", range(3))):
        r = rows[model]
        assert r.folds == list(folds) and r.n == sum(10 + f for f in folds)
        for m in lb.METRICS:
            vals = [values[model, f][m] for f in folds if values[model, f][m] is not None]
            assert r.mean[m] == pytest.approx(np.mean(vals), rel=1e-12)
            assert r.std[m] == pytest.approx(np.std(vals, ddof=1), rel=1e-12)
            assert r.folds_with_value[m] == len(vals)
    assert rows["alpha"].folds_with_value["ais_z"] == 4
    assert rows["beta"].missing_folds == [3, 4] and rows["alpha"].missing_folds == []
    assert rows["alpha"].sources == [str(tmp_path / "alpha" / f"fold{f}.json") for f in range(5)]


def test_one_fold_has_no_std_and_dicts_are_accepted():
    (r,) = lb.aggregate([make_result("solo", 3, metrics={"fid": 42.0})], "llp-multi")
    assert r.mean["fid"] == 42.0 and r.std["fid"] is None and r.folds == [3] and r.sources == ["<result 0>"]


def test_missing_folds_relative_to_the_asked_folds():
    results = [make_result("a", 0), make_result("a", 1), make_result("b", 1)]
    rows = {r.name: r for r in lb.aggregate(results, "llp-multi")}
    assert rows["a"].missing_folds == [] and rows["b"].missing_folds == [0]  # union of folds seen
    rows = {r.name: r for r in lb.aggregate(results, "llp-multi", folds=[0, 1, 2, 3, 4])}
    assert rows["a"].missing_folds == [2, 3, 4] and rows["b"].missing_folds == [0, 2, 3, 4]
    with pytest.raises(MacsError, match=r"<result 1>: fold 1 is not among the folds asked for \(0,2\)"):
        lb.aggregate(results, "llp-multi", folds=[0, 2])
    board = lb.build_leaderboard(results, "llp-multi", folds=range(5))
    assert "Missing folds: a lacks folds 2,3,4; b lacks folds 0,2,3,4." in board.notes
    assert md_rows(lb.to_markdown(board))["b"][7] == "1 (missing 0,2,3,4)"


@pytest.mark.parametrize("field, change", [
    ("metric_version", {"metric_version": "macs-metrics-v2"}),
    ("encoders.clip.weights", {"weights": {"clip": "sha256:" + "d" * 64}}),
    ("preset", {"preset": "tiny"}),
])
def test_refuses_to_mix_signatures(tmp_path, field, change):
    a = write(tmp_path, "a.json", make_result("m", 0))
    b = write(tmp_path, "b.json", make_result("m", 1, **change))
    c = write(tmp_path, "c.json", make_result("other", 0, **change))
    for pair in ((a, b), (a, c)):  # within one model and across models
        with pytest.raises(MacsError) as err:
            lb.aggregate(lb.load_results(pair[0]) + lb.load_results(pair[1]), "llp-multi")
        message = str(err.value)
        assert str(pair[0]) in message and str(pair[1]) in message and f": {field} is " in message
    rows = lb.aggregate(lb.load_results(tmp_path), "llp-multi", separate_signatures=True)
    sig_a, sig_b = lb.load_results(a)[0].signature, lb.load_results(b)[0].signature
    assert sig_a != sig_b and re.fullmatch(r"[0-9a-f]{8}", sig_a)
    assert sorted(r.name for r in rows) == sorted([f"m [{sig_a}]", f"m [{sig_b}]", f"other [{sig_b}]"])
    assert all(len(r.folds) == 1 for r in rows)


def test_separate_mode_keeps_plain_names_with_one_signature():
    rows = lb.aggregate([make_result("m", 0), make_result("m", 1)], "llp-multi", separate_signatures=True)
    assert [r.name for r in rows] == ["m"] and rows[0].folds == [0, 1]


def test_duplicate_model_fold_names_both_files(tmp_path):
    a = write(tmp_path, "run1/m.json", make_result("m", 2))
    b = write(tmp_path, "run2/m.json", make_result("m", 2, metrics={"fid": 1.0}))
    with pytest.raises(MacsError, match=f"{re.escape(str(a))} and {re.escape(str(b))}: two results for model 'm', "
                       "fold 2"):
        lb.aggregate(lb.load_results(tmp_path), "llp-multi")


def test_wrong_dataset_split_and_whole_set_mixing(tmp_path):
    path = write(tmp_path, "x.json", make_result("m", 0, dataset="landscape"))
    with pytest.raises(MacsError, match=f"{re.escape(str(path))}: a result for dataset 'landscape', not 'llp-multi'"):
        lb.aggregate(lb.load_results(path), "llp-multi")
    with pytest.raises(MacsError, match="differ in split"):
        lb.aggregate([make_result("m", None, split="test"), make_result("n", None, split="train")], "llp-multi")
    with pytest.raises(MacsError, match="mixes per-fold and whole-set results"):
        lb.aggregate([make_result("m", None), make_result("m", 0)], "llp-multi")
    (r,) = lb.aggregate([make_result("m", None, dataset="landscape", split="test")], "landscape")
    assert r.folds == [None] and r.split == "test" and r.missing_folds == []


@pytest.mark.parametrize("content, why", [
    ("{not json", "invalid JSON"),
    ("[1, 2]", "a JSON list, not an object"),
    (json.dumps({"dataset": "llp-multi"}), "no 'model'"),
    ("metric-string", "metric 'fid' is 'bad'"),
    ("nan-metric", "metric 'kid' is nan"),
    ("bool-fold", "'fold' must be an integer"),
    ("no-weights", "encoder 'clip' needs string 'id' and 'weights'"),
])
def test_malformed_file_is_named(tmp_path, content, why):
    good = make_result()
    if content == "metric-string":
        good["metrics"]["fid"] = "bad"
    elif content == "nan-metric":
        good["metrics"]["kid"] = float("nan")
    elif content == "bool-fold":
        good["fold"] = True
    elif content == "no-weights":
        del good["encoders"]["clip"]["weights"]
    text = json.dumps(good) if content in ("metric-string", "nan-metric", "bool-fold", "no-weights") else content
    write(tmp_path, "ok.json", make_result("fine", 1))
    bad = write(tmp_path, "sub/bad.json", text)
    with pytest.raises(MacsError) as err:
        lb.load_results(tmp_path)
    assert str(err.value).startswith(f"{bad}: not a macs score result (") and why in str(err.value)


def test_empty_or_absent_results(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(MacsError, match="no result JSON"):
        lb.load_results(tmp_path)
    with pytest.raises(MacsError, match="no such file or folder"):
        lb.load_results(tmp_path / "nope")
    with pytest.raises(MacsError, match="no results"):
        lb.aggregate([], "llp-multi")


# -------------------------------------------------------------------------------------------------- marking


def test_mark_direction_ties_and_reference_only():
    rows = [row("ref", True, fid=1.0, ais=0.9), row("a", fid=10.0, ais=0.3), row("b", fid=20.0, ais=0.5),
            row("c", fid=10.0, ais=0.1), row("d", fid=30.0, ais=0.5), row("e", fid=None, ais=None)]
    marks = lb.mark(rows)
    assert [m.get("fid") for m in marks] == [None, "best", "second", "best", None, None]  # lower is better
    assert [m.get("ais") for m in marks] == [None, "second", "best", None, "best", None]  # higher is better
    assert marks[0] == {} and marks[5] == {}
    assert all("kid" not in m for m in marks)  # every value None: nothing marked


def test_mark_float_noise_is_a_tie_and_one_row_gets_best_only():
    a, b = sum([0.1] * 10), 1.0  # 0.9999999999999999 vs 1.0
    marks = lb.mark([row("a", iis=a), row("b", iis=b), row("c", iis=0.5)])
    assert [m["iis"] for m in marks] == ["best", "best", "second"]
    assert lb.mark([row("only", kid=0.1)]) == [{"kid": "best"}]


# --------------------------------------------------------------------------------------- paper rows, renders


def test_paper_rows_policy():
    comparable = [make_result("ours", f) for f in range(2)]
    mixed = comparable + [make_result("random", 0, comparable=False)]
    auto = lb.build_leaderboard(comparable, "llp-multi")
    assert [r.paper for r in auto.rows] == [True] * 7 + [False]
    assert any("Table 1" in n for n in auto.notes)
    refused = lb.build_leaderboard(mixed, "llp-multi", separate_signatures=True)
    assert not any(r.paper for r in refused.rows)
    assert any(n.startswith("Not comparable with the paper: random") and "left out" in n for n in refused.notes)
    forced = lb.build_leaderboard(mixed, "llp-multi", paper_rows="always")
    assert sum(r.paper for r in forced.rows) == 7 and any("shown anyway" in n for n in forced.notes)
    assert not any(r.paper for r in lb.build_leaderboard(comparable, "llp-multi", paper_rows="never").rows)
    other = lb.build_leaderboard([make_result("x", 0, dataset="fsd50k")], "fsd50k", paper_rows="always")
    assert not any(r.paper for r in other.rows) and "The paper reports no numbers for fsd50k." in other.notes
    with pytest.raises(MacsError, match="paper_rows must be one of auto, always, never"):
        lb.build_leaderboard(comparable, "llp-multi", paper_rows="sometimes")
    md = lb.to_markdown(forced)
    assert "Not comparable with the paper" in md


def test_markdown_marks_the_right_cells():
    metrics = [{"fid": 50.0, "iis_z": 1.8, "ais": 0.01, "kid": 0.0157}, {"fid": 60.0, "iis_z": 1.9, "ais": 0.01,
                                                                          "kid": 0.0157}]
    board = lb.build_leaderboard([make_result("ours", f, metrics=m) for f, m in enumerate(metrics)], "llp-multi",
                                 significance=False)  # marks by value; the test of significance is apart
    md = lb.to_markdown(board)
    cells = md_rows(md)
    ours, macs, imagebind = cells["ours"], cells["MACS‡"], cells["ImageBind†‡"]
    assert ours[0] == f"**55.00 ± {np.std([50, 60], ddof=1):.2f}**"  # FID: ours best ...
    assert macs[0] == "<u>87.09</u>"  # ... the paper's MACS second
    assert ours[2] == "**0.0157 ± 0.0000**" and macs[2] == "**0.0157**"  # KID: a tie shares the best mark
    assert cells["Sound2Scene‡"][2] == "<u>0.0240</u>"
    assert ours[6] == "**1.8500 ± 0.0707**" and macs[6] == "<u>1.7231</u>"  # IIS-z: ImageBind (2.0361) excluded
    assert imagebind[6] == "2.0361" and "**" not in "".join(imagebind) and "<u>" not in "".join(imagebind)
    assert ours[3] == "0.0100 ± 0.0000"  # AIS: last, unmarked
    assert ours[7:] == ["0,1", "200", f"`{board.rows[-1].signature}`", "computed"]
    assert macs[7:] == ["—", "—", "—", "quoted"]
    assert "| Method | FID↓ | CLIP-FID↓ | KID↓ | AIS↑ | AIS-z↑ | IIS↑ | IIS-z↑ | folds | n | signature | row |" in md
    assert "† Reference only" in md and "Rows marked ‡ are the paper's numbers (Table 1" in md


def test_csv_and_json_hold_everything(tmp_path):
    paths = [write(tmp_path, f"f{f}.json", make_result("ours", f, metrics={"fid": 10.0 + f})) for f in range(3)]
    board = lb.build_leaderboard(lb.load_results(tmp_path), "llp-multi", folds=range(4), significance=False)
    data = json.loads(lb.to_json(board))
    ours = data["rows"][-1]
    assert ours["mean"]["fid"] == 11.0 and ours["std"]["fid"] == 1.0 and ours["folds"] == [0, 1, 2]
    assert ours["missing_folds"] == [3] and ours["sources"] == [str(p) for p in paths] and ours["n"] == 300
    assert ours["signature_fields"]["encoders.clip.weights"] == PUBLISHED["clip"]
    assert ours["marks"]["fid"] == "best" and data["rows"][0]["reference_only"] is True
    assert data["reference"]["sha256"] == hashlib.sha256(lb.reference_csv_bytes()).hexdigest()
    table = list(csv.DictReader(io.StringIO(lb.to_csv(board))))
    assert len(table) == 8 and table[-1]["fid"] == "11.0" and table[-1]["fid_std"] == "1.0"
    assert table[-1]["missing_folds"] == "3" and table[-1]["fid_mark"] == "best"
    assert table[0]["name"] == "ImageBind" and table[0]["reference_only"] == "true" and table[0]["fid"] == "76.81"
    assert table[-1]["sources"] == ";".join(str(p) for p in paths)


def test_write_leaderboard(tmp_path):
    board = lb.build_leaderboard([make_result("ours", 0)], "llp-multi")
    paths = lb.write_leaderboard(tmp_path / "out", board, radar=True)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["leaderboard.csv", "leaderboard.json",
                                                                  "leaderboard.md", "radar.png"]
    assert paths["md"].read_text() == lb.to_markdown(board)
    (tmp_path / "file").write_text("")
    with pytest.raises(MacsError, match="exists and is not a folder"):
        lb.write_leaderboard(tmp_path / "file", board)


@pytest.mark.parametrize("table", [1, 2, 3, 4])
def test_committed_paper_tables_do_not_drift(table):
    folder = REPO / "leaderboards" / "paper" / f"table{table}"
    board = lb.paper_leaderboard(table)
    assert (folder / "leaderboard.md").read_text(encoding="utf-8") == lb.to_markdown(board)
    assert (folder / "leaderboard.csv").read_text(encoding="utf-8") == lb.to_csv(board)
    assert (folder / "leaderboard.json").read_text(encoding="utf-8") == lb.to_json(board)
    with Image.open(folder / "radar.png") as img:
        assert img.format == "PNG" and img.size == (800 + 320, 800)  # the legend in a column beside the chart


# ------------------------------------------------------------------------------------------------ radar, grid


def test_radar_values_normalise_and_invert():
    rows = [row("a", fid=10.0, ais=0.1, kid=None), row("b", fid=30.0, ais=0.3, kid=0.5),
            row("c", fid=20.0, ais=0.2, kid=None)]
    values = lb.radar_values(rows)
    j_fid, j_ais, j_kid = (lb.METRICS.index(m) for m in ("fid", "ais", "kid"))
    assert [v[j_fid] for v in values] == [1.0, 0.0, 0.5]  # lower is better: inverted
    assert [v[j_ais] for v in values] == pytest.approx([0.0, 1.0, 0.5])
    assert np.isnan(values[0][j_kid]) and values[1][j_kid] == 1.0  # a lone value: every row agrees


def test_radar_png_size(tmp_path):
    path = lb.radar_png(lb.paper_table(3), tmp_path / "r" / "radar.png", title="t")
    with Image.open(path) as img:
        assert img.format == "PNG" and img.size == (800 + 320, 800)  # the legend in a column beside the chart
        assert len(img.convert("RGB").getcolors(1 << 20)) > 10  # something was drawn
    assert not [p for p in path.parent.iterdir() if p.name != "radar.png"]  # no temporary file left
    with pytest.raises(MacsError, match="at least one row"):
        lb.radar_png([], tmp_path / "empty.png")


COLORS = {"gt": (200, 30, 30), "m1": (30, 200, 30), "m2": (30, 30, 200)}


@pytest.fixture
def grid_inputs(tmp_path):
    from macs_bench.datasets.manifest import COLUMNS

    ids = ["s3", "s1", "s2", "s4"]
    lines = [",".join(COLUMNS)] + [f"{sid},,,,dog;speech,,2,,0,test" for sid in ids]
    (tmp_path / "manifest").mkdir()
    (tmp_path / "manifest" / "manifest.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "media" / "frames").mkdir(parents=True)
    for sid in ids:
        Image.new("RGB", (64, 48), COLORS["gt"]).save(tmp_path / "media" / "frames" / f"{sid}.jpg")
    preds = {}
    for name, suffix in (("m1", ".png"), ("m2", ".jpg")):
        folder = tmp_path / name
        folder.mkdir()
        for sid in ids:
            if not (name == "m2" and sid == "s2"):  # m2 lacks s2
                Image.new("RGB", (40, 40), COLORS[name]).save(folder / f"{sid}{suffix}")
        preds[name] = folder
    return tmp_path, preds


def test_sample_grid(grid_inputs):
    root, preds = grid_inputs
    out = root / "grid.png"
    shown = sample_grid(root / "manifest", root / "media", preds, out, n=2, tile=32)
    assert shown == ["s1", "s3"]  # first sorted ids every model has (s2 lacks m2)
    assert grid_size(2, 2, 32) == (112, 164)
    with Image.open(out) as img:
        assert img.format == "PNG" and img.size == (112, 164)
        rgb = img.convert("RGB")
        for c, name in enumerate(["gt", "m1", "m2"]):  # tile centres of the second row
            pixel = rgb.getpixel((4 + c * 36 + 16, 32 + (30 + 32 + 4) + 30 + 16))
            assert max(abs(a - b) for a, b in zip(pixel, COLORS[name])) < 12, (name, pixel)
        assert rgb.getpixel((2, 2)) == (255, 255, 255)
    first = out.read_bytes()
    sample_grid(root / "manifest", root / "media", preds, out, n=2, tile=32)
    assert out.read_bytes() == first  # deterministic


def test_sample_grid_errors(grid_inputs):
    root, preds = grid_inputs
    with pytest.raises(MacsError, match=re.escape(f"{preds['m2'] / 's2'}.png: no image of 'm2' for sample s2")):
        sample_grid(root / "manifest", root / "media", preds, root / "g.png", sample_ids=["s1", "s2"])
    (root / "media" / "frames" / "s1.jpg").unlink()
    with pytest.raises(MacsError, match=re.escape(f"{root / 'media' / 'frames' / 's1.jpg'}: ground-truth frame")):
        sample_grid(root / "manifest", root / "media", preds, root / "g.png")
    with pytest.raises(MacsError, match="s9: not a sample"):
        sample_grid(root / "manifest", root / "media", preds, root / "g.png", sample_ids=["s9"])
    (preds["m1"] / "s3.png").write_text("not an image")
    with pytest.raises(MacsError, match=re.escape(f"{preds['m1'] / 's3.png'}: cannot read the image")):
        sample_grid(root / "manifest", root / "media", preds, root / "g.png", sample_ids=["s3"])
    assert not (root / "g.png").exists()


# ----------------------------------------------------------------------------------------------------- CLI


def test_cli_build_paper_and_grid(tmp_path, grid_inputs):
    root, preds = grid_inputs
    for f in range(3):
        write(tmp_path / "results", f"ours/f{f}.json", make_result("ours", f))
    write(tmp_path / "results", "rand/f0.json", make_result("rand", 0, comparable=False))
    out = run_cli("leaderboard", "build", "--results", str(tmp_path / "results"), "--dataset", "llp-multi",
                  "--out", str(tmp_path / "board"), "--folds", "0,1,2,3,4")
    assert out.returncode == 0, out.stderr
    assert "note: Not comparable with the paper: rand" in out.stdout and "wrote" in out.stdout
    data = json.loads((tmp_path / "board" / "leaderboard.json").read_text())
    assert [r["name"] for r in data["rows"]] == ["ours", "rand"] and data["rows"][0]["missing_folds"] == [3, 4]
    with Image.open(tmp_path / "board" / "radar.png") as img:
        assert img.size == (800 + 320, 800)
    out = run_cli("leaderboard", "paper", "--table", "2", "--out", str(tmp_path / "t2"), "--no-radar")
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in (tmp_path / "t2").iterdir()) == ["leaderboard.csv", "leaderboard.json",
                                                                 "leaderboard.md"]
    assert (tmp_path / "t2" / "leaderboard.md").read_text() == lb.to_markdown(lb.paper_leaderboard(2))
    out = run_cli("leaderboard", "grid", "--manifest", str(root / "manifest"), "--media", str(root / "media"),
                  "--pred", f"m1={preds['m1']}", "--pred", f"m2={preds['m2']}", "--out", str(tmp_path / "g.png"),
                  "--n", "3", "--tile", "32")
    assert out.returncode == 0, out.stderr
    with Image.open(tmp_path / "g.png") as img:
        assert img.size == grid_size(3, 2, 32)


@pytest.mark.parametrize("args, message", [
    (["leaderboard", "build", "--results", "res", "--dataset", "llp-multi", "--out", "o"], "bad.json: not a macs"),
    (["leaderboard", "build", "--results", "good", "--dataset", "landscape", "--out", "o"],
     "a result for dataset 'llp-multi', not 'landscape'"),
    (["leaderboard", "build", "--results", "good", "--dataset", "llp-multi", "--out", "o", "--paper-rows", "x"],
     "Invalid value for '--paper-rows'"),
    (["leaderboard", "build", "--results", "good", "--dataset", "llp-multi", "--out", "o", "--folds", "a,b"],
     "--folds must be comma-separated integers"),
    (["leaderboard", "build", "--results", "good", "--dataset", "llp-multi", "--out", "afile"],
     "afile: exists and is not a folder"),
    (["leaderboard", "build", "--dataset", "llp-multi", "--out", "o"], "Missing option '--results'"),
    (["leaderboard", "paper", "--table", "7", "--out", "o"], "Invalid value for '--table'"),
    (["leaderboard", "grid", "--manifest", "m", "--media", "m", "--pred", "nodir", "--out", "g.png"],
     "--pred must be NAME=DIR"),
    (["leaderboard", "grid", "--manifest", "m", "--media", "m", "--pred", "a=missing", "--out", "g.png"],
     "missing: prediction folder of 'a' does not exist"),
])
def test_cli_errors_are_one_line(tmp_path, args, message):
    write(tmp_path, "res/bad.json", "{}")
    write(tmp_path, "good/r.json", make_result("m", 0))
    (tmp_path / "afile").write_text("")
    out = run_cli(*args, cwd=tmp_path)
    assert out.returncode == 2, out.stdout + out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and message in out.stderr, out.stderr
    assert not (tmp_path / "o").exists() and not (tmp_path / "g.png").exists()



def test_rows_measured_differently_are_listed_but_not_ranked():
    a = make_result("a", 0, weights={"clip": "other"})
    b = make_result("b", 0, metrics={"fid": 1.0})
    board = lb.build_leaderboard([a, b], "llp-multi", separate_signatures=True, paper_rows="never")
    assert board.marks == [{}, {}]
    assert any("not ranked" in note for note in board.notes)


def test_values_that_print_alike_share_the_mark():
    rows = lb.aggregate([make_result("a", 0, metrics={"fid": 10.001}), make_result("b", 0, metrics={"fid": 10.004}),
                         make_result("c", 0, metrics={"fid": 12.0})], "llp-multi")
    marks = lb.mark(rows)
    assert marks[0]["fid"] == marks[1]["fid"] == "best" and marks[2]["fid"] == "second"


def test_kid_settings_are_part_of_the_signature():
    a, b = make_result("a", 0), make_result("a", 1)
    b["config"]["kid_subsets"] = 10
    a["config"]["kid_subsets"] = 100
    with pytest.raises(MacsError, match="kid_subsets"):
        lb.aggregate([a, b], "llp-multi")


def test_a_leaderboard_written_inside_the_results_folder_is_not_read_back(tmp_path):
    results = tmp_path / "results"
    write(results, "a0.json", make_result("a", 0))
    write(results, "b0.json", make_result("b", 0, metrics={"fid": 3.0}))
    for _ in range(2):
        lb.write_leaderboard(results / "board", lb.build_leaderboard(lb.load_results(results), "llp-multi"))
    assert {r.model for r in lb.load_results(results)} == {"a", "b"}


def test_bootstrap_intervals_show_for_a_single_result_and_travel_in_the_json(tmp_path):
    one = make_result("solo", fold=None)
    one["intervals"] = {"metrics": {"fid": {"low": 91.25, "high": 108.5, "rounds": 200},
                                    "ais": {"low": None, "high": None, "rounds": 1}}}
    folds = [make_result("multi", fold=f) for f in (0, 1)]
    folds[1]["intervals"] = {"metrics": {"fid": {"low": 90.0, "high": 110.0, "rounds": 200}}}
    board = lb.build_leaderboard([one, *folds], "llp-multi", paper_rows="never", separate_signatures=True)
    rows = md_rows(lb.to_markdown(board))
    solo = next(cells for name, cells in rows.items() if name.startswith("solo"))
    multi = next(cells for name, cells in rows.items() if name.startswith("multi"))
    fid, ais = lb.METRICS.index("fid"), lb.METRICS.index("ais")
    assert "[91.25, 108.50]" in solo[fid] and "[" not in solo[ais]  # fid has one, ais's is undefined
    assert "[" not in multi[fid]  # several folds: mean ± std, the intervals stay in the JSON
    data = {r["name"]: r for r in lb.board_dict(board)["rows"]}
    assert data["multi"]["intervals"]["fid"] == [None, [90.0, 110.0]]
    assert data["solo"]["intervals"]["fid"] == [[91.25, 108.5]]
