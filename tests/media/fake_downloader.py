"""A test double for the network downloader: serves clips cut from local videos, fails some transiently,
reports some as removed. Configured by constructor arguments, or by environment variables when loaded with
``--downloader fake_downloader:FakeDownloader`` in a subprocess."""

import json
import os
import subprocess
import time
from pathlib import Path

from macs_bench.media.sources import Transient, Unavailable


class FakeDownloader:
    def __init__(self, videos=None, transient=None, removed=(), delay=None, state=None):
        env = os.environ
        self.videos = Path(videos or env["FAKE_VIDEOS"])
        self.transient = transient if transient is not None else json.loads(env.get("FAKE_TRANSIENT", "{}"))
        self.removed = set(removed or json.loads(env.get("FAKE_REMOVED", "[]")))
        self.delay = float(delay if delay is not None else env.get("FAKE_DELAY", 0))
        self.state = Path(state or env.get("FAKE_STATE") or self.videos / ".calls")
        self.state.mkdir(exist_ok=True)

    def calls(self, ytid):
        return len(list(self.state.glob(f"{ytid}.*")))

    def download(self, ytid, start, end, workdir):
        n = self.calls(ytid)
        (self.state / f"{ytid}.{n}").touch()
        time.sleep(self.delay)
        if ytid in self.removed:
            raise Unavailable("removed", "This video has been removed by the uploader")
        if n < self.transient.get(ytid, 0):
            raise Transient("HTTP Error 503: Service Unavailable")
        source = self.videos / f"{ytid}.mp4"
        if not source.exists():
            raise RuntimeError("ERROR: [youtube] Video unavailable")
        out = Path(workdir) / "download.mp4"  # cut the range, as yt-dlp's download_ranges does
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-ss", str(start),
                        "-t", str(end - start), "-i", str(source.resolve()), "-c:v", "libx264", "-qp", "0",
                        "-pix_fmt", "yuv444p", "-c:a", "aac", str(out.resolve())], check=True)
        return out
