"""export and merge-media show a progress bar on stderr in a terminal, and nothing when stderr is a file or a pipe
(batch logs stay clean); the Python API can ask for it."""

import os
import select
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from macs_bench.media.export import export

BIN = Path(sys.executable).parent / "macs-bench"


def run_in_terminal(cmd: list[str], tmp_path: Path) -> tuple[int, str, str]:
    """Run ``cmd`` with stderr on a pseudo-terminal (stdout to a file): (status, stdout, what the terminal got)."""
    import pty

    master, slave = pty.openpty()
    with open(tmp_path / "stdout", "wb") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=slave,
                                env={**os.environ, "COLUMNS": "100", "TERM": "xterm"})
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 120)
        if not ready:
            break
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        seen += data
    os.close(master)
    code = proc.wait(60)
    return code, (tmp_path / "stdout").read_text(), seen.decode("utf-8", "replace")


@pytest.mark.slow
@pytest.mark.parametrize("command", ["export", "merge-media"])
def test_a_bar_in_a_terminal_and_none_in_a_pipe(tmp_path, fetched, command):
    manifest, media, _ = fetched
    if command == "export":
        args, label, done = ["export", "--manifest", str(manifest), "--media", str(media), "--out"], "export", "5/5"
    else:
        copy = tmp_path / "media"
        shutil.copytree(media, copy, symlinks=True)
        args, label, done = ["merge-media", str(copy), "--out"], "merge", "6/6"  # 5 ok, 1 unavailable
    code, stdout, terminal = run_in_terminal([str(BIN), "datasets", *args, str(tmp_path / "a")], tmp_path)
    assert code == 0, terminal
    assert label in terminal and done in terminal and "samples" in terminal, terminal
    piped = subprocess.run([str(BIN), "datasets", *args, str(tmp_path / "b")], capture_output=True, text=True,
                           timeout=120)
    assert piped.returncode == 0 and piped.stderr == "", piped.stderr
    assert "\x1b" not in piped.stdout


def test_the_python_api_shows_a_bar_when_asked(tmp_path, fetched, capsys):
    manifest, media, _ = fetched
    export(manifest, media, tmp_path / "quiet")  # stderr is not a terminal here: no bar
    assert capsys.readouterr().err == ""
    export(manifest, media, tmp_path / "shown", progress=True)
    err = capsys.readouterr().err
    assert "export" in err and "5/5" in err
