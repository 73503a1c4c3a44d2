"""The README's computed tables are what the runs wrote: the ablation table is the one in docs/ablations-run/,
whose ablations.json holds the same table and the numbers its cells print."""

import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUN = REPO / "docs" / "ablations-run"


def _table_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("| ")]


def test_the_readme_shows_the_ablation_table_the_run_wrote():
    written = _table_rows((RUN / "ablations.md").read_text(encoding="utf-8"))
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert written and all(row in readme for row in written)
    record = json.loads((RUN / "ablations.json").read_text(encoding="utf-8"))
    assert _table_rows(record["table"]) == written
    assert record["plan"]["folds"] == [0, 1, 2, 3, 4]
    macs = next(row for row in written if row.startswith("| MACS |"))
    assert f"{record['means']['MACS']['iis']:.4f}" in macs
    no_sep = next(row for row in written if row.startswith("| no-sep 1 token |"))
    d = record["differences"]["no-sep 1 token"]["iis"]
    assert f"Δ {d['value']:+.3g} [{d['low']:+.3g}, {d['high']:+.3g}]" in no_sep
