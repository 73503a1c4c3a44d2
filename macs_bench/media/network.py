"""The network side of a download run: one connectivity probe before it starts, a circuit breaker that stops it
after K consecutive network failures or bot checks, and an optional requests-per-minute cap.

Without them an offline run of 7,201 ids spent hours retrying each clip; a bot-checked one paused every worker
for minutes per clip, without a stop or a hint.
"""

from __future__ import annotations

import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from macs_bench.errors import RetryLater

PROBE_URL = "https://www.youtube.com/generate_204"
STOP_KINDS = ("network", "bot-check")  # the failures that say "every other clip will fail too"


class NetworkStop(RetryLater):
    """YouTube cannot be reached, or it bot-checks this machine: no later clip of the run would succeed."""


def probe(url: str = PROBE_URL, timeout: float = 10.0) -> str | None:
    """``None`` when ``url`` answers (whatever its HTTP status), else why it does not (one short phrase)."""
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout).close()
    except urllib.error.HTTPError:
        return None  # an answer, even a 4xx: the host is reachable
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return str(getattr(exc, "reason", None) or exc)
    return None


def unreachable(why: str) -> NetworkStop:
    return NetworkStop(f"YouTube unreachable: {why}; check the connection (or proxy), then rerun the same "
                       "command (finished clips are kept)")


def bot_checked(n: int) -> NetworkStop:
    return NetworkStop(f"blocked by a bot check: pass --cookies FILE (a signed-in browser's cookies; cookies= "
                       f"in Python) or wait a few hours, then rerun the same command ({n} bot checks in a row)")


class CircuitBreaker:
    """Counts consecutive network failures and bot checks across all workers; any other outcome (a clip
    fetched, a clip YouTube says is removed, a server error) resets the count. ``limit`` 0 never trips."""

    def __init__(self, limit: int):
        self.limit = limit
        self.streak = 0
        self._lock = threading.Lock()

    def success(self) -> None:
        with self._lock:
            self.streak = 0

    def failure(self, kind: str, message: str) -> tuple[int, NetworkStop | None]:
        """Count one failed attempt: ``(streak, stop)``, the consecutive count this attempt makes (0 for a
        failure of another kind) and the stop to raise when it trips the breaker, else ``None``."""
        with self._lock:
            if kind not in STOP_KINDS:
                self.streak = 0
                return 0, None
            self.streak += 1
            streak = self.streak
        if not self.limit or streak < self.limit:
            return streak, None
        if kind == "bot-check":
            return streak, bot_checked(streak)
        return streak, unreachable(f"{streak} downloads in a row failed on the network (last: {_gist(message)})")


def _gist(message: str) -> str:
    """The useful part of a downloader's error: no ``ERROR: [youtube] <id>:`` head, no ``(caused by ...)``."""
    text = " ".join(message.split())
    text = re.sub(r"^ERROR:\s*", "", text)
    text = re.sub(r"^\[[\w:.-]+\]\s*[\w-]*:\s*", "", text)
    text = re.sub(r"\s*\(caused by .*$", "", text)
    return text[:160]


class RateCap:
    """At most ``per_minute`` requests a minute over all workers, evenly spaced: :meth:`reserve` books the next
    slot and says how long to wait for it."""

    def __init__(self, per_minute: float, clock: Callable[[], float] = time.monotonic):
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.interval = 60.0 / per_minute
        self.clock = clock
        self._next = float("-inf")
        self._lock = threading.Lock()

    def reserve(self) -> float:
        with self._lock:
            now = self.clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
            return slot - now
