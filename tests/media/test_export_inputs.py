"""datasets export under bad input and beside a fetch: one line and exit 2 for every bad input, never a
temporary file left behind, folds checked against stats.json, OUT outside MEDIA, the MEDIA lock shared with
fetch; per-shard stats and per-sample padding."""

import json
import os
import resource
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from fake_downloader import FakeDownloader
from media_helpers import clip_row, make_av, write_manifest

from macs_bench.datasets.manifest import manifest_rows
from macs_bench.errors import MacsError
from macs_bench.media import export as export_module
from macs_bench.media.export import export
from macs_bench.media.fetch import FetchOptions, fetch
from macs_bench.media.ledger import Ledger

BIN = Path(sys.executable).parent / "macs-bench"


def leftovers(folder: Path) -> list[str]:
    """Temporary files anywhere under ``folder``."""
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".tmp") or ".tmp." in p.name)


def edited_manifest(tmp_path: Path, manifest: Path, row: int, column: str, value: str, stats=None) -> Path:
    rows = manifest_rows(manifest)
    rows[row][column] = value
    folder = write_manifest(tmp_path / "edited", rows)
    if stats is not None:
        (folder / "stats.json").write_text(json.dumps(stats))
    return folder


def run_export(*args, **kwargs):
    return subprocess.run([str(BIN), "datasets", "export", *map(str, args)], capture_output=True, text=True,
                          timeout=120, **kwargs)


def one_line_error(result, *needles):
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_a_fold_cell_that_is_not_a_number_is_one_line(tmp_path, fetched):
    manifest, media, _ = fetched
    bad = edited_manifest(tmp_path, manifest, 1, "fold", "abc")
    line = one_line_error(run_export("--manifest", bad, "--media", media, "--out", tmp_path / "x"),
                          "manifest.csv:3", "fold 'abc'")
    assert not (tmp_path / "x").exists(), line


def test_a_fold_missing_from_the_stats_is_refused(tmp_path, fetched):
    manifest, media, rows = fetched
    stats = {"dataset": "llp-multi", "folds": {"0": 2, "1": 2, "2": 2}}  # the manifest's three folds
    fine = edited_manifest(tmp_path / "a", manifest, 0, "fold", "2", stats)
    assert export(fine, media, tmp_path / "ok")["complete"]
    bad = edited_manifest(tmp_path / "b", manifest, 4, "fold", "9", stats)
    with pytest.raises(MacsError, match=r"manifest.csv:6: fold 9 is not one of the folds 0, 1, 2 of .*stats.json"):
        export(bad, media, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_out_equal_to_or_inside_media_is_refused(tmp_path, fetched):
    manifest, media, _ = fetched
    copy = tmp_path / "media"
    shutil.copytree(media, copy, symlinks=True)
    before = sorted(p.relative_to(copy) for p in copy.rglob("*"))
    for out in (copy, copy / "shards", copy / "audio" / ".." / "x"):
        with pytest.raises(MacsError, match="inside the MEDIA folder"):
            export(manifest, copy, out)
    assert sorted(p.relative_to(copy) for p in copy.rglob("*")) == before


def _read_only_folder(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    if Path("/sys/kernel").is_dir() and not os.access("/sys/kernel", os.W_OK):  # root ignores mode bits
        return Path("/sys/kernel")
    try:  # sysfs refuses new files even to root
        (Path("/sys/kernel") / ".macs-probe").touch()
    except OSError:
        return Path("/sys/kernel")
    pytest.skip("no read-only folder available to this user")


def test_a_read_only_out_is_one_line(tmp_path, fetched):
    manifest, media, _ = fetched
    folder = _read_only_folder(tmp_path)
    for out in (folder, folder / "new"):
        one_line_error(run_export("--manifest", manifest, "--media", media, "--out", out), str(folder),
                       "cannot export")


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["webdataset", "parquet"])
def test_a_file_size_limit_is_one_line_and_leaves_no_temporary_file(tmp_path, fetched, fmt):
    manifest, media, _ = fetched
    limit = 400_000  # one 10 s clip's WAV (320 kB) fits, two do not

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    out = tmp_path / "x"
    result = run_export("--manifest", manifest, "--media", media, "--out", out, "--format", fmt, "--shard-size", 3,
                        preexec_fn=small_files)
    one_line_error(result, "00000.", "File too large")
    assert leftovers(out) == []
    if (out / "index.json").exists():
        assert json.loads((out / "index.json").read_text())["complete"] is False
    # the same command without the limit resumes and completes
    assert run_export("--manifest", manifest, "--media", media, "--out", out, "--format", fmt, "--shard-size",
                      3).returncode == 0
    assert json.loads((out / "index.json").read_text())["complete"] is True and leftovers(out) == []


def test_a_failed_read_leaves_no_temporary_file(tmp_path, fetched, monkeypatch):
    manifest, media, rows = fetched
    copy = tmp_path / "media"
    shutil.copytree(media, copy, symlinks=True)
    wav = copy / "audio" / f"{rows[3]['sample_id']}.wav"
    original = export_module.selection

    def then_vanishes(*args):  # a file lost between the selection and its read (a disk error, a user's rm)
        chosen = original(*args)
        wav.unlink()
        return chosen

    monkeypatch.setattr(export_module, "selection", then_vanishes)
    with pytest.raises(MacsError, match=f"{wav.name}: cannot read .*fetch it again"):
        export(manifest, copy, tmp_path / "x", shard_size=10)
    assert leftovers(tmp_path / "x") == []


class GatedDownloader(FakeDownloader):
    """Serves the first clip at once and holds the rest until ``gate`` is set."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.gate, self.first_done, self.n = threading.Event(), threading.Event(), 0

    def download(self, ytid, start, end, workdir):
        self.n += 1
        if self.n > 1:
            self.first_done.set()
            assert self.gate.wait(60)
        return super().download(ytid, start, end, workdir)


@pytest.mark.slow
def test_export_during_a_fetch_is_refused_and_never_complete(tmp_path, fetched, long_video):
    manifest, _, _ = fetched
    videos = tmp_path / "yt"
    videos.mkdir()
    for row in manifest_rows(manifest):
        os.symlink(long_video, videos / f"{row['ytid']}.mp4")
    downloader = GatedDownloader(videos)
    media = tmp_path / "media"
    errors = []
    worker = threading.Thread(target=lambda: errors.append(fetch(manifest, media, downloader=downloader,
                                                                 options=FetchOptions(quality=None, jobs=1))))
    worker.start()
    try:
        assert downloader.first_done.wait(60)
        for _ in range(100):  # the first clip is recorded ok while the second is still downloading
            with Ledger(media / "ledger.sqlite") as ledger:
                if any(e.status == "ok" for e in ledger.all().values()):
                    break
            threading.Event().wait(0.1)
        with pytest.raises(MacsError, match="a fetch or merge is writing to this MEDIA folder"):
            export(manifest, media, tmp_path / "snap")
        assert not (tmp_path / "snap" / "index.json").exists()
    finally:
        downloader.gate.set()
        worker.join(120)
    assert errors and errors[0].n_ok == 6
    assert export(manifest, media, tmp_path / "snap")["n_samples"] == 6  # after the fetch: all of it


def test_exports_share_the_lock_and_a_fetch_waits_for_them(tmp_path, fetched, monkeypatch):
    manifest, media, _ = fetched
    copy = tmp_path / "media"
    shutil.copytree(media, copy, symlinks=True)
    inside, release = threading.Event(), threading.Event()
    original = export_module._write_tar

    def slow(path, records):
        inside.set()
        assert release.wait(60)
        original(path, records)

    monkeypatch.setattr(export_module, "_write_tar", slow)
    done = []
    worker = threading.Thread(target=lambda: done.append(export(manifest, copy, tmp_path / "first")))
    worker.start()
    try:
        assert inside.wait(60)
        monkeypatch.setattr(export_module, "_write_tar", original)
        assert export(manifest, copy, tmp_path / "second")["complete"]  # readers beside each other
        with pytest.raises(MacsError, match="another fetch"):  # but no writer beside a reader
            fetch(manifest, copy, downloader=FakeDownloader(tmp_path), options=FetchOptions(quality=None))
    finally:
        release.set()
        worker.join(60)
    assert done and done[0]["complete"]


def test_each_shard_has_its_stats(tmp_path, fetched):
    manifest, media, rows = fetched
    index = export(manifest, media, tmp_path / "x", shard_size=2)
    for shard, chunk in zip(index["shards"], [rows[0:2], rows[2:4], rows[4:]]):
        stats = json.loads((tmp_path / "x" / shard["stats"]).read_text())
        assert shard["stats"] == shard["name"].replace(".tar", "_stats.json")
        assert stats["sha256"] == shard["sha256"] and stats["n_samples"] == len(chunk)
        want_folds = {}
        for r in chunk:
            want_folds[r["fold"]] = want_folds.get(r["fold"], 0) + 1
        assert stats["folds"] == dict(sorted(want_folds.items()))
        assert stats["labels"] == dict(sorted({lab: sum(lab in r["labels"].split(";") for r in chunk)
                                               for r in chunk for lab in r["labels"].split(";")}.items()))
        assert stats["splits"] == {"eval": len(chunk)} and stats["n_padded"] == 0
        assert abs(stats["audio_seconds"] - 10.0 * len(chunk)) < 1e-6  # 10 s clips
    # a shard whose stats went missing is written again on resume
    (tmp_path / "x" / index["shards"][1]["stats"]).unlink()
    again = export(manifest, media, tmp_path / "x", shard_size=2)
    assert again["shards"] == index["shards"]
    assert (tmp_path / "x" / index["shards"][1]["stats"]).is_file()


@pytest.fixture(scope="module")
def padded(tmp_path_factory):
    """Two trimmed local clips: one whose audio stream starts 1.5 s late (padded at the start), one whole."""
    tmp = tmp_path_factory.mktemp("padded")
    src = tmp / "videos"
    src.mkdir()
    make_av(src / "lateaudio01.mp4", 10, 8.5, audio_start=1.5)
    make_av(src / "fullaudio01.mp4", 10, 10)
    rows = [clip_row("lateaudio01", 30, 40, frame=2), clip_row("fullaudio01", 0, 10, frame=2)]
    manifest = write_manifest(tmp / "m", rows)
    fetch(manifest, tmp / "media", source_dir=src, options=FetchOptions(quality=None))
    with Ledger(tmp / "media" / "ledger.sqlite") as ledger:
        entries = ledger.all()
    return manifest, tmp / "media", entries


def test_padding_is_recorded_per_sample(tmp_path, padded):
    import pyarrow.parquet as pq
    import webdataset as wds

    manifest, media, entries = padded
    late, full = entries["lateaudio01_30_40"].detail, entries["fullaudio01_0_10"].detail
    assert 1.3 < late["pad_start"] < 1.6 and full["pad_start"] < 0.05
    index = export(manifest, media, tmp_path / "wds")
    metas = {json.loads(s["json"])["sample_id"]: json.loads(s["json"])
             for s in wds.WebDataset(str(tmp_path / "wds" / index["shards"][0]["name"]), shardshuffle=False)}
    for sid, entry in entries.items():
        assert (metas[sid]["pad_start"], metas[sid]["pad_end"]) == (entry.detail["pad_start"], entry.detail["pad_end"])
    stats = json.loads((tmp_path / "wds" / index["shards"][0]["stats"]).read_text())
    assert stats["n_padded"] >= 1 and stats["pad_seconds"] >= late["pad_start"]
    export(manifest, media, tmp_path / "pq", fmt="parquet")
    table = pq.read_table(tmp_path / "pq" / "part-000000.parquet").to_pylist()
    for record in table:
        assert record["pad_start"] == pytest.approx(entries[record["sample_id"]].detail["pad_start"], abs=1e-6)


def test_available_txt_records_the_padding_and_stays_an_id_list(padded):
    from macs_bench.datasets.manifest import read_id_list

    _, media, entries = padded
    lines = dict(line.split("\t", 1) if "\t" in line else (line, "")
                 for line in (media / "available.txt").read_text().splitlines())
    assert sorted(lines) == sorted(entries)
    late = entries["lateaudio01_30_40"].detail
    assert f"pad_start={late['pad_start']:g}" in lines["lateaudio01_30_40"].split("\t")
    for sid, entry in entries.items():  # every padding the ledger holds, and no other
        want = [f"{k}={entry.detail[k]:g}" for k in ("pad_start", "pad_end") if entry.detail[k]]
        assert (lines[sid].split("\t") if lines[sid] else []) == want
    assert read_id_list(media / "available.txt") == set(entries)  # what 'datasets build --available' reads
