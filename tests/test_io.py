import os

import pytest

from macs_bench import io


def test_atomic_write_replaces_whole_file_with_normal_mode(tmp_path):
    target = tmp_path / "sub" / "f.txt"
    io.atomic_write_text(target, "old\n")
    io.atomic_write_text(target, "new\n")
    assert target.read_text() == "new\n"
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask
    assert [p.name for p in target.parent.iterdir()] == ["f.txt"]


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "f.txt"
    io.atomic_write_text(target, "old\n")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(io.os, "replace", broken_replace)
    with pytest.raises(OSError):
        io.atomic_write_text(target, "new\n")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]  # temporary file removed


def test_dumps_json_is_stable():
    assert io.dumps_json({"b": 1, "a": [1, 2]}) == '{\n  "b": 1,\n  "a": [\n    1,\n    2\n  ]\n}\n'


def test_file_lock_excludes_a_second_holder(tmp_path):
    lock = tmp_path / "sub" / "x.lock"
    with io.file_lock(lock) as held:
        assert held
        with io.file_lock(lock, wait=False) as second:  # a second open file description: flock refuses it
            assert second is False
    with io.file_lock(lock, wait=False) as again:
        assert again


def test_second_fetch_into_one_media_folder_is_refused(tmp_path):
    from macs_bench.errors import MacsError
    from macs_bench.media.fetch import _exclusive

    with _exclusive(tmp_path):
        with pytest.raises(MacsError, match="another fetch is writing to this folder"):
            with _exclusive(tmp_path):
                pass
