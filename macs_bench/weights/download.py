"""Downloads into the cache: files over HTTPS (verified, atomic, never a partial file) and Hugging Face
repositories through ``huggingface_hub`` (pinned commit), with one immediate error when offline."""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from macs_bench import __version__
from macs_bench.errors import MacsError
from macs_bench.io import file_lock
from macs_bench.weights.registry import WeightSpec
from macs_bench.weights.store import (CHUNK, _check, _check_hf, _mismatch, _read_sums, _record, _remember, _spec,
                                      _trust, cache_dir, local_path)

TIMEOUT = 60.0  # seconds without a byte before a download counts as failed
PROBE_TIMEOUT = 5.0  # seconds to open a connection to the hub before calling it unreachable


def fetch(name: str, *, force: bool = False, progress: bool = True) -> Path:
    """Download, verify and atomically install one entry; a verified copy is kept unless ``force``."""
    spec = _spec(name)
    if spec.kind == "hf-repo":
        return _fetch_hf(spec, force=force, progress=progress)
    target = local_path(name)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with _exclusive(target):
            return _fetch_file(spec, target, force=force, progress=progress)
    except OSError as exc:
        raise MacsError(f"{exc.filename or target}: cannot write the weights cache ({exc.strerror or exc})") from None


@contextmanager
def _exclusive(target: Path) -> Iterator[None]:
    """One fetch of a file at a time: a second waits, then finds the first one's verified copy."""
    with file_lock(cache_dir().parent / "locks" / f"{target.name}.lock"):  # beside weights/, which holds weights
        yield


def _fetch_file(spec: WeightSpec, target: Path, *, force: bool, progress: bool) -> Path:
    if not force:
        existing = _check(spec)
        if existing.ok:
            _trust(spec, existing)
            return target
    part = target.with_name(target.name + ".part")
    recorded = None if spec.sha256 else _read_sums().get(spec.filename)
    failures, unreachable = [], False
    for url in spec.urls:
        try:
            digest = _download(url, part, spec.size, label=spec.filename, progress=progress)
            problem = _mismatch(spec, digest, recorded)
            if problem is None:
                os.replace(part, target)
                _remember(target, digest)
                if spec.sha256 is None and recorded is None:
                    _record(spec.filename, digest)
                return target
            failures.append(f"{url}: {problem}")
        except _DownloadFailed as exc:
            failures.append(f"{url}: {exc}")
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as exc:
            failures.append(f"{url}: {_reason(exc)}")
            unreachable = True
        except (OSError, ValueError) as exc:
            failures.append(f"{url}: {_reason(exc)}")
        finally:
            part.unlink(missing_ok=True)
    hint = f" (offline? copy {spec.filename} into {target.parent} by hand)" if unreachable else ""
    raise MacsError(f"{target}: cannot fetch weights {spec.name!r}: {'; '.join(failures)}; no partial file was kept"
                    f"{hint}")




class _DownloadFailed(Exception):
    """A download that ended but is not the whole file."""


def _download(url: str, part: Path, size: int | None, *, label: str, progress: bool) -> str:
    """Stream ``url`` into ``part`` and return its sha256; a short or oversize body raises."""
    request = urllib.request.Request(url, headers={"User-Agent": f"macs-bench/{__version__}"})
    digest = hashlib.sha256()
    received = 0
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        header = response.headers.get("Content-Length")
        length = int(header) if header and header.isdigit() else None
        if length is not None and size is not None and length != size:
            raise _DownloadFailed(f"the server offers {length} bytes, expected {size}")
        with open(part, "wb") as out, _progress_bar(label, length or size, progress) as advance:
            while chunk := response.read(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                advance(len(chunk))
            out.flush()
            os.fsync(out.fileno())
    if length is not None and received != length:
        raise _DownloadFailed(f"the connection closed after {received} of {length} bytes")
    if size is not None and received != size:
        raise _DownloadFailed(f"got {received} bytes, expected {size}")
    return digest.hexdigest()


@contextmanager
def _progress_bar(label: str, total: int | None, show: bool) -> Iterator[Callable[[int], None]]:
    if not show:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, \
        TransferSpeedColumn

    bar = Progress(TextColumn(label), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
                   console=Console(stderr=True))
    with bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.update(task, advance=n)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        text = f"HTTP {exc.code} {exc.reason}"
    elif isinstance(exc, urllib.error.URLError):
        text = str(exc.reason)
    else:
        text = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    return " ".join(str(text).split())


# -- Hugging Face repositories -----------------------------------------------------------------------------------

def _fetch_hf(spec: WeightSpec, *, force: bool, progress: bool) -> Path:
    snapshot = local_path(spec.name)
    if not force and _check_hf(spec, snapshot).ok:
        return snapshot
    try:
        import huggingface_hub
        from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars
    except ImportError:
        raise MacsError(f"{snapshot}: fetching weights {spec.name!r} needs huggingface_hub; "
                        "install it with: pip install huggingface_hub") from None
    unreachable = hub_unreachable()
    if unreachable:
        raise MacsError(f"{snapshot}: cannot fetch weights {spec.name!r} from https://huggingface.co/{spec.repo_id}: "
                        f"{unreachable} (offline? copy the snapshot into {snapshot} by hand)")
    was_disabled = are_progress_bars_disabled()
    if not progress:
        disable_progress_bars()
    try:
        huggingface_hub.snapshot_download(
            str(spec.repo_id), revision=spec.revision, cache_dir=cache_dir() / "hf",
            ignore_patterns=list(spec.ignore_patterns) or None, allow_patterns=list(spec.allow_patterns) or None,
            force_download=force)
    except Exception as exc:  # the hub raises many types: offline, HTTP, gated, disk
        hint = " (accept the licence on huggingface.co and log in with: hf auth login)" \
            if type(exc).__name__ == "GatedRepoError" else ""
        raise MacsError(f"{snapshot}: cannot fetch weights {spec.name!r} from https://huggingface.co/{spec.repo_id} "
                        f"at {spec.revision}: {type(exc).__name__}: {_reason(exc)}{hint}") from exc
    finally:
        if not progress and not was_disabled:
            enable_progress_bars()
    result = _check_hf(spec, snapshot)
    if not result.ok:
        raise MacsError(f"{snapshot}: fetched weights {spec.name!r} are not usable ({result.detail})")
    return snapshot


def hub_unreachable() -> str | None:
    """Why the hub cannot be reached (None when it can): HF_HUB_OFFLINE, a name that does not resolve, or no
    connection within :data:`PROBE_TIMEOUT`. Checked once, so an offline fetch fails at once instead of after
    huggingface_hub's retries (about 25 s)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return "HF_HUB_OFFLINE is set"
    endpoint = urllib.parse.urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host, port = endpoint.hostname or "huggingface.co", endpoint.port or (80 if endpoint.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT):
            return None
    except OSError as exc:
        return f"{host} is unreachable ({type(exc).__name__}: {exc.strerror or exc})"
