"""A long run: available.txt and the report rewritten during it, work taken in bounded batches (memory flat),
a typed FetchReport, and a progress bar for Python fetch() in a terminal."""

import io
import json
import sys
import threading

import pytest

from media_helpers import linked_clips

import macs_bench
from macs_bench.media.clip import FetchOptions, Outcome
from macs_bench.media.fetch import IN_FLIGHT_PER_JOB, fetch, run_fetch
from macs_bench.media.items import FetchItem
from macs_bench.media.report import FetchReport

# the report's keys, in the order fetch_report.json has always had them
REPORT_KEYS = ["tool", "version", "manifest", "manifest_sha256", "shard", "options", "tools", "n_samples", "n_ok",
               "by_label_count", "unavailable_reasons", "poor_quality_excluded", "failed", "n_ok_in_ledger",
               "ledger", "this_run", "this_run_seconds"]


@pytest.fixture
def three_clips(tmp_path, long_video):
    return linked_clips(tmp_path, long_video, "longrun", 3)


def ids_on_disk(media):
    path = media / "available.txt"
    return path.read_text().split() if path.exists() else []


@pytest.mark.parametrize("every, expected", [(0.0, [0, 1, 2]), (300.0, [0, 0, 0])])
def test_available_txt_and_the_report_are_rewritten_during_the_run(tmp_path, three_clips, every, expected):
    src, manifest, rows = three_clips
    media = tmp_path / "media"
    seen, reported = [], []

    def factory(total):
        def advance(item, outcome):  # called as each clip is recorded, before the next is looked at
            seen.append(len(ids_on_disk(media)))
            if (media / "fetch_report.json").exists():
                reported.append(json.loads((media / "fetch_report.json").read_text())["this_run"].get("ok", 0))
        return advance

    report = fetch(manifest, media, source_dir=src, progress_factory=factory,
                   options=FetchOptions(jobs=1, quality=None, report_every=every))
    assert seen == expected  # every 0 s: after each clip; every 300 s: not in a run of seconds
    assert reported == [n for n in expected if n]
    assert report.n_ok == 3 and len(ids_on_disk(media)) == 3  # and the final rewrite at the end


class Instant:
    """A fetcher whose clips take no time and write nothing: the run loop alone."""

    def __init__(self, jobs):
        self.options = FetchOptions(jobs=jobs)
        self.stop = threading.Event()

    def process(self, item):
        return Outcome("ok")


class NoLedger:
    def record(self, *args):
        pass


def test_work_is_taken_in_bounded_batches_not_one_future_per_id(tmp_path):
    taken = [0]

    def todo(n):
        for i in range(n):
            taken[0] += 1
            yield FetchItem(f"s{i}", "", "0", "10", (), 1)

    ahead = []
    done = [0]

    def progress(item, outcome):
        done[0] += 1
        ahead.append(taken[0] - done[0])

    counts = run_fetch(Instant(jobs=2), NoLedger(), todo(2000), progress)
    assert counts == {"ok": 2000} and done[0] == 2000
    assert max(ahead) <= 2 * IN_FLIGHT_PER_JOB  # never more than a few per worker taken ahead


def test_fetch_returns_a_typed_report_with_the_json_keys(tmp_path, three_clips):
    src, manifest, _ = three_clips
    media = tmp_path / "media"
    report = fetch(manifest, media, source_dir=src, options=FetchOptions(quality=None))
    assert isinstance(report, FetchReport) and macs_bench.FetchReport is FetchReport
    assert (report.n_ok, report.n_samples, report.n_failed, report.this_run) == (3, 3, 0, {"ok": 3})
    on_disk = json.loads((media / "fetch_report.json").read_text())
    assert list(on_disk) == REPORT_KEYS and report.to_dict() == on_disk
    assert (report.options["stop_after"], report.options["max_per_minute"]) == (8, None)  # the breaker's settings


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("terminal", [True, False])
def test_python_fetch_shows_a_progress_bar_when_stderr_is_a_terminal(tmp_path, three_clips, monkeypatch,
                                                                     terminal):
    src, manifest, _ = three_clips
    for name in ("TERM", "FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "JUPYTER_COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    stderr = Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    fetch(manifest, tmp_path / "media", source_dir=src, options=FetchOptions(quality=None, jobs=1))
    text = stderr.getvalue()
    if terminal:
        assert "fetch" in text and "3/3" in text
    else:
        assert text == ""
        fetch(manifest, tmp_path / "media2", source_dir=src, options=FetchOptions(quality=None), progress=True)
        assert "3/3" in stderr.getvalue()  # asked for: drawn anyway
