"""The front door: every subcommand is registered, has --help, and bad input exits 2 with one line."""

import pytest

from proactivebench.cli import build_parser, main

COMMANDS = [
    "sample-data", "build", "import-official", "curate", "publish", "eval", "judge", "report", "browse",
    "train-grpo", "demo",
]


def test_every_contract_command_is_registered():
    parser = build_parser()
    registered = set(parser._subparsers._group_actions[0].choices)
    assert set(COMMANDS) <= registered


@pytest.mark.parametrize("command", COMMANDS)
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: proactivebench " + command in capsys.readouterr().out


def test_no_command_prints_help(capsys):
    assert main([]) == 1
    assert "COMMAND" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv,message",
    [
        (["eval", "--dataset", "/nonexistent/bench", "--model", "baseline:oracle"], "/nonexistent/bench"),
        (["eval", "--dataset", "x", "--model", "nonsense"], "model spec 'nonsense'"),
        (["report", "--results", "/nonexistent.duckdb"], "/nonexistent.duckdb"),
        (["build", "rod", "--raw-dir", "/nonexistent", "--out", "/tmp/never"], "/nonexistent"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys, tmp_path):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and message in err[-1]
