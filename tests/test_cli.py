"""The console scripts as a user meets them: real subprocesses, exit codes, one-line errors."""

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from macs_bench.datasets.metadata import datasets_root

BIN = Path(sys.executable).parent


def run(*args, env=None):
    import os

    full_env = {**os.environ, **(env or {})}
    return subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True, env=full_env, timeout=120)


def test_build_llp_multi_twice_is_byte_identical(tmp_path):
    first = run("macs-bench", "datasets", "build", "llp-multi", "--out", str(tmp_path / "x"))
    assert first.returncode == 0, first.stderr
    assert "7,201 samples" in first.stdout and "5 folds" in first.stdout
    before = {p.name: p.read_bytes() for p in (tmp_path / "x").iterdir()}
    again = run("macs-bench", "datasets", "build", "llp-multi", "--out", str(tmp_path / "x"))
    assert again.returncode == 0
    assert {p.name: p.read_bytes() for p in (tmp_path / "x").iterdir()} == before
    stats = json.loads(before["stats.json"])
    assert stats["n_samples"] == 7201 and len(stats["folds"]) == 5


def test_build_audioset_eval_reports_counts(tmp_path):
    out = run("macs-bench", "datasets", "build", "audioset-eval", "--out", str(tmp_path / "y"))
    assert out.returncode == 0, out.stderr
    assert "20,371 samples, 527 classes" in out.stdout


def test_tampered_metadata_exits_with_one_line(tmp_path):
    root = tmp_path / "metadata"
    shutil.copytree(datasets_root() / "metadata", root)
    target = root / "audioset" / "ontology.json"
    target.write_text(target.read_text().replace("Human sounds", "Human noises", 1))
    # re-summing the copy does not help: the pins are the package's own
    sums = root / "SHA256SUMS"
    new_sum = hashlib.sha256(target.read_bytes()).hexdigest()
    sums.write_text(re.sub(r"^\w+(?=  audioset/ontology.json)", new_sum, sums.read_text(), flags=re.M))
    out = run("macs-bench", "datasets", "build", "llp-multi", "--out", str(tmp_path / "z"), "--metadata-dir", str(root))
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and str(target) in lines[0] and "sha256" in lines[0], out.stderr
    assert not (tmp_path / "z").exists()


def test_available_option(tmp_path):
    ids = tmp_path / "available.txt"
    ids.write_text("CI0jX5TMs0Q_457_467\nMZjZEVgQmno\n")
    out = run("macs-bench", "datasets", "build", "landscape", "--out", str(tmp_path / "l"), "--available", str(ids))
    assert out.returncode == 0, out.stderr
    assert "landscape: 3 samples" in out.stdout and "997 dropped" in out.stdout  # MZjZEVgQmno has two clips
    assert len((tmp_path / "l" / "dropped.txt").read_text().split()) == 997
    assert f"wrote {tmp_path / 'l' / 'manifest.csv'}" in out.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["datasets", "build", "llp", "--out", "o"], "'llp' is not one of 'llp-multi', 'audioset-eval'"),
        (["datasets", "build", "landscape", "--out", "o", "--available", "missing.txt"], "missing.txt: cannot read"),
        (["datasets", "build", "landscape", "--out", "o", "--available", "."], ".: cannot read id list"),
        (["datasets", "build", "landscape", "--out", "o", "--available", "latin1.txt"], "latin1.txt: id list is not UTF-8"),
        (["datasets", "build", "landscape", "--out", "afile/sub"], "afile/sub: cannot write the manifest"),
        (["datasets", "build", "llp-multi", "--out", "o", "--n-folds", "abc"], "Invalid value for '--n-folds'"),
        (["datasets", "build", "llp-multi", "--out", "o", "--n-folds", "9000"], "cannot make 9000 folds of 7201 videos"),
        (["datasets", "build", "llp-multi"], "Missing option '--out'"),
        (["datasets", "nope"], "No such command 'nope'"),
    ],
)
def test_bad_input_is_one_line(tmp_path, args, message):
    (tmp_path / "afile").write_text("")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    out = subprocess.run([str(BIN / "macs-bench"), *args], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and message in out.stderr, out.stderr


@pytest.mark.parametrize("name", ["landscape", "fsd50k"])
def test_info_prints_whole_card_and_counts(name):
    from macs_bench.datasets import DATASETS
    from macs_bench.datasets.metadata import MetadataStore

    out = run("macs-bench", "datasets", "info", name)
    assert out.returncode == 0, out.stderr
    assert "## Licence" in out.stdout and "n_samples" in out.stdout
    pinned = MetadataStore().pinned
    for file in DATASETS[name].files:  # whole checksums, nothing cropped at the terminal width
        assert f"| {file} | {pinned[file]} |" in out.stdout


def test_list_and_version():
    listed = run("macs-bench", "datasets", "list")
    assert all(name in listed.stdout for name in ("llp-multi", "audioset-eval", "landscape", "fsd50k"))
    assert run("macs-bench", "--version").stdout.startswith("macs-bench ")
    assert run("macs-model", "--version").stdout.startswith("macs-model ")


def test_available_unknown_ids_are_printed(tmp_path):
    ids = tmp_path / "available.txt"
    ids.write_text("CI0jX5TMs0Q_457_467\nzzzzzzzzzzz_0_10\nyyyyyyyyyyy_0_10\n")
    out = run("macs-bench", "datasets", "build", "landscape", "--out", str(tmp_path / "l"), "--available", str(ids))
    assert out.returncode == 0, out.stderr
    assert "2 ids unknown to landscape: yyyyyyyyyyy_0_10, zzzzzzzzzzz_0_10" in out.stdout


DATASETS_COMMANDS = ["list", "build", "info", "fetch", "export", "merge-media"]


@pytest.mark.parametrize("command", DATASETS_COMMANDS)
def test_datasets_help_is_whole_at_80_columns(command):
    """Every option name of every datasets command is printed whole (no '…') in an 80-column terminal."""
    from typer.main import get_command
    from typer.testing import CliRunner

    from macs_bench.cli import app

    result = CliRunner().invoke(app, ["datasets", command, "--help"], env={"COLUMNS": "80", "TERMINAL_WIDTH": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" not in result.output
    click_command = get_command(app).commands["datasets"].commands[command]
    for param in click_command.params:
        for name in [*param.opts, *param.secondary_opts]:
            if name.startswith("-"):
                assert name in result.output.replace(",", " ").split(), name
    assert not [p for p in click_command.params if p.secondary_opts], "use plain flags, not --x/--no-x pairs"


def test_dataset_choices_are_the_registry():
    from macs_bench.cli import DatasetName
    from macs_bench.datasets import DATASETS

    assert [d.value for d in DatasetName] == list(DATASETS)


def _leaf_commands(group, path=()):
    for name, command in group.commands.items():
        if getattr(command, "commands", None):
            yield from _leaf_commands(command, (*path, name))
        else:
            yield (*path, name)


def _macs_bench_commands():
    from typer.main import get_command

    from macs_bench.cli import app

    return sorted(_leaf_commands(get_command(app)))


def _macs_model_commands():
    from typer.main import get_command

    from macs_model.cli import app

    return sorted(_leaf_commands(get_command(app)))


def _assert_help_is_whole(app, path):
    """Help within 80 columns, every option name whole, plain flags."""
    from typer.main import get_command
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80", "TERMINAL_WIDTH": "80"})
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80
    assert "…" not in result.output
    command = get_command(app)
    for name in path:
        command = command.commands[name]
    words = result.output.replace("│", " ").replace(",", " ").split()
    for param in command.params:
        for name in [*param.opts, *param.secondary_opts]:
            if name.startswith("-"):
                assert name in words, name
    assert not [p for p in command.params if p.secondary_opts], "use plain flags, not --x/--no-x pairs"
    _assert_help_reads_at_80(result.output, command)


HELP_START = 38  # the help text of an option starts by this column, so it gets at least 40 of the 80
TYPER_LABEL = re.compile(r"<(bool|int|float|str|path|text|int range|float range|list\[[a-z]+\])>")


def _assert_help_reads_at_80(output, command):
    """Flags show no type, types are short click-style labels, the help text is not squeezed into a narrow
    column."""
    assert not TYPER_LABEL.search(output), TYPER_LABEL.search(output).group(0)
    lines = output.splitlines()
    for param in command.params:
        if param.param_type_name != "option" or not param.opts:
            continue
        name = max(param.opts, key=len)
        row = next(line for line in lines if re.search(rf"(^|[\s,]){re.escape(name)}(\s|,|$)", line))
        shown = re.match(r"│ [* ] +((?:-{1,2}[\w-]+(?:, )?)+)( \S+)?\s{2,}(\S)", row)
        assert shown, (name, row)
        label = (shown.group(2) or "").strip()
        if getattr(param, "is_flag", False):
            assert not label, (name, row)
        else:
            assert label.rstrip(".").isupper() or "|" in label, (name, row)  # INT, PATH, a|b, ... shown
        help_at = shown
        assert help_at.start(3) <= HELP_START, (name, row)


def test_help_layout_checks_catch_typers_default_layout():
    """The checks above fail on typer's own panel (the `<bool>` labels and the 22-column help)."""
    import typer.rich_utils as rich_utils
    from typer.main import get_command
    from typer.testing import CliRunner

    import macs_bench.clikit as clikit
    from macs_bench.cli import app

    ours = rich_utils._print_options_panel
    rich_utils._print_options_panel = clikit.TYPER_OPTIONS_PANEL
    try:
        result = CliRunner().invoke(app, ["datasets", "fetch", "--help"],
                                    env={"COLUMNS": "80", "TERMINAL_WIDTH": "80"})
    finally:
        rich_utils._print_options_panel = ours
    with pytest.raises(AssertionError):
        _assert_help_reads_at_80(result.output, get_command(app).commands["datasets"].commands["fetch"])


def test_datasets_fetch_help_is_short():
    from typer.testing import CliRunner

    from macs_bench.cli import app

    result = CliRunner().invoke(app, ["datasets", "fetch", "--help"], env={"COLUMNS": "80", "TERMINAL_WIDTH": "80"})
    assert len(result.output.splitlines()) <= 70  # 102 with typer's own layout


def test_leaderboard_paper_prints_the_table_without_out(tmp_path):
    from typer.testing import CliRunner

    from macs_bench.boards import paper_leaderboard, to_markdown
    from macs_bench.cli import app

    result = CliRunner().invoke(app, ["leaderboard", "paper", "--table", "3"])
    assert result.exit_code == 0, result.output
    assert result.output == to_markdown(paper_leaderboard(3))
    assert "| Method |" in result.output


@pytest.mark.parametrize("path", _macs_bench_commands(), ids=" ".join)
def test_every_macs_bench_help_is_whole_at_80_columns(path):
    """Every macs-bench command: help within 80 columns, every option name whole, plain flags."""
    from macs_bench.cli import app

    _assert_help_is_whole(app, path)


@pytest.mark.parametrize("path", _macs_model_commands(), ids=" ".join)
def test_every_macs_model_help_is_whole_at_80_columns(path):
    """Every macs-model command, the same way."""
    from macs_model.cli import app

    _assert_help_is_whole(app, path)


def test_macs_model_speaks_the_same_vocabulary():
    """--manifest / --media / --device auto / --restart / --folds as one spelling each; choices are enums."""
    from typer.main import get_command

    from macs_model.cli import app

    root = get_command(app)
    params = {}
    for path in _macs_model_commands():
        command = root
        for name in path:
            command = command.commands[name]
        params[" ".join(path)] = {o: p for p in command.params for o in p.opts}
    for banned in ("--data", "--root", "--force", "--cpu", "--fold-count"):
        assert not [c for c, opts in params.items() if banned in opts], banned
    for command in ("train separator", "train generator", "separate", "generate", "reproduce"):
        assert params[command]["--device"].default == "auto", command
    for command in ("train separator", "train generator"):
        assert {"--manifest", "--media", "--restart"} <= set(params[command]), command
    assert "--folds" in params["reproduce"] and "--fold" not in params["reproduce"]
    for command, option, choices in (("train separator", "--kind", ["stft-unet", "waveform"]),
                                     ("train generator", "--preset", ["paper", "tiny", "world"]),
                                     ("generate", "--token-order", ["slot", "similarity"]),
                                     ("reproduce", "--dataset", ["llp-multi", "audioset-eval", "landscape"])):
        enum = params[command][option].type_descriptor.annotation
        assert [member.value for member in enum] == choices, (command, option)


@pytest.mark.parametrize("command", [["separate", "x.wav", "--checkpoint", "run"],
                                     ["generate", "--adapter", "run"],
                                     ["reproduce", "--release-dir", "r", "--dataset", "llp-multi", "--manifest", "m",
                                      "--media", "m"]], ids=lambda c: c[0])
def test_macs_model_refuses_a_missing_device_in_one_line(tmp_path, command):
    """A device this machine lacks is one line and exit 2 before any work, never a traceback."""
    result = run("macs-model", *command, "--out", str(tmp_path / "out"), "--device", "cuda:99")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("error: device cuda:99"), lines
    assert not (tmp_path / "out").exists()


def test_score_leaderboard_and_weights_share_one_vocabulary():
    """--media / --manifest / --device / --overwrite / --folds are spelled alike wherever they appear."""
    from typer.main import get_command

    from macs_bench.cli import app

    root = get_command(app)
    options = {}
    for path in _macs_bench_commands():
        command = root
        for name in path:
            command = command.commands[name]
        options[" ".join(path)] = {o for p in command.params for o in p.opts}
    for banned in ("--root", "--data", "--force", "--restart", "--cpu", "--radar"):
        assert not [c for c, opts in options.items() if banned in opts], banned
    assert {"--device", "--overwrite"} <= options["score"] and {"--device", "--overwrite"} <= options["score-folders"]
    assert "--overwrite" in options["leaderboard build"] and "--no-radar" in options["leaderboard build"]
    assert "--all" in options["weights fetch"] and "--overwrite" in options["weights fetch"]
    from typer.testing import CliRunner

    for path, choices in ((["score"], "paper|random|tiny"), (["leaderboard", "build"], "auto|always|never"),
                          (["leaderboard", "paper"], "1|2|3|4")):
        shown = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80", "TERMINAL_WIDTH": "80"}).output
        # choices are enums, listed in the help: beside the option, or as "one of: a, b" when too long for it
        assert choices in shown or choices.replace("|", ", ") in " ".join(shown.replace("│", " ").split()), path
