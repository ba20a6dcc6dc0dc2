"""`report` on a results file written by the real eval runner (baseline models on the imported sample release)."""

from __future__ import annotations

import json

import duckdb
import pytest

from proactivebench.cli import main
from proactivebench.eval import analytics


@pytest.fixture(scope="module")
def runner_results(imported_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("runner") / "results.duckdb"
    for argv in (
        ["--model", "baseline:oracle"],
        ["--model", "baseline:always-proactive"],
        ["--model", "baseline:oracle", "--mode", "reference"],
        ["--model", "baseline:always-abstain", "--hint"],
    ):
        assert main(["eval", "--dataset", str(imported_dir), "--results", str(path), *argv]) == 0
    return path


def test_report_on_a_runner_file(runner_results, capsys):
    capsys.readouterr()
    assert main(["report", "--results", str(runner_results), "--format", "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    table1 = {row["model"]: row for row in payload["table1"]}
    # two (here three) models side by side, each over the seven sources of the sample release
    assert set(table1) == {"oracle", "always-proactive", "always-abstain"}
    assert all(row["sources"] == 7 for row in table1.values())
    assert table1["oracle"]["avg_acc"] == pytest.approx(100.0)
    assert table1["always-proactive"]["avg_acc"] == 0.0 and table1["always-proactive"]["avg_psr"] > 0
    assert table1["always-abstain"]["hint"] is True and table1["always-abstain"]["avg_psr"] == 0.0

    with duckdb.connect(str(runner_results), read_only=True) as con:
        counts = dict(con.execute("SELECT r.model, count(*) FROM episodes e JOIN runs r USING (run_id) "
                                  "WHERE r.mode = 'mcqa' GROUP BY r.model").fetchall())
    assert {m: row["episodes"] for m, row in table1.items()} == counts

    actions = {row["model"]: row for row in payload["action_distribution"] if row["source"] == "all"}
    assert actions["always-abstain"]["abstain"] == pytest.approx(100.0)
    assert actions["oracle"]["correct_category"] > 50
    assert actions["always-proactive"]["proactive"] > 50

    gap = [row for row in payload["reference_gap"] if row["model"] == "oracle"]
    assert len(gap) == 7 and all(row["reference_acc"] == 100.0 and row["gap"] == 0.0 for row in gap)


def test_create_views_on_a_runner_file(runner_results, tmp_path):
    copy = tmp_path / "results.duckdb"
    copy.write_bytes(runner_results.read_bytes())
    with duckdb.connect(str(copy)) as con:
        analytics.create_views(con)
    with duckdb.connect(str(copy), read_only=True) as con:  # plain DuckDB, no proactivebench code
        assert con.execute("SELECT count(*) FROM table1").fetchone() == (3,)


@pytest.mark.parametrize("threshold", ["0.25", "0.5"])
def test_filter_views_agree_with_curate_filter(runner_results, imported_dir, tmp_path_factory, threshold, capsys):
    """The report's filter_stats counts what `curate filter` keeps, from the same `curate first-turn` files."""
    predictions = tmp_path_factory.getbasetemp() / "first-turn"
    if not predictions.exists():
        for model in ("baseline:oracle", "baseline:random", "baseline:always-proactive", "baseline:always-abstain"):
            argv = ["curate", "first-turn", "--dataset", str(imported_dir), "--model", model, "--out", str(predictions)]
            assert main(argv) == 0
    filtered = tmp_path_factory.mktemp("filtered") / "bench"
    assert main(["curate", "filter", "--dataset", str(imported_dir), "--predictions", str(predictions),
                 "--threshold", threshold, "--out", str(filtered)]) == 0
    counts = json.loads((filtered / "filter_report.json").read_text())["counts"]
    capsys.readouterr()
    assert main(["report", "--results", str(runner_results), "--predictions", str(predictions),
                 "--threshold", threshold, "--format", "json", "--view", "filter_stats"]) == 0
    stats = {row["source"]: row for row in json.loads(capsys.readouterr().out)["filter_stats"]}
    assert {s: (r["samples"], r["kept"]) for s, r in stats.items() if s != "all"} == \
        {s: (c["before"], c["after"]) for s, c in counts.items()}
    assert stats["all"]["models"] == 4 and stats["all"]["threshold"] == float(threshold)
    assert 0 < stats["all"]["kept"] < stats["all"]["samples"]  # the rule bites both ways


class ScriptedJudge:
    """A judge backend that marks the first answer item for samples of even id and the last one otherwise, so
    both proactive suggestions and category predictions occur; the raw text goes through the project's parser."""

    default_batch_size = 4

    def generate(self, requests):
        import ast

        from proactivebench.eval.backends.base import Generation

        out = []
        for request in requests:
            user = request.messages[-1]["content"]
            items = ast.literal_eval(user.split("### Correct Answers (List):\n")[1].split("\n")[0])
            marks = ["0"] * len(items)
            marks[0 if int(request.key.rsplit("-", 1)[1]) % 2 == 0 else -1] = "1"
            out.append(Generation(text="<think>hmm</think>\n" + ", ".join(marks)))
        return out

    def close(self):
        pass


def test_oeg_table_matches_the_judge_summary(imported_dir, tmp_path):
    from proactivebench.eval.judge import run_judge

    path = tmp_path / "results.duckdb"
    argv = ["eval", "--dataset", str(imported_dir), "--results", str(path), "--mode", "oeg"]
    assert main([*argv, "--model", "baseline:always-proactive"]) == 0
    summary = run_judge(path, "scripted-judge", backend=ScriptedJudge(), progress=False)
    assert summary.judged == 10
    with analytics.open_results(path) as con:
        rows = con.execute("SELECT source, n, cc, ps, agg FROM oeg_source WHERE judge_model = 'scripted-judge'")
        by_source = {r[0]: r[1:] for r in rows.fetchall()}
        table = con.execute("SELECT avg_cc, avg_ps, avg_agg, samples FROM oeg_table").fetchall()
    # the judge's own per-source summary (sources from `episodes`) equals the view's (sources from the sample id)
    assert by_source.keys() == summary.per_source.keys()
    for source, (n, cc, ps, agg) in summary.per_source.items():
        assert by_source[source] == (n, pytest.approx(cc), pytest.approx(ps), pytest.approx(agg))
    [(avg_cc, avg_ps, avg_agg, samples)] = table
    assert samples == 10
    assert avg_cc == pytest.approx(sum(v[1] for v in summary.per_source.values()) / len(summary.per_source))
    assert 0 < avg_ps < 100 and 0 < avg_agg <= 100
