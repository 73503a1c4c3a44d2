"""The circuit breaker of a yt-dlp run: one probe before it, a stop with one line after K network failures or
bot checks in a row, yt-dlp's own lines in the ledger (not on the screen), and a requests-per-minute cap."""

import json
import time

import pytest
from yt_dlp.utils import DownloadError

from media_helpers import clip_row, run_fetch_cli, write_manifest

from macs_bench.errors import RetryLater
from macs_bench.media import network
from macs_bench.media.fetch import FetchOptions, fetch
from macs_bench.media.ledger import Ledger
from macs_bench.media.network import CircuitBreaker, RateCap
from macs_bench.media.network import probe as real_probe
from macs_bench.media.sources import Unavailable  # before conftest's offline stand-in replaces it

OFFLINE = ("ERROR: [youtube] {id}: Unable to download API page: <urlopen error [Errno -3] Temporary failure in "
           "name resolution> (caused by TransportError(\"<urlopen error [Errno -3] Temporary failure in name "
           "resolution>\"))")
BOT = "ERROR: [youtube] {id}: Sign in to confirm you\u2019re not a bot. Use --cookies-from-browser or --cookies"


class FakeYDL:
    """yt_dlp.YoutubeDL as it behaves offline (or bot-checked): two retry warnings to its logger, then the
    error. Counts the downloads it was asked for."""

    calls = 0
    message = OFFLINE

    def __init__(self, options):
        self.logger = options["logger"]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def download(self, urls):
        FakeYDL.calls += 1
        ytid = urls[0].rsplit("=", 1)[1]
        for attempt in (1, 2):
            self.logger.warning(f"[youtube] {ytid}: Unable to download API page: <urlopen error [Errno -3] "
                                f"Temporary failure in name resolution>. Retrying ({attempt}/2)...")
        raise DownloadError(FakeYDL.message.format(id=ytid))


@pytest.fixture
def offline(monkeypatch):
    import yt_dlp

    monkeypatch.setattr(yt_dlp, "YoutubeDL", FakeYDL)
    FakeYDL.calls, FakeYDL.message = 0, OFFLINE
    return FakeYDL


def many_ids(folder, n):
    return write_manifest(folder, [clip_row(f"v{i:010d}", 0, 10) for i in range(n)])


def test_offline_run_of_7201_ids_stops_within_a_minute_with_one_line(tmp_path, offline, monkeypatch, capsys):
    """The network drops after the probe: the breaker stops the run, not 7,201 x 3 attempts later."""
    manifest = many_ids(tmp_path / "m", 7201)
    started = time.monotonic()
    code, out, err = run_fetch_cli(monkeypatch, capsys, "--manifest", manifest, "--media", tmp_path / "media",
                             "--backoff", "0.01")
    assert time.monotonic() - started < 60
    assert code == 3
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: YouTube unreachable:"), err
    assert "Retrying" not in err + out  # yt-dlp's retry lines went to the ledger
    assert offline.calls <= 8 + 4 * 4  # the breaker's K, plus what was in flight
    with Ledger(tmp_path / "media" / "ledger.sqlite") as ledger:
        failed = list(ledger.all().values())
    assert failed and all(e.status == "failed" and e.reason == "network" for e in failed)
    assert any("Retrying (1/2)" in line for line in failed[0].detail["log"])
    assert (tmp_path / "media" / "fetch_report.json").is_file()  # the report of what was done is written


def test_bot_checks_stop_the_run_with_the_cookies_hint(tmp_path, offline, monkeypatch, capsys):
    offline.message = BOT
    manifest = many_ids(tmp_path / "m", 50)
    code, _, err = run_fetch_cli(monkeypatch, capsys, "--manifest", manifest, "--media", tmp_path / "media",
                           "--backoff", "0", "--rate-limit-backoff", "0", "--stop-after", "3", "--jobs", "1")
    assert code == 3 and err.strip().splitlines() == [err.strip()]
    assert "blocked by a bot check: pass --cookies FILE" in err
    assert offline.calls == 3


def test_probe_failure_stops_before_any_download(tmp_path, offline, monkeypatch, capsys):
    monkeypatch.setattr(network, "probe", lambda *a, **k: "[Errno -3] Temporary failure in name resolution")
    manifest = many_ids(tmp_path / "m", 20)
    code, _, err = run_fetch_cli(monkeypatch, capsys, "--manifest", manifest, "--media", tmp_path / "media")
    assert code == 3 and offline.calls == 0
    assert err.strip() == ("error: YouTube unreachable: [Errno -3] Temporary failure in name resolution; check "
                           "the connection (or proxy), then rerun the same command (finished clips are kept)")


def test_the_real_probe_reports_an_unreachable_host(monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    why = real_probe("http://127.0.0.1:9/", timeout=2)  # the discard port: nothing listens there
    assert why and "refused" in why.lower()


def test_python_fetch_raises_retry_later_and_other_outcomes_reset_the_breaker(tmp_path, offline):
    from macs_bench.media.sources import YtDlpDownloader

    manifest = many_ids(tmp_path / "m", 30)
    with pytest.raises(RetryLater, match="YouTube unreachable") as stopped:
        fetch(manifest, tmp_path / "media", downloader=YtDlpDownloader(),
              options=FetchOptions(backoff=0, jobs=2, stop_after=5))
    assert stopped.value.report.n_samples == 30 and stopped.value.report.n_ok == 0  # what the run did
    breaker = CircuitBreaker(3)
    assert breaker.failure("network", "x") == (1, None) and breaker.failure("bot-check", "x") == (2, None)
    breaker.success()  # a clip fetched, or YouTube saying one is removed: the network works
    assert breaker.failure("network", "x") == (1, None) and breaker.failure("network", "x") == (2, None)
    assert breaker.failure("transient", "HTTP Error 503") == (0, None)  # a server error is no reason to stop
    assert [breaker.failure("network", "x")[1] for _ in range(3)][-1] is not None
    assert CircuitBreaker(0).failure("network", "x") == (1, None)  # 0: never stops


def test_one_long_pause_per_run_of_bot_checks_then_the_stop(tmp_path, offline, monkeypatch):
    """Serially (one worker) K bot checks must not cost K long pauses: waiting once did not help."""
    from macs_bench.media.clip import Fetcher
    from macs_bench.media.sources import YtDlpDownloader

    offline.message = BOT
    pauses = []
    monkeypatch.setattr(Fetcher, "pause", lambda self, seconds: pauses.append(seconds))
    monkeypatch.setattr(Fetcher, "_polite", lambda self: None)
    with pytest.raises(RetryLater, match="blocked by a bot check"):
        fetch(many_ids(tmp_path / "m", 20), tmp_path / "media", downloader=YtDlpDownloader(),
              options=FetchOptions(jobs=1, backoff=1.0, retries=2, rate_limit_backoff=300.0, stop_after=6))
    assert offline.calls == 6 and pauses.count(300.0) == 1


def test_requests_per_minute_cap_spaces_downloads_evenly():
    now = [100.0]
    cap = RateCap(30, clock=lambda: now[0])  # one request every 2 s
    assert [cap.reserve() for _ in range(3)] == [0.0, 2.0, 4.0]  # three workers at once: queued 2 s apart
    now[0] = 110.0  # idle long enough: no wait, and no burst credit piled up
    assert cap.reserve() == 0.0 and cap.reserve() == 2.0


def test_the_cap_is_applied_before_each_download(tmp_path, monkeypatch):
    from fake_downloader import FakeDownloader

    from macs_bench.media.clip import Fetcher

    waits = []
    monkeypatch.setattr(Fetcher, "pause", lambda self, seconds: waits.append(round(seconds, 1)))

    class Removed(FakeDownloader):
        def download(self, ytid, start, end, workdir):
            raise Unavailable("removed")

    manifest = many_ids(tmp_path / "m", 4)
    (tmp_path / "v").mkdir()
    fetch(manifest, tmp_path / "media", downloader=Removed(tmp_path / "v"),
          options=FetchOptions(jobs=1, max_per_minute=6, quality=None))
    assert waits == [10.0, 20.0, 30.0]  # slots 10 s apart (the stand-in pause does not wait, so they pile up)


def test_every_clip_failing_transiently_exits_with_the_rerun_code_not_nothing_fetched(tmp_path, monkeypatch,
                                                                                      capsys):
    ids = [f"busyvideo{i:02d}" for i in range(3)]
    (tmp_path / "v").mkdir()
    monkeypatch.setenv("FAKE_VIDEOS", str(tmp_path / "v"))
    monkeypatch.setenv("FAKE_TRANSIENT", json.dumps({ytid: 99 for ytid in ids}))  # HTTP 503 every time
    manifest = write_manifest(tmp_path / "m", [clip_row(ytid, 0, 10) for ytid in ids])
    code, _, err = run_fetch_cli(monkeypatch, capsys, "--manifest", manifest, "--media", tmp_path / "media",
                           "--backoff", "0", "--retries", "1", "--downloader", "fake_downloader:FakeDownloader")
    assert code == 3 and "3 samples failed transiently: rerun" in err and "nothing could be fetched" not in err
