"""Issue 17: the cases `scripts/hostile_inputs.py` found, one test each. Every output the tool writes into a
user-given folder goes through the one safe writer (never a file it did not write), `curate first-turn` retries
backend errors on resume like `eval`, and the bad inputs of the sweep are one line naming the file/field."""

from __future__ import annotations

import pytest

from proactivebench.cli import main
from proactivebench.eval.runner import EvalConfig, run_eval
from proactivebench.safe_files import MANIFEST_NAME

from test_safe_files import refused, tree


@pytest.fixture(scope="module")
def results(imported_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("results") / "results.duckdb"
    run_eval(EvalConfig(str(imported_dir), "baseline:oracle"), path, progress=False)
    return path


# --- item 2: report --plot, --export-parquet, --html and merge never replace a file of the user's --------------


def test_plot_refuses_a_folder_of_the_users(results, tmp_path, capsys):
    figures = tmp_path / "figures"
    figures.mkdir()
    (figures / "table1.png").write_bytes(b"my own figure")
    before = tree(tmp_path)
    refused(["report", "--results", str(results), "--plot", str(figures)], capsys, str(figures), "table1.png", "--plot")
    assert tree(tmp_path) == before


def test_plot_replaces_its_own_figures_and_removes_none_of_the_users(results, tmp_path, capsys):
    figures = tmp_path / "figures"
    assert main(["report", "--results", str(results), "--plot", str(figures)]) == 0
    assert (figures / "table1.png").is_file() and (figures / MANIFEST_NAME).is_file()
    (figures / "notes.txt").write_text("mine\n")
    first = (figures / "table1.png").stat().st_mtime_ns
    assert main(["report", "--results", str(results), "--plot", str(figures)]) == 0  # its own: replaced
    assert (figures / "table1.png").stat().st_mtime_ns >= first
    assert (figures / "notes.txt").read_text() == "mine\n"


def test_plot_refuses_a_png_it_did_not_write_in_its_own_folder(results, tmp_path, capsys):
    figures = tmp_path / "figures"
    assert main(["report", "--results", str(results), "--plot", str(figures)]) == 0
    (figures / "oeg_table.png").write_bytes(b"mine")  # a name the tool writes, but not a file it wrote
    before = tree(tmp_path)
    refused(["report", "--results", str(results), "--plot", str(figures)], capsys, "oeg_table.png", "not written by")
    assert tree(tmp_path) == before


def test_export_parquet_refuses_a_users_file_before_the_run(imported_dir, tmp_path, capsys):
    export = tmp_path / "export"
    export.mkdir()
    (export / "runs.parquet").write_bytes(b"my own table")
    before = tree(tmp_path)
    refused(["eval", "--dataset", str(imported_dir), "--model", "baseline:oracle", "--results",
             str(tmp_path / "r.duckdb"), "--no-progress", "--export-parquet", str(export)],
            capsys, str(export), "runs.parquet", "--export-parquet")
    assert tree(tmp_path) == before  # refused before the run: no results file either


def test_export_parquet_rewrites_its_own_tables(imported_dir, tmp_path, capsys):
    export = tmp_path / "export"
    argv = ["eval", "--dataset", str(imported_dir), "--model", "baseline:oracle", "--results",
            str(tmp_path / "r.duckdb"), "--no-progress", "--export-parquet", str(export)]
    assert main(argv) == 0 and main(argv) == 0
    assert sorted(p.name for p in export.iterdir()) == [
        MANIFEST_NAME, "episodes.parquet", "judgments.parquet", "runs.parquet", "turns.parquet"]


def test_html_refuses_a_users_page_before_any_work(results, tmp_path, capsys):
    page = tmp_path / "report.html"
    page.write_text("<html>my page</html>")
    figures = tmp_path / "figures"
    before = tree(tmp_path)
    refused(["report", "--results", str(results), "--plot", str(figures), "--html", str(page)], capsys,
            str(page), "not overwriting")
    assert tree(tmp_path) == before and not figures.exists()  # nothing written before the refusal


def test_merge_never_leaves_a_temporary_file(results, tmp_path, capsys):
    out = tmp_path / "merged.duckdb"
    assert main(["merge", str(results), "--out", str(out)]) == 0
    bad = tmp_path / "bad.duckdb"
    bad.write_bytes(b"not a database")
    before = tree(tmp_path)
    refused(["merge", str(bad), "--out", str(out), "--update"], capsys, str(bad))
    assert tree(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["bad.duckdb", "merged.duckdb"]
