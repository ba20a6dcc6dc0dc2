"""Issue 17: the cases `scripts/hostile_inputs.py` found, one test each. Every output the tool writes into a
user-given folder goes through the one safe writer (never a file it did not write), `curate first-turn` retries
backend errors on resume like `eval`, and the bad inputs of the sweep are one line naming the file/field."""

from __future__ import annotations

import json
import shutil

import pytest

from proactivebench.cli import main
from proactivebench.eval.runner import EvalConfig, run_eval
from proactivebench.safe_files import MANIFEST_NAME

from test_safe_files import refused
from test_safe_files import tree as _tree


def tree(root):
    """{path: sha1} under root, the per-test datasets cache aside (conftest.py)."""
    return _tree(root, skip=root / "hf-datasets-cache")


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


# --- the sweep's findings (scripts/hostile_inputs.py), one test each ----------------------------------------------


def one_error(argv: list[str], capsys, code: int = 2, *needles: str) -> str:
    """Exit `code`, exactly one `error:` line holding `needles`, no traceback."""
    got = main(argv)
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert got == code and len(lines) == 1 and "Traceback" not in out + err, (got, err)
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    from proactivebench.samples.native import write_sample_data

    return write_sample_data(tmp_path_factory.mktemp("raw") / "raw", ["rod", "coco"], per_source=2, progress=False)


def test_a_folder_where_a_file_should_be_is_one_line(imported_dir, tmp_path, capsys):
    (tmp_path / "preds").write_text("a file of mine\n")  # was a NotADirectoryError traceback
    before = tree(tmp_path)
    one_error(["curate", "first-turn", "--dataset", str(imported_dir), "--model", "baseline:oracle", "--out",
               str(tmp_path / "preds")], capsys, 2, "preds", "not a folder")
    assert tree(tmp_path) == before


def test_browse_cache_dir_that_is_a_file_is_one_line(imported_dir, tmp_path, capsys):
    (tmp_path / "cache").write_text("mine\n")
    before = tree(tmp_path)
    one_error(["browse", "--dataset", str(imported_dir), "--cache-dir", str(tmp_path / "cache")], capsys, 2, "cache")
    assert tree(tmp_path) == before


def test_browse_names_a_damaged_shard(imported_dir, tmp_path, capsys):
    bench = tmp_path / "bench"
    shutil.copytree(imported_dir, bench)
    shard = next((bench / "data" / "coco").glob("test-*.parquet"))
    shard.write_bytes(b"not parquet" * 10)
    one_error(["browse", "--dataset", str(bench), "--cache-dir", str(tmp_path / "cache")], capsys, 2, shard.name)


def test_coco_annotations_without_their_annotations_are_refused(raw, tmp_path, capsys):
    copy = tmp_path / "coco"
    shutil.copytree(raw["coco"], copy)
    path = copy / "annotations" / "instances_val2014.json"
    data = json.loads(path.read_text())
    del data["annotations"]  # used to build 0 episodes, exit 0
    path.write_text(json.dumps(data))
    one_error(["build", "coco", "--raw-dir", str(copy), "--out", str(tmp_path / "out")], capsys, 2,
              "instances_val2014.json", "'annotations'")
    assert not (tmp_path / "out").exists()


def test_a_rod_archive_that_is_a_symlink_loop_is_one_line(raw, tmp_path, capsys):
    copy = tmp_path / "rod"
    shutil.copytree(raw["rod"], copy)
    (copy / "rod_0.tar.gz").unlink()
    (copy / "rod_0.tar.gz").symlink_to("rod_0.tar.gz")
    one_error(["build", "rod", "--raw-dir", str(copy), "--out", str(tmp_path / "out")], capsys, 2, "rod_0.tar.gz")


@pytest.mark.parametrize("damage", ["not-utf8", "a-folder"])
def test_a_release_jsonl_that_is_not_text_is_one_line_naming_it(damage, release_dir, tmp_path, capsys):
    release = tmp_path / "test"
    shutil.copytree(release_dir, release)
    path = release / "QuickDraw_preprocessed.jsonl"
    if damage == "a-folder":
        path.unlink()
        path.mkdir()
    else:
        path.write_bytes(b"\xff\xfe bad\n" + path.read_bytes())
    one_error(["import-official", "--data-dir", str(release), "--out", str(tmp_path / "out")], capsys, 2,
              "QuickDraw_preprocessed.jsonl")
    assert not (tmp_path / "out").exists()


def test_first_turn_refuses_a_negative_limit_and_out_equal_to_the_dataset(imported_dir, tmp_path, capsys):
    bench = tmp_path / "bench"
    shutil.copytree(imported_dir, bench)
    before = tree(tmp_path)
    one_error(["curate", "first-turn", "--dataset", str(bench), "--model", "baseline:oracle", "--out",
               str(tmp_path / "p"), "--limit", "-1"], capsys, 2, "--limit")  # was: 0 predicted, exit 0
    one_error(["curate", "first-turn", "--dataset", str(bench), "--model", "baseline:oracle", "--out", str(bench)],
              capsys, 2, "--dataset")  # was: predictions written into the dataset folder
    assert tree(tmp_path) == before


def test_first_turn_names_a_file_of_the_users_under_its_name(imported_dir, tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = tmp_path / "preds"
    out.mkdir()
    pq.write_table(pa.table({"x": [1]}), out / "baseline--oracle.parquet")  # was: "No match for FieldRef.Name(model)"
    before = tree(tmp_path)
    one_error(["curate", "first-turn", "--dataset", str(imported_dir), "--model", "baseline:oracle", "--out",
               str(out)], capsys, 2, "baseline--oracle.parquet", "not a prediction file")
    assert tree(tmp_path) == before


@pytest.fixture(scope="module")
def failing_server():
    """An OpenAI-compatible address whose every answer is a 500."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b'{"error": {"message": "internal error"}}'
            self.send_response(500)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_eval_whose_server_fails_exits_non_zero_naming_it(imported_dir, tmp_path, failing_server, capsys):
    results = tmp_path / "r.duckdb"
    line = one_error(["eval", "--dataset", str(imported_dir), "--model", "openai:m", "--base-url", failing_server,
                      "--max-retries", "0", "--sources", "quickdraw", "coco", "--results", str(results),
                      "--no-progress"], capsys, 1, "4 of 4 episodes", failing_server, "rerun")
    assert "backend error" in line and results.is_file()  # kept: a rerun retries them


def test_first_turn_whose_server_fails_exits_non_zero_naming_it(imported_dir, tmp_path, failing_server, capsys):
    one_error(["curate", "first-turn", "--dataset", str(imported_dir), "--model", "openai:m", "--base-url",
               failing_server, "--max-retries", "0", "--out", str(tmp_path / "p")], capsys, 1, "11 of 11",
              failing_server)


def test_eval_never_adds_tables_to_another_programs_duckdb_file(imported_dir, tmp_path, capsys):
    import duckdb

    path = tmp_path / "r.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE runs (x INTEGER)")
    con.close()
    before = tree(tmp_path)
    one_error(["eval", "--dataset", str(imported_dir), "--model", "baseline:oracle", "--results", str(path),
               "--no-progress"], capsys, 2, "r.duckdb", "not a proactivebench results file")
    assert tree(tmp_path) == before  # was: turns/episodes/judgments created in it, then a traceback


@pytest.mark.parametrize("run_id", ["", "../../escape", "my run"])
def test_eval_refuses_a_run_id_that_is_not_a_safe_name(run_id, imported_dir, tmp_path, capsys):
    one_error(["eval", "--dataset", str(imported_dir), "--model", "baseline:oracle", "--results",
               str(tmp_path / "r.duckdb"), "--no-progress", "--run-id", run_id], capsys, 2, "--run-id")
    assert not (tmp_path / "r.duckdb").exists()


def test_merge_names_a_truncated_input(results, tmp_path, capsys):
    data = results.read_bytes()
    half = tmp_path / "a.duckdb"
    half.write_bytes(data[: len(data) * 3 // 4])
    before = tree(tmp_path)
    one_error(["merge", str(half), "--out", str(tmp_path / "m.duckdb")], capsys, 2, "a.duckdb")
    assert tree(tmp_path) == before


def test_publish_refuses_num_proc_zero_and_a_broken_template(imported_dir, tmp_path, capsys):
    bench = tmp_path / "bench"
    shutil.copytree(imported_dir, bench)
    before = tree(tmp_path)
    one_error(["publish", "--dataset", str(bench), "--num-proc", "0"], capsys, 2, "--num-proc")
    (tmp_path / "card.md").write_text("---\nlicense: [\n---\n# {{ pretty_name }}\n")
    one_error(["publish", "--dataset", str(bench), "--template", str(tmp_path / "card.md")], capsys, 2, "card.md",
              "YAML header")
    (tmp_path / "card.md").write_text("# {{ pretty_name }}\n\nsee {{ broken\n")
    one_error(["publish", "--dataset", str(bench), "--template", str(tmp_path / "card.md")], capsys, 2, "card.md:3")
    (tmp_path / "card.md").unlink()
    assert tree(tmp_path) == before


@pytest.mark.parametrize("flags, needle", [
    (["--epochs", "0"], "--epochs"),  # was: nothing trained, exit 0
    (["--max-steps", "-5"], "--max-steps"),  # was: a whole epoch
    (["--learning-rate", "-1"], "--learning-rate"),
    (["--temperature", "-1"], "--temperature"),  # was: refused by generate() after loading the model
    (["--lora-dropout", "1.5"], "--lora-dropout"),
    (["--deepspeed", "nowhere.json"], "nowhere.json"),  # was: a PackageNotFoundError traceback
])
def test_train_grpo_refuses_bad_values_before_loading_anything(flags, needle, imported_dir, tmp_path, capsys):
    one_error(["train-grpo", "--dataset", str(imported_dir), "--model", "hf:x", "--output-dir", str(tmp_path / "o"),
               *flags], capsys, 2, needle)
    assert not (tmp_path / "o").exists()


def test_train_grpo_refuses_an_output_dir_of_the_users(imported_dir, tmp_path, capsys):
    out = tmp_path / "adapter"
    out.mkdir()
    (out / "adapter_config.json").write_text('{"mine": true}')
    before = tree(tmp_path)
    one_error(["train-grpo", "--dataset", str(imported_dir), "--model", "hf:x", "--output-dir", str(out)], capsys, 2,
              "adapter_config.json", "--output-dir")
    assert tree(tmp_path) == before


def test_hf_bad_device_and_truncated_weights_are_one_line(imported_dir, tiny_llava_dir, tmp_path, capsys):
    base = ["eval", "--dataset", str(imported_dir), "--results", str(tmp_path / "r.duckdb"), "--no-progress",
            "--sources", "quickdraw"]
    one_error(base + ["--model", f"hf:{tiny_llava_dir}", "--device", "tpu:7"], capsys, 2, "tpu:7")
    model = tmp_path / "tiny"
    shutil.copytree(tiny_llava_dir, model)
    for weights in model.glob("*.safetensors"):
        weights.write_bytes(weights.read_bytes()[:1000])
    one_error(base + ["--model", f"hf:{model}"], capsys, 2, str(model), "weights")
