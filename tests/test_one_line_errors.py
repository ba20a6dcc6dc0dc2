"""Issue 17 item 6: a missing hf folder, an unreachable server and a truncated results file are one line each."""

from __future__ import annotations

import socket

import pytest

from proactivebench.cli import main
from proactivebench.eval.runner import EvalConfig, run_eval


def _run(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert "Traceback" not in out + err and len(errors) == 1, err
    return code, errors[0]


def _files(root):
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if "hf-datasets-cache" not in p.parts}


def test_a_missing_hf_folder_says_no_such_folder(imported_dir, tmp_path, capsys):
    code, line = _run(capsys, ["eval", "--dataset", str(imported_dir), "--model", "hf:./no-such-model",
                               "--results", str(tmp_path / "r.duckdb"), "--no-progress"])
    assert code == 2 and line == "error: cannot load model './no-such-model': no such model folder"
    assert not (tmp_path / "r.duckdb").exists()


def test_a_connection_error_names_the_base_url(imported_dir, tmp_path, capsys):
    with socket.socket() as probe:  # a free port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    code, line = _run(capsys, ["eval", "--dataset", str(imported_dir), "--model", "openai:m", "--base-url", url,
                               "--max-retries", "0", "--results", str(tmp_path / "r.duckdb"), "--no-progress"])
    assert code == 2 and f"openai:m at {url}" in line and "Connection" in line


@pytest.fixture
def truncated_results(imported_dir, tmp_path):
    whole = tmp_path / "whole.duckdb"
    run_eval(EvalConfig(str(imported_dir), "baseline:oracle"), whole, progress=False)
    data = whole.read_bytes()
    half = tmp_path / "half.duckdb"
    half.write_bytes(data[: len(data) // 2])
    whole.unlink()
    return half


@pytest.mark.parametrize("command", ["report", "eval"])
def test_a_truncated_results_file_is_one_line(command, truncated_results, imported_dir, tmp_path, capsys):
    argv = {
        "report": ["report", "--results", str(truncated_results)],
        "eval": ["eval", "--dataset", str(imported_dir), "--model", "baseline:oracle", "--results",
                 str(truncated_results), "--no-progress"],
    }[command]
    before = _files(tmp_path)
    code, line = _run(capsys, argv)
    assert code == 2 and str(truncated_results) in line and "damaged or truncated results file" in line
    assert _files(tmp_path) == before  # the damaged file is left as it was for the user to inspect
