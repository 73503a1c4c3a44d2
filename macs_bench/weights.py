"""One cache for every model weight file macs uses: a pinned registry, verified atomic downloads, one offline error.

The cache is ``$MACS_HOME/weights`` (else ``$XDG_CACHE_HOME/macs/weights``, else ``~/.cache/macs/weights``). A file
is downloaded to ``<file>.part`` beside its final place, checked (size, sha256) and only then renamed into place, so
a partial or wrong download is never used. Entries without a published sha256 are trusted on first use: the hash
of the first good copy is recorded in ``SHA256SUMS.local`` and every later copy must match it. The hash of a large
file is remembered in ``<file>.verified.json`` keyed by (size, mtime_ns), so :func:`path` re-hashes only a file that
changed. A Hugging Face repository (Stable Diffusion) lives under ``hf/`` in the hub's own cache layout; its commit
pins every file's hash (sha256 for LFS files, git-sha1 for the rest), which the blob names carry and we check.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Literal

from macs_bench import __version__
from macs_bench.errors import MacsError
from macs_bench.io import atomic_write_text, dumps_json, file_lock, sha256_file

LOCAL_SUMS = "SHA256SUMS.local"
TIMEOUT = 60.0  # seconds without a byte before a download counts as failed
CHUNK = 1 << 20

_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX40 = re.compile(r"[0-9a-f]{40}")

Status = Literal["ok", "missing", "corrupt", "unpinned"]


@dataclass(frozen=True)
class WeightSpec:
    """One registry entry: a single file (``kind="file"``) or a Hugging Face repository (``kind="hf-repo"``).

    For an ``hf-repo`` entry ``filename`` names the file whose presence in the snapshot marks it complete (a
    diffusers ``model_index.json`` also names the component folders that must be there), ``urls`` only points
    people at the repository, and ``allow_patterns`` / ``ignore_patterns`` pick the files; the download goes
    through ``huggingface_hub``.
    """

    name: str
    filename: str
    urls: tuple[str, ...]
    sha256: str | None
    size: int | None
    licence: str
    what: str
    used_by: str
    kind: Literal["file", "hf-repo"] = "file"
    repo_id: str | None = None
    revision: str | None = None
    ignore_patterns: tuple[str, ...] = ()
    allow_patterns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problems = []
        if not self.urls:
            problems.append("no url")
        if not self.filename or "/" in self.filename or self.filename.startswith("."):
            problems.append(f"bad filename {self.filename!r}")
        if self.sha256 is not None and not _HEX64.fullmatch(self.sha256):
            problems.append(f"sha256 {self.sha256!r} is not 64 lowercase hex digits")
        if self.kind == "hf-repo" and not (self.repo_id and self.revision and _HEX40.fullmatch(self.revision)):
            problems.append("an hf-repo entry needs a repo_id and a 40-hex commit revision")
        if self.kind not in ("file", "hf-repo"):
            problems.append(f"unknown kind {self.kind!r}")
        if problems:
            raise ValueError(f"weights {self.name!r}: " + "; ".join(problems))

    @property
    def url(self) -> str:
        return self.urls[0]

    @property
    def pinned(self) -> bool:
        """A published sha256, or a hub commit that pins every file's hash."""
        return self.sha256 is not None or self.kind == "hf-repo"


# Hash provenance (see each entry): never invent one; without a published sha256 use None (trust on first use).
WEIGHTS: dict[str, WeightSpec] = {
    spec.name: spec
    for spec in (
        WeightSpec(
            name="inception-2015-12-05",
            filename="inception-2015-12-05.pt",
            urls=("https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt",),
            # URL: cleanfid/downloads_helper.py; sha256: crowsonkb/k-diffusion k_diffusion/evaluation.py (same URL).
            sha256="f58cb9b6ec323ed63459aa4fb441fe750cfe39fafad6da5cb504a16f19e958f4",
            size=None,
            licence="Apache-2.0 network (TensorFlow Models); TorchScript wrapper under the NVIDIA Source Code License",
            what="TorchScript Inception-v3 (TF 2015-12-05 weights) from StyleGAN2-ADA, as clean-fid loads it",
            used_by="FID / KID (clean-fid)",
        ),
        WeightSpec(
            name="clip-vit-b-32-openai",
            filename="ViT-B-32.pt",
            urls=("https://openaipublic.azureedge.net/clip/models/"
                  "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt",),
            # URL: open_clip/pretrained.py (_VITB32 "openai"); OpenAI puts the file's sha256 in the path.
            sha256="40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af",
            size=None,
            licence="MIT (openai/CLIP)",
            what="OpenAI CLIP ViT-B/32 (TorchScript archive), read with open_clip.load_openai_model",
            used_by="CLIP image/text similarity (open_clip)",
        ),
        WeightSpec(
            name="clip-vit-l-14-336-openai",
            filename="ViT-L-14-336px.pt",
            urls=("https://openaipublic.azureedge.net/clip/models/"
                  "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02/ViT-L-14-336px.pt",),
            # URL: open_clip/pretrained.py (_VITL14_336 "openai"); OpenAI puts the file's sha256 in the path.
            sha256="3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02",
            size=None,
            licence="MIT (openai/CLIP)",
            what="OpenAI CLIP ViT-L/14 at 336 px (TorchScript archive), read with open_clip.load_openai_model",
            used_by="CMMD (opt-in: score --metrics cmmd)",
        ),
        WeightSpec(
            name="dinov2-vit-l-14",
            filename="config.json",
            urls=("https://huggingface.co/facebook/dinov2-large/tree/47b73eefe95e8d44ec3623f8890bd894b6ea2d6c",),
            # revision: the main commit in public models--facebook--dinov2-large/snapshots/ paths; the LFS blob
            # of model.safetensors is named by its sha256, which the snapshot check verifies.
            sha256=None,
            size=None,
            licence="Apache-2.0 (facebookresearch/dinov2)",
            what="DINOv2 ViT-L/14 (transformers layout: config.json, model.safetensors)",
            used_by="FD-DINOv2, precision/recall on DINOv2 (opt-in: score --metrics fd_dinov2,prdc_dinov2)",
            kind="hf-repo",
            repo_id="facebook/dinov2-large",
            revision="47b73eefe95e8d44ec3623f8890bd894b6ea2d6c",
            allow_patterns=("config.json", "model.safetensors"),
        ),
        WeightSpec(
            name="wav2clip",
            filename="Wav2CLIP.pt",
            urls=("https://github.com/descriptinc/lyrebird-wav2clip/releases/download/v0.1.0-alpha/Wav2CLIP.pt",),
            # URL: wav2clip/__init__.py MODEL_URL; no published checksum: trusted on first use.
            sha256=None,
            size=None,
            licence="MIT (descriptinc/lyrebird-wav2clip)",
            what="Wav2CLIP audio encoder distilled from CLIP ViT-B/32",
            used_by="audio/image similarity (wav2clip)",
        ),
        WeightSpec(
            name="clap-630k-audioset-best",
            filename="630k-audioset-best.pt",
            urls=("https://huggingface.co/lukewys/laion_clap/resolve/main/630k-audioset-best.pt",),
            # URL: LAION-AI/CLAP src/laion_clap/hook.py; sha256 is the file's Hugging Face LFS oid, size its length.
            sha256="8053c9775516af2f4902e1e8281e356cc1bf7a85e8b761908170767b77c3f037",
            size=1_863_587_645,
            licence="Apache-2.0 (laion_clap package metadata)",
            what="LAION-CLAP HTSAT-tiny + RoBERTa, non-fusion, trained on LAION-Audio-630K + AudioSet",
            used_by="CLAP audio/text similarity (laion_clap)",
        ),
        WeightSpec(
            name="stable-diffusion-v1-4",
            filename="model_index.json",
            urls=("https://huggingface.co/CompVis/stable-diffusion-v1-4/tree/"
                  "133a221b8aa7292a167afc5127cb63fb5005638b",),
            # revision: the main commit seen in many public models--CompVis--stable-diffusion-v1-4/snapshots/ paths.
            sha256=None,
            size=None,
            licence="CreativeML OpenRAIL-M",
            what="Stable Diffusion v1.4 (diffusers layout); per-file hashes pinned by the hub commit",
            used_by="macs-model stage 2 (Stable Diffusion adapter)",
            kind="hf-repo",
            repo_id="CompVis/stable-diffusion-v1-4",
            revision="133a221b8aa7292a167afc5127cb63fb5005638b",
            ignore_patterns=("*.msgpack", "*.h5", "*.onnx", "*.ckpt"),
        ),
        WeightSpec(
            name="roberta-base-tokenizer",
            filename="vocab.json",
            urls=("https://huggingface.co/FacebookAI/roberta-base/tree/e2da8e2f811d1448a5b465c236feacd80ffbac7b",),
            # revision: the main commit in public models--FacebookAI--roberta-base/snapshots/ paths. Only the
            # tokenizer files: CLAP's text weights come from its own checkpoint.
            sha256=None,
            size=None,
            licence="MIT (FacebookAI/roberta-base)",
            what="RoBERTa-base BPE tokenizer (vocab.json, merges.txt) for CLAP's text branch",
            used_by="macs-model stage 1 (CLAP text prompts)",
            kind="hf-repo",
            repo_id="FacebookAI/roberta-base",
            revision="e2da8e2f811d1448a5b465c236feacd80ffbac7b",
            allow_patterns=("vocab.json", "merges.txt", "tokenizer.json", "config.json"),
        ),
    )
}


@dataclass(frozen=True)
class VerifyResult:
    """The state of one entry on disk; ``expected`` is the pinned or locally recorded hash, if any."""

    name: str
    status: Status
    path: Path
    expected: str | None
    actual: str | None
    detail: str

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "unpinned")


@dataclass(frozen=True)
class WeightRow:
    """One line of ``macs-bench weights list``; ``size`` is the file's when present, else the registry's."""

    name: str
    file: str
    size: int | None
    present: bool
    pinned: bool
    used_by: str


def cache_dir() -> Path:
    """``$MACS_HOME/weights``, else ``$XDG_CACHE_HOME/macs/weights``, else ``~/.cache/macs/weights``."""
    home = os.environ.get("MACS_HOME")
    if home:
        return Path(home).expanduser() / "weights"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg and os.path.isabs(os.path.expanduser(xdg)) else Path.home() / ".cache"
    return base / "macs" / "weights"


def local_path(name: str) -> Path:
    """Where the entry lives in the cache (a file, or an hf-repo's snapshot folder), present or not."""
    spec = _spec(name)
    if spec.kind == "hf-repo":
        return _hf_root(spec) / "snapshots" / str(spec.revision)
    return cache_dir() / spec.filename


def path(name: str) -> Path:
    """The verified local file (or snapshot folder); a missing or corrupt one raises :class:`MacsError`."""
    spec = _spec(name)
    result = _check(spec)
    if result.status == "missing":
        raise MacsError(f"{result.path}: missing weights {name!r}; fetch them with: macs-bench weights fetch {name}")
    if result.status == "corrupt":
        raise MacsError(f"{result.path}: corrupt weights {name!r} ({result.detail}); "
                        f"fetch them again with: macs-bench weights fetch {name}")
    _trust(spec, result)
    return result.path


def expected_sha256(name: str) -> str | None:
    """The hash a file entry must have: the pinned one, else the one recorded on first use (None if neither)."""
    spec = _spec(name)
    return spec.sha256 or _read_sums().get(spec.filename)


def verify(name: str | None = None) -> list[VerifyResult]:
    """The state of one entry, or of every entry: ok, missing, corrupt (hash or size mismatch) or unpinned.

    Every present file is hashed again in full (``path`` trusts a file whose size and mtime are unchanged)."""
    names = [name] if name is not None else list(WEIGHTS)
    for n in names:
        where = local_path(n)
        _sidecar(where).unlink(missing_ok=True)
    return [_check(_spec(n)) for n in names]


def list_weights() -> list[WeightRow]:
    """One row per registry entry, without hashing anything."""
    rows = []
    for spec in WEIGHTS.values():
        where = local_path(spec.name)
        marker = where / spec.filename if spec.kind == "hf-repo" else where
        present = marker.is_file()
        size = where.stat().st_size if present and spec.kind == "file" else spec.size
        rows.append(WeightRow(spec.name, str(where), size, present, spec.pinned, spec.used_by))
    return rows


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


# -- checks ------------------------------------------------------------------------------------------------------


def _spec(name: str) -> WeightSpec:
    try:
        return WEIGHTS[name]
    except KeyError:
        raise MacsError(f"unknown weights {name!r}; known: {', '.join(WEIGHTS)}") from None


def _check(spec: WeightSpec) -> VerifyResult:
    where = local_path(spec.name)
    if spec.kind == "hf-repo":
        return _check_hf(spec, where)
    if not where.is_file():
        return VerifyResult(spec.name, "missing", where, spec.sha256, None, "not downloaded")
    size = where.stat().st_size
    if spec.size is not None and size != spec.size:
        return VerifyResult(spec.name, "corrupt", where, spec.sha256, None, f"{size} bytes, expected {spec.size}")
    actual = _digest(where, _sidecar(where), "sha256")
    if spec.sha256 is not None:
        if actual == spec.sha256:
            return VerifyResult(spec.name, "ok", where, spec.sha256, actual, "sha256 matches the pinned hash")
        return VerifyResult(spec.name, "corrupt", where, spec.sha256, actual,
                            f"sha256 {actual}, expected {spec.sha256}")
    recorded = _read_sums().get(spec.filename)
    if recorded is None:
        return VerifyResult(spec.name, "unpinned", where, None, actual, "unpinned (not recorded yet)")
    if actual == recorded:
        return VerifyResult(spec.name, "unpinned", where, recorded, actual, "unpinned (recorded locally)")
    return VerifyResult(spec.name, "corrupt", where, recorded, actual,
                        f"sha256 {actual}, expected {recorded} as recorded in {cache_dir() / LOCAL_SUMS}")


def _trust(spec: WeightSpec, result: VerifyResult) -> None:
    """Trust on first use: record the hash of an unpinned file that has no record yet."""
    if result.status == "unpinned" and result.expected is None and result.actual is not None:
        try:
            _record(spec.filename, result.actual)
        except OSError:
            pass  # a read-only shared cache: use the file unrecorded


def _mismatch(spec: WeightSpec, digest: str, recorded: str | None) -> str | None:
    if spec.sha256 is not None and digest != spec.sha256:
        return f"sha256 {digest}, expected {spec.sha256}"
    if recorded is not None and digest != recorded:
        return (f"sha256 {digest}, expected {recorded} as recorded in {cache_dir() / LOCAL_SUMS} (if that record "
                f"came from a bad copy, delete its line there and fetch again)")
    return None


def _sidecar(file: Path) -> Path:
    return file.with_name(file.name + ".verified.json")


def _digest(file: Path, store: Path, algo: str) -> str:
    """``file``'s digest, from ``store`` when its (size, mtime_ns) still match, else hashed and remembered."""
    return _digests([file], store, algo)[0]


def _digests(files: list[Path], store: Path, algo: str) -> list[str]:
    try:
        entries = json.loads(store.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        entries = {}
    if not isinstance(entries, dict):
        entries = {}
    out, changed = [], False
    for file in files:
        before = file.stat()
        key = f"{file.name} {algo}"
        entry = entries.get(key)
        if (isinstance(entry, dict) and entry.get("size") == before.st_size
                and entry.get("mtime_ns") == before.st_mtime_ns and isinstance(entry.get("digest"), str)):
            out.append(entry["digest"])
            continue
        value = _hash(file, algo)
        after = file.stat()
        if (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns):
            entries[key] = {"size": after.st_size, "mtime_ns": after.st_mtime_ns, "digest": value}
            changed = True
        out.append(value)
    if changed:
        try:
            atomic_write_text(store, dumps_json(entries))
        except OSError:
            pass  # a read-only cache: hash again next time
    return out


def _remember(file: Path, digest: str) -> None:
    st = file.stat()
    entry = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "digest": digest}
    try:
        atomic_write_text(_sidecar(file), dumps_json({f"{file.name} sha256": entry}))
    except OSError:
        pass


def _hash(file: Path, algo: str) -> str:
    if algo == "sha256":
        return sha256_file(file)
    digest = hashlib.sha1(f"blob {file.stat().st_size}\0".encode(), usedforsecurity=False)  # git's blob id
    with open(file, "rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _read_sums() -> dict[str, str]:
    sums_file = cache_dir() / LOCAL_SUMS
    try:
        text = sums_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    sums = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        digest, sep, filename = line.partition("  ")
        if not line.strip():
            continue
        if not (sep and _HEX64.fullmatch(digest) and filename):
            raise MacsError(f"{sums_file}:{lineno}: expected '<sha256>  <filename>', got {line!r}")
        sums[filename] = digest
    return sums


def _record(filename: str, digest: str) -> None:
    sums = _read_sums()
    sums[filename] = digest
    atomic_write_text(cache_dir() / LOCAL_SUMS, "".join(f"{d}  {f}\n" for f, d in sorted(sums.items())))


# -- downloads ---------------------------------------------------------------------------------------------------


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


def _hf_root(spec: WeightSpec) -> Path:
    return cache_dir() / "hf" / ("models--" + str(spec.repo_id).replace("/", "--"))


def _check_hf(spec: WeightSpec, snapshot: Path) -> VerifyResult:
    pinned = f"pinned by {spec.repo_id}@{spec.revision}"
    if not snapshot.is_dir():
        return VerifyResult(spec.name, "missing", snapshot, spec.revision, None, "not downloaded")
    problems = _hf_problems(spec, snapshot)
    if problems:
        return VerifyResult(spec.name, "corrupt", snapshot, spec.revision, None, f"{pinned}: {'; '.join(problems)}")
    return VerifyResult(spec.name, "ok", snapshot, spec.revision, spec.revision, f"complete, every file {pinned}")


def _hf_problems(spec: WeightSpec, snapshot: Path) -> list[str]:
    """What is missing or wrong in a snapshot: the marker file, a component folder, a blob whose hash differs."""
    index = snapshot / spec.filename
    if not index.is_file():
        return [f"incomplete: no {spec.filename}"]
    problems = [f"incomplete: no {name}" for name in spec.allow_patterns
                if not any(ch in name for ch in "*?[") and not (snapshot / name).is_file()]
    if spec.filename == "model_index.json":
        try:
            components = json.loads(index.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            return [f"unreadable {spec.filename}: {exc}"]
        problems = [f"incomplete: no {key}/" for key, value in components.items()
                    if not key.startswith("_") and isinstance(value, list) and value and value[0] is not None
                    and not (snapshot / key).is_dir()]
    blobs: dict[str, list[Path]] = {"sha256": [], "git-sha1": []}
    expected: dict[Path, str] = {}
    for link in sorted(snapshot.rglob("*")):
        if not link.is_symlink():
            continue
        blob = link.resolve()
        if not blob.is_file():
            problems.append(f"broken link {link.relative_to(snapshot)}")
            continue
        algo = "sha256" if _HEX64.fullmatch(blob.name) else "git-sha1" if _HEX40.fullmatch(blob.name) else None
        if algo is not None:
            blobs[algo].append(blob)
            expected[blob] = blob.name
    store = cache_dir() / f"{spec.name}.verified.json"
    for algo, files in blobs.items():
        for blob, actual in zip(files, _digests(files, store, algo)):
            if actual != expected[blob]:
                problems.append(f"{blob.name}: {algo} {actual}")
    return problems


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
