import pytest
from yt_dlp.utils import DownloadError

from macs_bench.errors import MacsError
from macs_bench.media import sources
from macs_bench.media.sources import Transient, Unavailable, YtDlpDownloader, classify_error, load_downloader


@pytest.mark.parametrize(
    "message, kind, reason",
    [
        ("ERROR: [youtube] abc: Private video. Sign in if you've been granted access", Unavailable, "private"),
        ("ERROR: [youtube] abc: Video unavailable. This video has been removed by the uploader", Unavailable,
         "removed"),
        ("ERROR: [youtube] abc: Video unavailable. This video is no longer available because the YouTube account "
         "associated with this video has been terminated.", Unavailable, "removed"),
        ("ERROR: [youtube] abc: Sign in to confirm your age. This video may be inappropriate", Unavailable,
         "age-restricted"),
        ("ERROR: [youtube] abc: Video unavailable. The uploader has not made this video available in your country",
         Unavailable, "geo-blocked"),
        ("ERROR: [youtube] abc: Video unavailable. This video contains content from X, who has blocked it on "
         "copyright grounds", Unavailable, "removed-copyright"),
        ("ERROR: [youtube] abc: Join this channel to get access to members-only content", Unavailable, "members-only"),
        ("ERROR: unable to download video data: HTTP Error 503: Service Unavailable", Transient, None),
        ("ERROR: unable to download video data: HTTP Error 429: Too Many Requests", Transient, None),
        ("ERROR: [Errno 104] Connection reset by peer", Transient, None),
        ("ERROR: The read operation timed out", Transient, None),
        ("ERROR: something nobody has seen before", Transient, None),
    ],
)
def test_classify_error(message, kind, reason):
    err = classify_error(message)
    assert isinstance(err, kind)
    if reason:
        assert err.reason == reason


class FakeYDL:
    """Stands in for yt_dlp.YoutubeDL: records the options and URL, then succeeds or raises."""

    seen = []
    error = None

    def __init__(self, options):
        self.options = options

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def download(self, urls):
        FakeYDL.seen.append((self.options, urls))
        if FakeYDL.error:
            raise DownloadError(FakeYDL.error)
        target = self.options["outtmpl"]["default"].replace("%(ext)s", "mkv")
        open(target, "wb").write(b"media")


def test_ytdlp_downloader_asks_for_the_range_only(tmp_path, monkeypatch):
    import yt_dlp

    monkeypatch.setattr(yt_dlp, "YoutubeDL", FakeYDL)
    FakeYDL.seen, FakeYDL.error = [], None
    path = YtDlpDownloader().download("-dashYTid__", 30.0, 40.0, tmp_path)
    assert path == tmp_path / "download.mkv"
    options, urls = FakeYDL.seen[0]
    assert urls == ["https://www.youtube.com/watch?v=-dashYTid__"]  # an id beginning with '-' is inside a URL
    ranges = list(options["download_ranges"]({"id": "x", "duration": 100}, None))
    assert ranges == [{"start_time": 30.0, "end_time": 40.0}]
    assert options["force_keyframes_at_cuts"] and options["noplaylist"]

    FakeYDL.error = "ERROR: [youtube] -dashYTid__: Private video"
    with pytest.raises(Unavailable) as info:
        YtDlpDownloader().download("-dashYTid__", 30.0, 40.0, tmp_path / "other")
    assert info.value.reason == "private"
    FakeYDL.error = "ERROR: HTTP Error 503: Service Unavailable"
    with pytest.raises(Transient):
        YtDlpDownloader().download("-dashYTid__", 30.0, 40.0, tmp_path)


def test_load_downloader():
    assert isinstance(load_downloader(None), YtDlpDownloader)
    assert isinstance(load_downloader("macs_bench.media.sources:YtDlpDownloader"), YtDlpDownloader)
    with pytest.raises(MacsError, match="expected 'module:Class'"):
        load_downloader("no_colon")
    with pytest.raises(MacsError, match="cannot load"):
        load_downloader("no_such_module_xyz:Thing")


def test_fsd50k_source_needs_official_layout(tmp_path):
    with pytest.raises(MacsError, match="no FSD50K.dev_audio"):
        sources.LocalFSD50K(tmp_path)


@pytest.mark.parametrize(
    "message, reason",
    [
        # the id r6ssLI51RZ4 contains "ssl": only yt-dlp's own text may decide
        ("ERROR: [youtube] r6ssLI51RZ4: Video unavailable. This video has been removed by the uploader", "removed"),
        ("ERROR: [youtube] xTimeout123: Private video. Sign in if you've been granted access", "private"),
        ("ERROR: unable to download https://www.youtube.com/watch?v=aConnection: Video unavailable", "removed"),
        # a downloader plugin's own exception type, its name put in front
        ("RuntimeError: ERROR: [youtube] r6ssLI51RZ4: Video unavailable", "removed"),
    ],
)
def test_classify_ignores_the_video_id(message, reason):
    err = classify_error(message)
    assert isinstance(err, Unavailable) and err.reason == reason


def test_classify_removes_the_id_it_is_given():
    assert isinstance(classify_error("r6ssLI51RZ4 is gone: removed by the uploader"), Transient)  # "ssl"
    err = classify_error("r6ssLI51RZ4 is gone: removed by the uploader", "r6ssLI51RZ4")
    assert isinstance(err, Unavailable) and err.reason == "removed"


@pytest.mark.parametrize(
    "message, kind",
    [
        ("ERROR: [youtube] abcdefghijk: Sign in to confirm you\u2019re not a bot. Use --cookies-from-browser",
         "bot-check"),
        ("ERROR: [youtube] abcdefghijk: Sign in to confirm you're not a bot. This helps protect our community.",
         "bot-check"),
        ("ERROR: unable to download video data: HTTP Error 429: Too Many Requests", "rate-limited"),
        ("ERROR: [youtube] abcdefghijk: Unable to download API page: <urlopen error [Errno -3] Temporary failure "
         "in name resolution> (caused by TransportError)", "network"),
        ("ERROR: [youtube] abcdefghijk: Unable to download webpage: [Errno 101] Network is unreachable", "network"),
        ("ERROR: unable to download video data: HTTP Error 503: Service Unavailable", "transient"),
    ],
)
def test_bot_checks_rate_limits_and_network_failures_are_told_apart(message, kind):
    err = classify_error(message)
    assert isinstance(err, Transient) and err.kind == kind
    assert err.rate_limited == (kind in ("bot-check", "rate-limited"))  # those pause every worker for long


@pytest.mark.parametrize("message", ["ERROR: [youtube] abcdefghijk: Requested format is not available. Use "
                                     "--list-formats", "ERROR: [youtube] abcdefghijk: No video formats found!"])
def test_a_missing_format_is_permanent_for_that_id_not_a_rate_limit(message):
    err = classify_error(message)
    assert isinstance(err, Unavailable) and err.reason == "no-formats"


def test_ytdlp_errors_go_to_the_log_not_the_terminal(tmp_path, capfd):
    import yt_dlp

    lines = []
    downloader = YtDlpDownloader(log=lines.append)
    with yt_dlp.YoutubeDL(downloader.ydl_options(30.0, 40.0, tmp_path)) as ydl:
        with pytest.raises(DownloadError):
            ydl.report_error("[youtube] abcdefghijk: Video unavailable")
        ydl.report_warning("slow")
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert any("Video unavailable" in line for line in lines)
