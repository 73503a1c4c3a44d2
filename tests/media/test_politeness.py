"""Politeness and access: --sleep with jitter, one long shared pause after a rate limit or bot check,
cookies and extractor arguments passed to yt-dlp and recorded without secrets."""

import json
import os

from fake_downloader import FakeDownloader
from media_helpers import clip_row, write_manifest

from macs_bench.media.fetch import Fetcher, FetchOptions, fetch
from macs_bench.media.ledger import Ledger
from macs_bench.media.sources import YtDlpDownloader, classify_error


def served(tmp_path, long_video, n=3):
    videos = tmp_path / "yt"
    videos.mkdir()
    rows = []
    for i in range(n):
        ytid = f"politevid{i:02d}"
        os.symlink(long_video, videos / f"{ytid}.mp4")
        rows.append(clip_row(ytid, i, i + 10))
    return videos, write_manifest(tmp_path / "m", rows), rows


def test_sleep_before_each_download_with_jitter(tmp_path, long_video, monkeypatch):
    videos, manifest, rows = served(tmp_path, long_video)
    pauses = []
    monkeypatch.setattr(Fetcher, "pause", lambda self, seconds: pauses.append(seconds))
    fetch(manifest, tmp_path / "media", downloader=FakeDownloader(videos),
          options=FetchOptions(quality=None, sleep=4.0, jobs=1))
    assert len(pauses) == len(rows) and all(2.0 <= p <= 6.0 for p in pauses) and len(set(pauses)) > 1


class BotChecked(FakeDownloader):
    """Says "not a bot?" to the first request, then serves."""

    def download(self, ytid, start, end, workdir):
        if not getattr(self, "checked", False):
            self.checked = True
            raise classify_error(f"ERROR: [youtube] {ytid}: Sign in to confirm you're not a bot.")
        return super().download(ytid, start, end, workdir)


def test_bot_check_pauses_every_worker_for_long(tmp_path, long_video, monkeypatch):
    videos, manifest, rows = served(tmp_path, long_video, n=1)
    pauses = []
    monkeypatch.setattr(Fetcher, "pause", lambda self, seconds: pauses.append(seconds))
    options = FetchOptions(quality=None, backoff=2.0, rate_limit_backoff=600.0, jobs=1)
    fetcher_holds = []
    original = Fetcher._polite

    def polite(self):
        fetcher_holds.append(self.hold_until)
        original(self)

    monkeypatch.setattr(Fetcher, "_polite", polite)
    assert fetch(manifest, tmp_path / "media", downloader=BotChecked(videos), options=options).n_ok == 1
    assert pauses[0] == 600.0  # the retry waited the long pause, not the 2 s backoff
    assert fetcher_holds[0] == 0.0 and fetcher_holds[1] > 0  # and later downloads of every worker wait for it
    # out of retries: failed, with the reason that says what happened
    options = FetchOptions(quality=None, retries=1)
    fetch(manifest, tmp_path / "media2", downloader=BotChecked(videos, state=tmp_path / "c2"), options=options)
    with Ledger(tmp_path / "media2" / "ledger.sqlite") as ledger:
        entry = ledger.get(rows[0]["sample_id"])
    assert (entry.status, entry.reason) == ("failed", "bot-check")


class Served(YtDlpDownloader):
    """yt-dlp's options and report, with the download itself served locally."""

    def __init__(self, videos, **kw):
        super().__init__(**kw)
        self.fake = FakeDownloader(videos)

    def download(self, ytid, start, end, workdir):
        return self.fake.download(ytid, start, end, workdir)


def test_cookies_and_extractor_args_reach_ytdlp_and_the_report_keeps_no_secret(tmp_path, long_video):
    videos, manifest, _ = served(tmp_path, long_video, n=1)
    cookies = tmp_path / "cookies.txt"
    cookies.write_text("# Netscape HTTP Cookie File\n.youtube.com\tTRUE\t/\tTRUE\t0\tSID\tCOOKIESECRET\n")
    downloader = Served(videos, cookies=cookies,
                        extractor_args=("youtube:player_client=web,mweb;po_token=web.gvs+TOKENSECRET",))
    options = downloader.ydl_options(0.0, 10.0, tmp_path)
    assert options["cookiefile"] == str(cookies)
    assert options["extractor_args"] == {"youtube": {"player_client": ["web", "mweb"],
                                                     "po_token": ["web.gvs+TOKENSECRET"]}}
    fetch(manifest, tmp_path / "media", downloader=downloader, options=FetchOptions(quality=None))
    text = (tmp_path / "media" / "fetch_report.json").read_text()
    assert "SECRET" not in text
    report = json.loads(text)["options"]
    assert report["cookies"] == str(cookies)
    assert report["extractor_args"] == {"youtube": {"player_client": ["web", "mweb"], "po_token": ["<redacted>"]}}


def test_bad_access_options_are_one_line_errors(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    manifest = write_manifest(tmp_path / "m", [clip_row("politevid00", 0, 10)])
    base = [str(Path(sys.executable).parent / "macs-bench"), "datasets", "fetch", "--manifest", str(manifest), "--media",
            str(tmp_path / "media")]
    for extra, message in ((["--cookies", "nope.txt"], "nope.txt: the cookies file does not exist"),
                           (["--extractor-args", "nocolon"], "extractor argument 'nocolon': expected IE_KEY:"),
                           (["--cookies", str(manifest / "manifest.csv"), "--source-dir", str(tmp_path)],
                            "--cookies and --extractor-args apply to yt-dlp downloads only"),
                           (["--shard", "3/3"], "shard '3/3': expected K/N")):
        out = subprocess.run(base + extra, capture_output=True, text=True, timeout=60)
        assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert message in out.stderr
    assert not (tmp_path / "media").exists()
