"""The ablation run's outputs: one table (fold means; against MACS the paired difference, its interval and Holm's
p over the row's metrics, from :func:`macs_bench.compare`), the controls beside it, a leaderboard with its
radar, and a sample grid. ``ablations.json`` keeps every number and what made it."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from macs_bench import __version__
from macs_bench.io import atomic_write_text, dumps_json
from macs_bench.metrics.spec import ARROWS, DIRECTIONS, LABELS, PAPER_METRICS

TABLE_METRICS = (*PAPER_METRICS, "source_coverage")
ALPHA = 0.05
GRID_ROWS = ("oracle", "MACS", "no-sep 1 token", "no-sep M slots", "no-DC", "top-1", "slots 4,5,6")


def _label(metric: str) -> str:
    return LABELS.get(metric, "coverage") + ARROWS.get(DIRECTIONS.get(metric, "higher"), "")


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"


def differences(results: dict[str, list], reference: str, rows: list[str], rounds: int, seed: int,
                processes: int = 1, log: Callable[[str], None] = print) -> dict[str, dict[str, dict[str, Any]]]:
    """Per row and metric, row - reference over the same samples of every fold (``macs_bench.compare``): the
    difference, its interval, the permutation p and Holm's p over the row's metrics (``p_adjusted``, which
    the marks use: each row is one comparison with the reference), and Holm's p over every cell of the table
    (``p_holm_table``, recorded; with R permutation rounds no p is below 1 / (R + 1), so over m cells it
    cannot fall below m / (R + 1)). The rows' comparisons are independent and seeded, so they run in
    ``processes`` worker processes with the same numbers as in one."""
    from macs_model.jobs import run_jobs

    jobs = [(f"table: {row} - {reference}", _difference, ([*results[row], *results[reference]], rounds, seed))
            for row in rows]
    done = run_jobs(jobs, processes, log, "[ablations]")
    return mark({row: done[name] for row, (name, _, _) in zip(rows, jobs)})


def mark(found: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Add to each (row, metric) cell its Holm p over the whole table (``p_holm_table``) and its verdict:
    ``better`` / ``worse`` than the reference where Holm's p over the row's metrics (``p_adjusted``) is below
    :data:`ALPHA`, by the metric's direction; else empty."""
    from macs_bench.metrics.paired import holm

    cells = [(row, metric) for row in found for metric in found[row]]
    for (row, metric), q in zip(cells, holm([found[r][m]["p"] for r, m in cells])):
        d = found[row][metric]
        d["p_holm_table"] = q
        sign = 1 if DIRECTIONS.get(metric, "higher") == "higher" else -1
        row_q = d["p_adjusted"]
        d["verdict"] = ("" if row_q is None or row_q >= ALPHA or not d["value"] else
                        "better" if sign * d["value"] > 0 else "worse")
    return found


def _difference(results: list, rounds: int, seed: int) -> dict[str, dict[str, Any]]:
    """One row's comparison with the reference (a module-level function, so that a worker process can run it)."""
    from macs_bench.comparison import compare

    comparison = compare(results, rounds=rounds, seed=seed)
    return {d.metric: {**d.to_dict(), "better": comparison.better(d), "unit": comparison.unit,
                       "n": comparison.n} for d in comparison.differences}


def add_judged_coverage(results: list, labels: dict[str, tuple[str, ...]]) -> None:
    """Give each world result the world judge's per-source coverage of its images (``source_coverage``, per
    clip and mean), so that ``compare`` pairs it as it pairs AIS and IIS. The images are the ones the result
    scored (its recorded predictions folder)."""
    from macs_bench.errors import MacsError
    from macs_bench.results import per_sample_path, read_per_sample
    from macs_bench.world.towers import load_towers
    from macs_model.demo import judged_coverage

    towers = load_towers()
    for r in results:
        if r.per_sample is None:
            r.per_sample = read_per_sample(per_sample_path(r.source))
        pred = Path(r.provenance["inputs"]["predictions"])
        if not pred.is_dir():
            raise MacsError(f"{r.source}: its predictions folder {pred} is gone; the judge needs the images")
        ids = list(r.per_sample.index)
        scores = judged_coverage(pred, ids, labels, towers)
        r.per_sample["source_coverage"] = scores.per_sample
        r.metrics["source_coverage"] = scores.mean
        r.directions["source_coverage"] = "higher"


def _cell(mean: float | None, d: dict[str, Any] | None) -> str:
    if d is None:
        return _fmt(mean)
    if d.get("low") is None:
        return f"{_fmt(mean)} (Δ {_fmt(d.get('value'))})"
    mark = {"better": " ▲", "worse": " ▼"}.get(d["verdict"], "")
    return f"{_fmt(mean)} (Δ {d['value']:+.3g} [{d['low']:+.3g}, {d['high']:+.3g}]{mark})"


def markdown(means: dict[str, dict[str, float | None]], diffs: dict[str, dict[str, dict[str, Any]]],
             models: list[str], controls: list[str], notes: dict[str, str], metrics: list[str], header: str) -> str:
    """The table: fold means; beside each model's mean its difference from MACS and the 95 % paired interval,
    ▲ / ▼ where Holm's p over the row's metrics is below 0.05 (better / worse than MACS); controls below,
    unranked."""
    cols = ["row", *(_label(m) for m in metrics), "what"]
    lines = [header, "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in models:
        lines.append(f"| {row} | " + " | ".join(_cell(means[row].get(m), diffs.get(row, {}).get(m))
                                                for m in metrics) + f" | {notes.get(row, '')} |")
    for row in controls:
        lines.append(f"| *{row}* (control) | " + " | ".join(_fmt(means[row].get(m)) for m in metrics)
                     + " | calibrates the metrics; never ranked |")
    return "\n".join(lines)


def write_outputs(out: Path, plan, bench, record: dict[str, Any], *, log: Callable[[str], None] = print):
    """Table, leaderboard + radar and grid of a finished run; returns its :class:`AblationResult`."""
    from macs_bench.boards import build_leaderboard, load_results, write_leaderboard
    from macs_bench.plots.grid import sample_grid
    from macs_model.ablation_plan import CONTROLS, REFERENCE, VARIANTS, AblationResult, pred_dir
    from macs_model.demo import _labels
    from macs_model.generation.api import fold_ids

    from macs_model.baselines.world import WORLD_BASELINES

    wanted = {*plan.rows, *CONTROLS, *(WORLD_BASELINES if plan.world and plan.baselines else ())}
    loaded = [r for r in load_results(out / "results")  # by file name: a baseline's model name is its display name
              if r.fold in plan.folds and Path(r.source).stem.rsplit("-fold", 1)[0] in wanted]
    by_model: dict[str, list] = {}
    for r in loaded:
        by_model.setdefault(r.model, []).append(r)
    controls = [c for c in CONTROLS if c in by_model]
    models = [m for m in by_model if m not in controls]
    order = {v.name: i for i, v in enumerate(VARIANTS)}
    models.sort(key=lambda m: (order.get(m, len(order)), m))
    board = build_leaderboard(loaded, loaded[0].dataset, folds=list(plan.folds), paper_rows="never",
                              significance=False)
    board.title = "MACS ablations" + (" in the synthetic world" if plan.world else "")
    means = {row.name: dict(row.mean) for row in board.rows}
    labels_of = _labels(bench.manifest)
    if plan.world:
        add_judged_coverage(loaded, labels_of)
    for name, rs in by_model.items():  # per-source coverage is a per-sample column, not a board metric
        values = [r.metrics.get("source_coverage") for r in rs if r.metrics.get("source_coverage") is not None]
        means.setdefault(name, {})["source_coverage"] = sum(values) / len(values) if values else None
    metrics = [m for m in TABLE_METRICS if any(means[r].get(m) is not None for r in models)]
    diffs = differences(by_model, REFERENCE, [m for m in models if m != REFERENCE], plan.rounds, plan.seed,
                        plan.processes(), log)
    notes = {**{m: "world baseline (harness)" for m in models}, **{v.name: v.note for v in VARIANTS}}
    unit = diffs and next(iter(next(iter(diffs.values())).values()))["unit"]
    load = record.get("load_average")
    sentences = [
        f"{board.title}: folds {', '.join(map(str, plan.folds))}, {len(loaded[0].per_sample)} test clips per fold "
        f"(first fold); means over folds.",
        f"Δ = row − MACS on the same clips with its 95 % paired interval ({plan.rounds} rounds, {unit} "
        f"resampling); ▲ / ▼: better / worse than MACS at p < {ALPHA}, Holm-corrected over the row's metrics "
        f"(each row is one paired comparison with MACS, as `macs-bench compare` makes it).",
        f"Work time {record['work_seconds'] / 60:.1f} min wall (each job when it ran; this invocation "
        f"{record['run_seconds'] / 60:.1f} min wall before the table, {record['cpu_seconds'] / 60:.1f} min CPU) "
        f"on {record['cpus']} CPUs" + (f" (load average {load[0]:.1f} at the end: a shared machine inflates it)"
                                       if load else "") + "."]
    cells = sum(len(d) for d in diffs.values())
    if cells / (plan.rounds + 1) >= ALPHA:
        sentences.insert(2, f"Over all {cells} cells of the table Holm's correction could reach no p below "
                            f"{cells / (plan.rounds + 1):.2f} with {plan.rounds} permutation rounds, so it marks "
                            f"nothing (`p_holm_table` in ablations.json).")
    if plan.world:
        from macs_bench.world.controls import chance_coverage
        from macs_bench.world.synthetic import CLASSES

        chance = chance_coverage([labels_of[s] for r in by_model[REFERENCE] for s in r.per_sample.index],
                                 len(CLASSES))
        sentences.insert(2, f"Coverage: per-source coverage under the world's judge (its image and text towers); "
                            f"a detector that knows nothing scores {chance:.3f}.")
    header = " ".join(sentences)
    table = markdown(means, diffs, models, controls, notes, metrics, header)
    board_dir = out / "leaderboard"
    ranges = None
    if {"noise", "oracle"} <= set(means):
        ranges = {m: (means["noise"][m], means["oracle"][m]) for m in PAPER_METRICS
                  if means["noise"].get(m) is not None and means["oracle"].get(m) is not None}
    written = write_leaderboard(board_dir, board, radar=True, radar_ranges=ranges,
                                radar_note="each axis from the noise row (centre) to the oracle row (rim)"
                                if ranges else None)
    grid = board_dir / "grid.png"
    shown = [r for r in GRID_ROWS if r in by_model]
    labels = {sid: len(names) for sid, names in labels_of.items()}
    test = fold_ids(bench.manifest, plan.folds[0])[1]
    ids = [s for k in sorted(set(labels[t] for t in test)) for s in sorted(t for t in test if labels[t] == k)[:1]]
    sample_grid(bench.manifest, bench.media, {name: pred_dir(out, name) for name in shown}, grid,
                sample_ids=ids, tile=128)  # 64 px frames x2, 32 px images x4
    record = {**record, "tool": {"macs": __version__}, "metrics": metrics, "means": means, "differences": diffs,
              "models": models, "controls": controls, "table": table,
              "results": {r.model + f"-fold{r.fold}": r.source for r in loaded}}
    atomic_write_text(out / "ablations.md", table + "\n")
    atomic_write_text(out / "ablations.json", dumps_json(record))
    log(table)
    return AblationResult(out, out / "ablations.md", out / "ablations.json", written.get("radar", board_dir /
                          "radar.png"), grid, record["run_seconds"], rows=means)

