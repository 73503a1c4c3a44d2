import hashlib
import http.server
import json
import os
import re
import socket
import threading

import pytest

from macs_bench import weights
from macs_bench.errors import MacsError
from macs_bench.weights import WeightSpec

GOOD = bytes(range(256)) * 1200  # 300 KiB
GOOD_SHA = hashlib.sha256(GOOD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.routes[path] = (body, declared Content-Length or None)``; HTTP/1.0 closes after each reply."""

    def do_GET(self):
        self.server.hits += 1
        route = self.server.routes.get(self.path)
        if route is None:
            self.send_error(404)
            return
        body, declared = route
        self.send_response(200)
        self.send_header("Content-Length", str(len(body) if declared is None else declared))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.routes, srv.hits = {}, 0
    srv.url = lambda route: f"http://127.0.0.1:{srv.server_address[1]}{route}"
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MACS_HOME", str(tmp_path / "home"))
    return tmp_path / "home" / "weights"


@pytest.fixture(autouse=True)
def hub_reachable(monkeypatch):
    """The hub counts as reachable unless a test says otherwise (the fake snapshot_download stands in for it)."""
    real = weights.download.hub_unreachable
    monkeypatch.setattr(weights.download, "hub_unreachable", lambda: None)
    return real


def register(monkeypatch, *specs):
    monkeypatch.setattr(weights.registry, "WEIGHTS", {spec.name: spec for spec in specs})


def spec(url, sha256=GOOD_SHA, size=None, name="m"):
    return WeightSpec(name=name, filename=f"{name}.bin", urls=(url,), sha256=sha256, size=size, licence="test",
                      what="test file", used_by="tests")


def touch_later(file):
    """Give ``file`` a clearly newer mtime, whatever the filesystem's timestamp granularity."""
    st = file.stat()
    os.utime(file, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


def rewrite(file, data):
    file.write_bytes(data)
    touch_later(file)


def test_cache_dir_honours_macs_home_then_xdg_cache_home_then_home(tmp_path, monkeypatch):
    monkeypatch.setenv("MACS_HOME", str(tmp_path / "m"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert weights.cache_dir() == tmp_path / "m" / "weights"
    monkeypatch.delenv("MACS_HOME")
    assert weights.cache_dir() == tmp_path / "x" / "macs" / "weights"
    monkeypatch.setenv("HOME", str(tmp_path / "h"))
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # the XDG spec says relative paths are invalid
    assert weights.cache_dir() == tmp_path / "h" / ".cache" / "macs" / "weights"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert weights.cache_dir() == tmp_path / "h" / ".cache" / "macs" / "weights"


def test_fetch_verifies_installs_and_does_not_download_again(cache, server, monkeypatch):
    server.routes["/m.bin"] = (GOOD, None)
    register(monkeypatch, spec(server.url("/m.bin"), size=len(GOOD)))
    target = weights.fetch("m", progress=False)
    assert target == cache / "m.bin" and target.read_bytes() == GOOD
    assert sorted(p.name for p in cache.iterdir()) == ["m.bin", "m.bin.verified.json"]
    assert weights.path("m") == target
    [result] = weights.verify("m")
    assert (result.status, result.actual) == ("ok", GOOD_SHA)
    assert weights.fetch("m", progress=False) == target and server.hits == 1  # verified copy kept
    weights.fetch("m", force=True, progress=True)
    assert server.hits == 2 and target.read_bytes() == GOOD


def test_wrong_bytes_are_rejected_and_nothing_is_left(cache, server, monkeypatch):
    evil = b"not the weights" * 100
    server.routes["/m.bin"] = (evil, None)
    url = server.url("/m.bin")
    register(monkeypatch, spec(url))
    with pytest.raises(MacsError) as err:
        weights.fetch("m", progress=False)
    message = str(err.value)
    assert url in message and GOOD_SHA in message and hashlib.sha256(evil).hexdigest() in message
    assert "\n" not in message and "no partial file was kept" in message and "offline?" not in message
    assert list(cache.iterdir()) == []


def test_dropped_connection_keeps_no_partial_file(cache, server, monkeypatch):
    server.routes["/m.bin"] = (GOOD[:100], 1000)  # announces 1000 bytes, sends 100, closes
    url = server.url("/m.bin")
    register(monkeypatch, spec(url, sha256=None))
    with pytest.raises(MacsError, match="closed after 100 of 1000 bytes") as err:
        weights.fetch("m", progress=False)
    assert url in str(err.value) and "no partial file was kept" in str(err.value)
    assert list(cache.iterdir()) == []  # no file, no .part, nothing recorded in SHA256SUMS.local
    with pytest.raises(MacsError, match="missing weights"):
        weights.path("m")


def test_size_announced_by_the_server_must_match_the_registry(cache, server, monkeypatch):
    server.routes["/m.bin"] = (GOOD, None)
    register(monkeypatch, spec(server.url("/m.bin"), size=len(GOOD) + 1))
    with pytest.raises(MacsError, match=f"offers {len(GOOD)} bytes, expected {len(GOOD) + 1}"):
        weights.fetch("m", progress=False)
    assert list(cache.iterdir()) == []


def test_missing_weights_raise_the_one_line_fetch_hint(cache, monkeypatch):
    register(monkeypatch, spec("https://example.invalid/m.bin"))
    with pytest.raises(MacsError) as err:
        weights.path("m")
    assert str(err.value) == f"{cache / 'm.bin'}: missing weights 'm'; fetch them with: macs-bench weights fetch m"


def test_offline_fetch_names_the_url_and_keeps_nothing(cache, monkeypatch):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    url = f"http://127.0.0.1:{port}/m.bin"
    register(monkeypatch, spec(url))
    with pytest.raises(MacsError) as err:
        weights.fetch("m", progress=False)
    message = str(err.value)
    assert message.startswith(f"{cache / 'm.bin'}: cannot fetch weights 'm': {url}: ")
    assert "no partial file was kept (offline? copy m.bin into" in message and "\n" not in message
    assert list(cache.iterdir()) == []


def test_corrupt_file_is_reported_refused_and_refetched(cache, server, monkeypatch):
    server.routes["/m.bin"] = (GOOD, None)
    register(monkeypatch, spec(server.url("/m.bin")))
    target = weights.fetch("m", progress=False)
    bad = bytearray(GOOD)
    bad[1000] ^= 0xFF
    rewrite(target, bytes(bad))
    [result] = weights.verify()
    assert result.status == "corrupt" and not result.ok
    assert result.actual == hashlib.sha256(bad).hexdigest() and result.expected == GOOD_SHA
    with pytest.raises(MacsError, match=r"corrupt weights 'm' .*fetch them again with: macs-bench weights fetch m$"):
        weights.path("m")
    weights.fetch("m", progress=False)  # an unverified copy is replaced without force
    assert server.hits == 2 and weights.verify("m")[0].status == "ok"


def test_trust_on_first_use_records_then_detects_a_change(cache, server, monkeypatch):
    server.routes["/m.bin"] = (GOOD, None)
    register(monkeypatch, spec(server.url("/m.bin"), sha256=None))
    target = weights.fetch("m", progress=False)
    assert (cache / "SHA256SUMS.local").read_text() == f"{GOOD_SHA}  m.bin\n"
    [result] = weights.verify("m")
    assert (result.status, result.detail, result.expected) == ("unpinned", "unpinned (recorded locally)", GOOD_SHA)
    assert weights.path("m") == target

    server.routes["/m.bin"] = (GOOD[::-1], None)  # upstream now serves other bytes
    with pytest.raises(MacsError, match="as recorded in .*SHA256SUMS.local"):
        weights.fetch("m", force=True, progress=False)
    assert target.read_bytes() == GOOD and not target.with_name("m.bin.part").exists()

    rewrite(target, GOOD[::-1])
    assert weights.verify("m")[0].status == "corrupt"
    with pytest.raises(MacsError, match="corrupt weights 'm'"):
        weights.path("m")


def test_unpinned_file_copied_by_hand_is_recorded_on_first_use(cache, monkeypatch):
    register(monkeypatch, spec("https://example.invalid/m.bin", sha256=None))
    cache.mkdir(parents=True)
    (cache / "m.bin").write_bytes(GOOD)
    assert weights.verify("m")[0].detail == "unpinned (not recorded yet)"
    assert not (cache / "SHA256SUMS.local").exists()  # verify only reads
    assert weights.path("m") == cache / "m.bin"
    assert weights.verify("m")[0].detail == "unpinned (recorded locally)"


def test_malformed_local_sums_name_file_and_line(cache, monkeypatch):
    register(monkeypatch, spec("https://example.invalid/m.bin", sha256=None))
    cache.mkdir(parents=True)
    (cache / "m.bin").write_bytes(GOOD)
    (cache / "SHA256SUMS.local").write_text(f"{GOOD_SHA}  m.bin\nnot a sum\n")
    with pytest.raises(MacsError, match=re.escape(f"{cache / 'SHA256SUMS.local'}:2: ")):
        weights.verify("m")


def test_verification_cache_rehashes_only_after_the_file_changes(cache, server, monkeypatch):
    server.routes["/m.bin"] = (GOOD, None)
    register(monkeypatch, spec(server.url("/m.bin")))
    target = weights.fetch("m", progress=False)
    calls = []
    real = weights.store.sha256_file
    monkeypatch.setattr(weights.store, "sha256_file", lambda file: calls.append(file) or real(file))
    weights.path("m")
    weights.path("m")
    assert calls == []  # fetch remembered the hash; (size, mtime_ns) unchanged
    bad = bytearray(GOOD)
    bad[0] ^= 1
    rewrite(target, bytes(bad))  # same size, newer mtime
    with pytest.raises(MacsError, match="corrupt"):
        weights.path("m")
    assert len(calls) == 1
    rewrite(target, GOOD)
    assert weights.path("m") == target and len(calls) == 2
    weights.path("m")
    assert len(calls) == 2
    stored = json.loads((cache / "m.bin.verified.json").read_text())
    assert stored["m.bin sha256"]["digest"] == GOOD_SHA


def test_unknown_weights_name_lists_the_known_ones(cache, monkeypatch):
    register(monkeypatch, spec("https://example.invalid/m.bin"))
    with pytest.raises(MacsError, match="unknown weights 'nope'; known: m"):
        weights.fetch("nope")


def test_list_weights_rows(cache, server, monkeypatch):
    server.routes["/m.bin"] = (GOOD, None)
    register(monkeypatch, spec(server.url("/m.bin")), spec(server.url("/n.bin"), sha256=None, size=7, name="n"))
    weights.fetch("m", progress=False)
    rows = {row.name: row for row in weights.list_weights()}
    assert (rows["m"].file, rows["m"].size, rows["m"].present, rows["m"].pinned) == (
        str(cache / "m.bin"), len(GOOD), True, True)
    assert (rows["n"].size, rows["n"].present, rows["n"].pinned, rows["n"].used_by) == (7, False, False, "tests")


# -- Hugging Face repository entries ---------------------------------------------------------------------------


def _fake_snapshot_download(calls, with_unet=True):
    """Lays out a snapshot as huggingface_hub does: blobs named by sha256 (LFS) or git-sha1, symlinked in."""
    from huggingface_hub.utils.sha import git_hash

    def snapshot_download(repo_id, *, revision, cache_dir, **kwargs):
        calls.append(dict(repo_id=repo_id, revision=revision, cache_dir=cache_dir, **kwargs))
        root = cache_dir / ("models--" + repo_id.replace("/", "--"))
        snapshot = root / "snapshots" / revision
        files = {"model_index.json": (json.dumps({"_class_name": "P", "unet": ["diffusers", "U"],
                                                  "safety_checker": [None, None]}).encode(), "git")}
        if with_unet:
            files["unet/config.json"] = (b'{"a": 1}', "git")
            files["unet/diffusion_pytorch_model.safetensors"] = (GOOD, "lfs")
        for rel, (data, storage) in files.items():
            etag = hashlib.sha256(data).hexdigest() if storage == "lfs" else git_hash(data)
            blob = root / "blobs" / etag
            blob.parent.mkdir(parents=True, exist_ok=True)
            blob.write_bytes(data)
            link = snapshot / rel
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(os.path.relpath(blob, link.parent))
        return str(snapshot)

    return snapshot_download


def hf_spec():
    return WeightSpec(name="sd", filename="model_index.json", urls=("https://huggingface.co/org/sd",),
                      sha256=None, size=None, licence="test", what="test repo", used_by="tests", kind="hf-repo",
                      repo_id="org/sd", revision="a" * 40, ignore_patterns=("*.msgpack",))


def test_hf_repo_is_fetched_into_our_cache_and_verified_blob_by_blob(cache, monkeypatch):
    huggingface_hub = pytest.importorskip("huggingface_hub")
    calls = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download", _fake_snapshot_download(calls))
    register(monkeypatch, hf_spec())
    snapshot = cache / "hf" / "models--org--sd" / "snapshots" / ("a" * 40)
    with pytest.raises(MacsError) as err:
        weights.path("sd")
    assert str(err.value) == f"{snapshot}: missing weights 'sd'; fetch them with: macs-bench weights fetch sd"

    assert weights.fetch("sd", progress=False) == snapshot
    assert calls[0]["repo_id"] == "org/sd" and calls[0]["revision"] == "a" * 40
    assert calls[0]["cache_dir"] == cache / "hf" and calls[0]["ignore_patterns"] == ["*.msgpack"]
    assert weights.path("sd") == snapshot and weights.verify("sd")[0].status == "ok"
    assert weights.fetch("sd", progress=False) == snapshot and len(calls) == 1

    blob = (snapshot / "unet" / "diffusion_pytorch_model.safetensors").resolve()
    rewrite(blob, GOOD[::-1])
    [result] = weights.verify("sd")
    assert result.status == "corrupt" and blob.name in result.detail
    with pytest.raises(MacsError, match="corrupt weights 'sd'"):
        weights.path("sd")


def test_hf_repo_without_model_index_fetches_only_allowed_files(cache, monkeypatch):
    huggingface_hub = pytest.importorskip("huggingface_hub")
    from huggingface_hub.utils.sha import git_hash

    calls = []

    def snapshot_download(repo_id, *, revision, cache_dir, **kwargs):
        calls.append(kwargs)
        root = cache_dir / ("models--" + repo_id.replace("/", "--"))
        for rel, data in (("vocab.json", b'{"a": 0}'), ("merges.txt", b"#version: 0.2\n")):
            blob = root / "blobs" / git_hash(data)
            blob.parent.mkdir(parents=True, exist_ok=True)
            blob.write_bytes(data)
            link = root / "snapshots" / revision / rel
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(os.path.relpath(blob, link.parent))
        return str(root / "snapshots" / revision)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    register(monkeypatch, WeightSpec(name="tok", filename="vocab.json", urls=("https://huggingface.co/org/tok",),
                                     sha256=None, size=None, licence="t", what="t", used_by="t", kind="hf-repo",
                                     repo_id="org/tok", revision="b" * 40, allow_patterns=("vocab.json", "merges.txt")))
    snapshot = weights.fetch("tok", progress=False)
    assert calls[0]["allow_patterns"] == ["vocab.json", "merges.txt"] and calls[0]["ignore_patterns"] is None
    assert weights.verify("tok")[0].status == "ok" and weights.path("tok") == snapshot
    rewrite((snapshot / "merges.txt").resolve(), b"tampered")
    assert weights.verify("tok")[0].status == "corrupt"


def test_incomplete_hf_snapshot_is_not_used(cache, monkeypatch):
    huggingface_hub = pytest.importorskip("huggingface_hub")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", _fake_snapshot_download([], with_unet=False))
    register(monkeypatch, hf_spec())
    with pytest.raises(MacsError, match=r"are not usable \(.*incomplete: no unet/\)"):
        weights.fetch("sd", progress=False)
    with pytest.raises(MacsError, match="corrupt weights 'sd'"):
        weights.path("sd")


def test_hf_hub_errors_become_one_line(cache, monkeypatch):
    huggingface_hub = pytest.importorskip("huggingface_hub")

    def offline(*args, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co'.\nCheck your connection.")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    register(monkeypatch, hf_spec())
    with pytest.raises(MacsError) as err:
        weights.fetch("sd", progress=False)
    assert "\n" not in str(err.value) and "https://huggingface.co/org/sd" in str(err.value)
    assert "OSError: We couldn't connect" in str(err.value)


@pytest.mark.parametrize("env", [{"HF_HUB_OFFLINE": "1"}, {"HF_ENDPOINT": "https://hub.invalid"}])
def test_offline_hub_fails_at_once_without_retries(cache, monkeypatch, hub_reachable, env):
    """Offline, the hub is never called (its client retries for about 25 s): one line at once instead."""
    huggingface_hub = pytest.importorskip("huggingface_hub")
    calls = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(weights.download, "hub_unreachable", hub_reachable)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    register(monkeypatch, hf_spec())
    with pytest.raises(MacsError) as err:
        weights.fetch("sd", progress=False)
    assert calls == [] and "\n" not in str(err.value)
    assert "cannot fetch weights 'sd'" in str(err.value) and ("HF_HUB_OFFLINE" in str(err.value)
                                                              or "hub.invalid is unreachable" in str(err.value))


def test_weights_list_shows_the_cache_root_once_and_each_pin_kind(cache):
    from typer.testing import CliRunner

    from macs_bench.cli import app

    result = CliRunner().invoke(app, ["weights", "list"], env={"COLUMNS": "80", "MACS_HOME": str(cache.parent)})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"cache: {cache}" and result.output.count(str(cache)) == 1
    assert max(len(line) for line in lines[1:]) <= 80 and len(lines) <= 2 + 2 * len(weights.WEIGHTS)
    row = {line.split()[0]: line for line in lines[2:] if line.split() and line.split()[0] in weights.WEIGHTS}
    assert " hub 133a221b8aa7 " in row["stable-diffusion-v1-4"] and " sha256 " in row["clip-vit-b-32-openai"]
    for name, spec in weights.WEIGHTS.items():
        assert weights.pin_kind(spec) in row[name]
        assert ("sha256" in row[name]) == (spec.sha256 is not None)


def test_weights_fetch_needs_names_or_all(cache):
    from typer.testing import CliRunner

    from macs_bench.cli import app

    result = CliRunner().invoke(app, ["weights", "fetch"], env={"MACS_HOME": str(cache.parent)})
    assert result.exit_code != 0 and "--all" in str(result.exception or result.output)
    assert not cache.exists()  # nothing was downloaded


# -- the real registry ------------------------------------------------------------------------------------------


def test_every_registry_entry_is_well_formed():
    assert set(weights.WEIGHTS) == {"inception-2015-12-05", "clip-vit-b-32-openai", "wav2clip",
                                    "clap-630k-audioset-best", "stable-diffusion-v1-4", "roberta-base-tokenizer",
                                    "clip-vit-l-14-336-openai", "dinov2-vit-l-14", "imagebind-huge",
                                    "sd-2-1-unclip", "beats-as2m-cpt2", "audiotoken-embedder"}
    for name, entry in weights.WEIGHTS.items():
        assert entry.name == name and entry.filename and entry.licence and entry.used_by
        assert entry.urls and all(url.startswith("https://") for url in entry.urls), name
        assert entry.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", entry.sha256), name
        if entry.kind == "file":
            assert entry.urls[0].split("?")[0].rsplit("/", 1)[1] == entry.filename, name
        else:
            assert re.fullmatch(r"[0-9a-f]{40}", entry.revision) and entry.repo_id in entry.url, name
    clip = weights.WEIGHTS["clip-vit-b-32-openai"]
    assert f"/{clip.sha256}/" in clip.url  # OpenAI's CLIP URLs carry the file's sha256


def test_cmmd_and_dinov2_entries_match_their_upstream_sources():
    import open_clip

    large = weights.WEIGHTS["clip-vit-l-14-336-openai"]
    assert large.url == open_clip.pretrained.get_pretrained_url("ViT-L-14-336", "openai")
    assert f"/{large.sha256}/" in large.url
    dino = weights.WEIGHTS["dinov2-vit-l-14"]
    assert dino.repo_id == "facebook/dinov2-large" and "model.safetensors" in dino.allow_patterns


def test_extra_encoders_offline_say_how_to_fetch(tmp_path, monkeypatch):
    from macs_bench.features.encoders import build_encoders

    monkeypatch.setenv("MACS_HOME", str(tmp_path))
    for name, entry in (("clip_l336", "clip-vit-l-14-336-openai"), ("dinov2", "dinov2-vit-l-14")):
        with pytest.raises(MacsError, match=rf"missing weights '{entry}'; fetch them with: macs-bench weights "
                                            rf"fetch {entry}"):
            build_encoders("paper", names=[name])


def test_bad_registry_entries_are_refused():
    with pytest.raises(ValueError, match="not 64 lowercase hex"):
        spec("https://example.invalid/m.bin", sha256="ABC")
    with pytest.raises(ValueError, match="40-hex commit revision"):
        WeightSpec(name="x", filename="model_index.json", urls=("https://huggingface.co/x",), sha256=None,
                   size=None, licence="t", what="t", used_by="t", kind="hf-repo", repo_id="o/x", revision="main")
