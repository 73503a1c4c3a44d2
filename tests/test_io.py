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


def test_one_sha256sums_parser_reads_what_sha256sum_writes(tmp_path):
    """The metadata pins, the world weights and the weights cache share io.parse_sha256sums / format_sha256sums."""
    import subprocess

    from macs_bench.datasets import metadata
    from macs_bench.errors import MacsError, MetadataError
    from macs_bench.io import format_sha256sums, parse_sha256sums
    from macs_bench.weights import store
    from macs_bench.world import checksums

    (tmp_path / "a b.txt").write_text("x")
    (tmp_path / "c.bin").write_bytes(b"\0")
    listing = subprocess.run(["sha256sum", "a b.txt", "c.bin"], cwd=tmp_path, capture_output=True, text=True,
                             check=True).stdout
    sums = parse_sha256sums(listing + "\n", "SUMS")
    assert list(sums) == ["a b.txt", "c.bin"]
    assert format_sha256sums(sums) == listing
    assert parse_sha256sums(listing.replace("  ", " *"), "SUMS") == sums  # binary-mode lines
    (tmp_path / "SHA256SUMS").write_text(listing)
    assert metadata.read_sha256sums(tmp_path / "SHA256SUMS") == checksums.read_sums(tmp_path / "SHA256SUMS") == sums
    for parser, error in ((metadata.read_sha256sums, MetadataError), (checksums.read_sums, MacsError)):
        (tmp_path / "SHA256SUMS").write_text(listing + "deadbeef  short.txt\n")
        with pytest.raises(error, match=r"SHA256SUMS:3: expected '<sha256>  <file>', got 'deadbeef  short.txt'"):
            parser(tmp_path / "SHA256SUMS")
    assert store.parse_sha256sums is parse_sha256sums


def test_split_list_is_the_one_cell_splitter():
    from macs_bench.datasets.manifest import split_list

    assert split_list("Speech;Dog") == ["Speech", "Dog"]
    assert split_list("") == split_list(None) == []
    assert split_list(";a;;b;") == ["a", "b"]
