"""A full disk or an I/O error is not a damaged ledger: one line, the rerun exit status (3), no traceback, and
never the advice to move the ledger away."""

import errno
import os
import sqlite3

import pytest

from media_helpers import linked_clips, run_fetch_cli

from macs_bench.errors import MacsError
from macs_bench.media.clip import Fetcher
from macs_bench.media.fetch import FetchOptions, fetch
from macs_bench.media.ledger import Ledger
from macs_bench.media.storage import StorageError, disk_error, is_disk_error


@pytest.fixture
def four_clips(tmp_path, long_video):
    return linked_clips(tmp_path, long_video, "diskfull", 4)


class FullDisk:
    """A sqlite3 connection whose writes fail as SQLite's do at the disk's limit."""

    def __init__(self, db):
        self.db = db

    def execute(self, sql, *args):
        if sql.lstrip().startswith(("INSERT", "DELETE")):
            raise sqlite3.OperationalError("database or disk is full")
        return self.db.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self.db, name)


def test_disk_full_while_writing_a_clip_stops_with_the_rerun_code(tmp_path, four_clips, monkeypatch, capsys):
    src, manifest, rows = four_clips
    installed = []

    def install(self, item, *args):
        if installed:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.audio_path(item)))
        installed.append(item.sample_id)
        return original(self, item, *args)

    original = Fetcher._install
    monkeypatch.setattr(Fetcher, "_install", install)
    code, _, err = run_fetch_cli(monkeypatch, capsys, "--manifest", manifest, "--media", tmp_path / "media",
                           "--source-dir", src, "--jobs", "1", "--quality-filter", "off")
    assert code == 3, err
    (line,) = err.strip().splitlines()
    assert "No space left on device; free space, then rerun the same command" in line
    assert "nothing could be fetched" not in err and "Traceback" not in err
    with Ledger(tmp_path / "media" / "ledger.sqlite") as ledger:
        entries = ledger.all()
    # the clip written before the disk filled is kept; the one it failed on stays pending, not "failed"
    assert {sid: e.status for sid, e in entries.items()} == {installed[0]: "ok"}
    assert (tmp_path / "media" / "available.txt").read_text().split() == installed


def test_a_ledger_write_at_the_limit_is_one_line_not_a_traceback(tmp_path, four_clips, monkeypatch, capsys):
    src, manifest, _ = four_clips
    connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: FullDisk(connect(*a, **k)))
    code, _, err = run_fetch_cli(monkeypatch, capsys, "--manifest", manifest, "--media", tmp_path / "media",
                           "--source-dir", src, "--jobs", "1", "--quality-filter", "off")
    assert code == 3, err
    (line,) = err.strip().splitlines()
    assert "ledger.sqlite: disk full while writing the ledger (database or disk is full); free space" in line
    assert "move it away" not in line


@pytest.mark.parametrize("message", ["database or disk is full", "disk I/O error", "unable to open database file"])
def test_a_ledger_that_cannot_be_opened_for_the_disk_is_not_called_damaged(tmp_path, monkeypatch, message):
    def refuse(*args, **kwargs):
        raise sqlite3.OperationalError(message)

    monkeypatch.setattr(sqlite3, "connect", refuse)
    with pytest.raises(StorageError) as err:
        Ledger(tmp_path / "new" / "ledger.sqlite")
    assert message in str(err.value) and "move it away" not in str(err.value) and err.value.exit_code == 3


def test_a_damaged_ledger_is_still_called_damaged(tmp_path):
    path = tmp_path / "ledger.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(MacsError, match="not a usable ledger .*move it away") as err:
        Ledger(path)
    assert not isinstance(err.value, StorageError)


def test_a_real_enospc_is_a_disk_error():
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    with pytest.raises(OSError) as caught:
        with open("/dev/full", "w") as full:
            full.write("x")
    assert caught.value.errno == errno.ENOSPC and is_disk_error(caught.value)
    assert "No space left on device; free space" in str(disk_error(caught.value, "/media"))
    assert not is_disk_error(PermissionError(errno.EACCES, "Permission denied"))


def test_python_fetch_raises_storage_error(tmp_path, four_clips, monkeypatch):
    src, manifest, _ = four_clips

    def full(self, item, *args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Fetcher, "_install", full)
    with pytest.raises(StorageError, match="No space left on device"):
        fetch(manifest, tmp_path / "media", source_dir=src, options=FetchOptions(jobs=2, quality=None))


def test_sqlites_disk_io_error_on_a_full_disk_is_called_a_full_disk(tmp_path, monkeypatch):
    """SQLite says "disk I/O error" when its WAL cannot grow on a full disk (seen on a full tmpfs)."""
    import shutil
    from collections import namedtuple

    from macs_bench.media.storage import ledger_storage_error

    usage = namedtuple("usage", "total used free")
    error = sqlite3.OperationalError("disk I/O error")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9, 0))
    assert "disk full while opening the ledger (disk I/O error); free space" in str(
        ledger_storage_error(error, tmp_path / "ledger.sqlite", "opening"))
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 0, 10**9))
    assert "I/O error while opening" in str(ledger_storage_error(error, tmp_path / "ledger.sqlite", "opening"))
