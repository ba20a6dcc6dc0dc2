"""Analytics views and `report` on a results file with known rows; every expected number is worked out by hand
in the comments of `write_known_results`."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from proactivebench.cli import main
from proactivebench.eval import analytics
from proactivebench.eval.results import connect

EARLY, LATE = datetime(2026, 1, 1, 10), datetime(2026, 1, 1, 11)

# (run_id, model, mode, hint, ablation, config_json, started_at)
RUNS = [
    ("a1", "model-a", "mcqa", False, None, '{"batch_size": 8}', EARLY),
    ("a1-rerun", "model-a", "mcqa", False, "none", '{"batch_size": 2, "shots": 0}', LATE),  # same setting as a1
    ("a-hist", "model-a", "mcqa", False, None, '{"history": true}', EARLY),  # a variant: its own table1 row
    ("b1", "model-b", "mcqa", False, None, None, EARLY),
    ("a-ref", "model-a", "reference", False, None, None, EARLY),
    ("b-ref", "model-b", "reference", False, None, None, EARLY),
    ("a-oeg", "model-a", "oeg", False, None, None, EARLY),
]

P, A, CC, WC, NONE, ERR = "proactive", "abstain", "correct", "wrong", "none", "error"

# run_id → sample_id → (correct, stop_reason, [turn kinds]); num_turns = len(kinds), psr_i = num_turns - 1.
EPISODES = {
    # model-a, mcqa. rod-2 of a1 is superseded by the later a1-rerun.
    "a1": {
        "rod-1": (True, "correct", [P, P, CC]),
        "rod-2": (False, "wrong_category", [WC]),
        "coco-1": (True, "correct", [P, CC]),
        "coco-2": (False, "abstain", [A]),
        "coco-3": (False, "max_turns", [P, P, P, P]),
    },
    "a1-rerun": {"rod-2": (True, "correct", [P, CC])},
    "a-hist": {"rod-1": (True, "correct", [CC])},
    # model-b, mcqa
    "b1": {
        "rod-1": (False, "wrong_category", [WC]),
        "rod-2": (False, "unparsed", [P, NONE]),
        "coco-1": (True, "correct", [CC]),
        "coco-2": (True, "correct", [CC]),
        "coco-3": (False, "error", [ERR]),
    },
    # reference mode: one turn each
    "a-ref": {"rod-1": (True, "correct", [CC]), "rod-2": (True, "correct", [CC]), "coco-1": (True, "correct", [CC]),
              "coco-2": (False, "wrong_category", [WC]), "coco-3": (True, "correct", [CC])},
    "b-ref": {"rod-1": (True, "correct", [CC]), "rod-2": (False, "wrong_category", [WC]),
              "coco-1": (True, "correct", [CC]), "coco-2": (True, "correct", [CC]), "coco-3": (True, "correct", [CC])},
}

# (run_id, sample_id, judge_model, proactive_suggestion, category_prediction, aggregate)
JUDGMENTS = [
    ("a-oeg", "rod-1", "judge-x", 1, 0, 1),
    ("a-oeg", "rod-2", "judge-x", 0, 0, 0),
    ("a-oeg", "imagenet_c-5", "judge-x", 0, 1, 1),
    ("a-oeg", "imagenet_c-6", "judge-x", 1, 1, 1),
    ("a-oeg", "rod-1", "judge-y", 0, 0, 0),
]

# Expected, by hand:
# model-a mcqa (a1 + a1-rerun, rod-2 from the rerun):
#   rod:  rod-1 correct ps 2, rod-2 correct ps 1          → acc 100,   psr 1.5
#   coco: correct ps 1, wrong ps 0, wrong ps 3            → acc 33.33, psr 4/3
#   avg:  acc (100 + 33.33)/2 = 66.67, psr (1.5 + 4/3)/2 = 17/12; 5 episodes
# model-a mcqa history=true: rod acc 100, psr 0
# model-b mcqa: rod acc 0 psr (0+1)/2 = 0.5; coco acc 66.67 psr 0; avg acc 33.33 psr 0.25
TABLE1 = {
    "model-a mcqa": dict(rod_acc=100.0, rod_psr=1.5, coco_acc=100 / 3, coco_psr=4 / 3, avg_acc=200 / 3,
                         avg_psr=17 / 12, sources=2, episodes=5),
    "model-a mcqa history=true": dict(rod_acc=100.0, rod_psr=0.0, coco_acc=None, avg_acc=100.0, avg_psr=0.0,
                                      sources=1, episodes=1),
    "model-b mcqa": dict(rod_acc=0.0, rod_psr=0.5, coco_acc=200 / 3, coco_psr=0.0, avg_acc=100 / 3, avg_psr=0.25,
                         sources=2, episodes=5),
}
# reference vs mcqa: a rod 100 vs 100, a coco 200/3 vs 100/3, b rod 50 vs 0, b coco 100 vs 200/3
REFERENCE_GAP = {
    ("model-a", "rod"): (100.0, 100.0, 0.0),
    ("model-a", "coco"): (200 / 3, 100 / 3, 100 / 3),
    ("model-b", "rod"): (50.0, 0.0, 50.0),
    ("model-b", "coco"): (100.0, 200 / 3, 100 / 3),
}
# Turns of the kept episodes, per run and source:
# model-a rod  [P,P,CC] + [P,CC]            → 5 turns: P 3, CC 2
# model-a coco [P,CC] + [A] + [P,P,P,P]     → 7 turns: P 5, CC 1, A 1
# model-a all                               → 12 turns: P 8, CC 3, A 1
# model-b rod  [WC] + [P,NONE]              → 3 turns: WC 1, P 1, unparsed 1
# model-b coco [CC] + [CC] + [ERR]          → 3 turns: CC 2, error 1
# model-b all                               → 6 turns
ACTION_DISTRIBUTION = {
    ("model-a mcqa", "rod"): dict(turns=5, proactive=60.0, correct_category=40.0),
    ("model-a mcqa", "coco"): dict(turns=7, proactive=500 / 7, correct_category=100 / 7, abstain=100 / 7),
    ("model-a mcqa", "all"): dict(turns=12, proactive=800 / 12, correct_category=25.0, abstain=100 / 12),
    ("model-a mcqa history=true", "all"): dict(turns=1, correct_category=100.0),
    ("model-b mcqa", "rod"): dict(turns=3, proactive=100 / 3, wrong_category=100 / 3, unparsed=100 / 3),
    ("model-b mcqa", "coco"): dict(turns=3, correct_category=200 / 3, error=100 / 3),
    ("model-b mcqa", "all"): dict(turns=6, proactive=100 / 6, wrong_category=100 / 6, unparsed=100 / 6,
                                  correct_category=100 / 3, error=100 / 6),
}
# OEG judge-x: rod ps (1+0)/2, cc 0, agg 1/2; imagenet_c ps 1/2, cc 1, agg 1 → avg cc 50, ps 50, agg 75
OEG = {
    "judge-x": dict(rod_cc=0.0, rod_ps=50.0, rod_agg=50.0, imagenet_c_cc=100.0, imagenet_c_ps=50.0,
                    imagenet_c_agg=100.0, avg_cc=50.0, avg_ps=50.0, avg_agg=75.0, sources=2, samples=4),
    "judge-y": dict(rod_cc=0.0, rod_ps=0.0, rod_agg=0.0, imagenet_c_cc=None, avg_agg=0.0, sources=1, samples=1),
}

# First-turn predictions of four roster models; solve rates: rod-1 1/4, rod-2 2/4, coco-1 0/4, coco-2 4/4.
PREDICTIONS = {
    "rod-1": (True, False, False, False),
    "rod-2": (True, True, False, False),
    "coco-1": (False, False, False, False),
    "coco-2": (True, True, True, True),
}
ROSTER = ("m1", "m2", "m3", "m4")


def _turn_row(run_id, sample_id, index, kind):
    chosen, option_verdict, category_verdict, error = {
        P: ("proactive", "correct", "mismatch", ""),
        A: ("abstain", "wrong", "mismatch", ""),
        CC: ("category", "mismatch", "correct", ""),
        WC: ("category", "mismatch", "wrong", ""),
        NONE: ("none", "mismatch", "mismatch", ""),
        ERR: ("none", "mismatch", "mismatch", "TimeoutError: server did not answer"),
    }[kind]
    source = sample_id.rsplit("-", 1)[0]
    return (run_id, sample_id, source, index, index, index, "prompt", "output", option_verdict, category_verdict,
            chosen, "", error, 0.5)


def write_known_results(path):
    con = connect(path)
    for run_id, model, mode, hint, ablation, config, started in RUNS:
        con.execute("INSERT INTO runs VALUES (?, ?, 'baseline', ?, ?, ?, 'bench', 'r1', ?, ?, ?)",
                    [run_id, model, mode, hint, ablation, config, started, started])
    for run_id, samples in EPISODES.items():
        for sample_id, (correct, stop, kinds) in samples.items():
            source = sample_id.rsplit("-", 1)[0]
            con.execute("INSERT INTO episodes VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [run_id, sample_id, source, correct, len(kinds), len(kinds) - 1, stop])
            con.executemany("INSERT INTO turns VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            [_turn_row(run_id, sample_id, i, k) for i, k in enumerate(kinds)])
    con.executemany("INSERT INTO judgments VALUES (?, ?, ?, 'raw', ?, ?, ?)", JUDGMENTS)
    con.close()
    return path


def write_predictions(directory):
    directory.mkdir(parents=True, exist_ok=True)
    for part, models in (("part-0", ROSTER[:2]), ("part-1", ROSTER[2:])):
        rows = [
            {"model": model, "sample_id": sid, "source": sid.rsplit("-", 1)[0], "output": "A.",
             "verdict": "correct" if solved[ROSTER.index(model)] else "wrong",
             "correct": solved[ROSTER.index(model)]}
            for sid, solved in PREDICTIONS.items() for model in models
        ]
        pq.write_table(pa.Table.from_pylist(rows), directory / f"{part}.parquet")
    return directory


@pytest.fixture
def results_file(tmp_path):
    return write_known_results(tmp_path / "results.duckdb")


def _rows(con, sql):
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def _check(row: dict, expected: dict, where: str):
    for column, value in expected.items():
        if value is None:
            assert row[column] is None, f"{where}.{column}"
        else:
            assert row[column] == pytest.approx(value), f"{where}.{column}: {row[column]} != {value}"


def test_table1_puts_two_models_and_a_variant_side_by_side(results_file):
    with analytics.open_results(results_file) as con:
        rows = {r["run"]: r for r in _rows(con, "SELECT * FROM table1")}
    assert set(rows) == set(TABLE1)
    for run, expected in TABLE1.items():
        _check(rows[run], expected, run)
    assert rows["model-a mcqa history=true"]["variant"] == "history=true"
    assert rows["model-b mcqa"]["vsod_acc"] is None  # a source not evaluated stays empty, not 0


def test_reference_gap_pairs_reference_with_mcqa(results_file):
    with analytics.open_results(results_file) as con:
        rows = {(r["model"], r["source"]): r for r in _rows(con, "SELECT * FROM reference_gap")}
    assert set(rows) == set(REFERENCE_GAP)  # the history variant has no reference run: not paired
    for key, (reference, proactive, gap) in REFERENCE_GAP.items():
        _check(rows[key], dict(reference_acc=reference, proactive_acc=proactive, gap=gap), str(key))


def test_action_distribution_counts_every_turn_of_the_kept_episodes(results_file):
    with analytics.open_results(results_file) as con:
        rows = {(r["run"], r["source"]): r for r in _rows(con, "SELECT * FROM action_distribution")}
    assert not any(run.startswith(("model-a reference", "model-b reference")) for run, _ in rows)
    for key, expected in ACTION_DISTRIBUTION.items():
        full = {a: 0.0 for a in analytics.ANSWER_KINDS} | expected
        _check(rows[key], full, str(key))
        assert sum(rows[key][a] for a in analytics.ANSWER_KINDS) == pytest.approx(100.0)


def test_oeg_table_per_judge(results_file):
    with analytics.open_results(results_file) as con:
        rows = {r["judge_model"]: r for r in _rows(con, "SELECT * FROM oeg_table")}
    assert set(rows) == set(OEG)
    for judge, expected in OEG.items():
        _check(rows[judge], expected, judge)
    assert rows["judge-x"]["run"] == "model-a oeg"


def test_filter_views_from_prediction_parquet(results_file, tmp_path):
    predictions = write_predictions(tmp_path / "predictions")
    with analytics.open_results(results_file, predictions) as con:
        stats = {r["source"]: r for r in _rows(con, "SELECT * FROM filter_stats")}
        solved = {(r["source"], r["model"]): r["solved_pct"] for r in _rows(con, "SELECT * FROM filter_solved")}
        rates = dict(con.execute("SELECT sample_id, solve_rate FROM prediction_solve_rates").fetchall())
        analytics.attach_predictions(con, predictions, threshold=0.5)  # re-attaching replaces the views
        loose = {r["source"]: r["kept"] for r in _rows(con, "SELECT * FROM filter_stats")}
    assert rates == {"rod-1": 0.25, "rod-2": 0.5, "coco-1": 0.0, "coco-2": 1.0}
    # `curate filter` excludes a sample solved by at least the threshold: at 0.25 rod-1 (exactly 0.25) goes,
    # only coco-1 stays; at 0.5 rod-1 stays too
    _check(stats["rod"], dict(samples=2, models=4, kept=0, kept_pct=0.0, threshold=0.25), "rod")
    _check(stats["coco"], dict(samples=2, kept=1, kept_pct=50.0), "coco")
    _check(stats["all"], dict(samples=4, kept=1, kept_pct=25.0), "all")
    assert list(stats) == ["rod", "coco", "all"]  # the paper's source order, the total last
    assert solved == {("rod", "m1"): 100.0, ("rod", "m2"): 50.0, ("rod", "m3"): 0.0, ("rod", "m4"): 0.0,
                      ("coco", "m1"): 50.0, ("coco", "m2"): 50.0, ("coco", "m3"): 50.0, ("coco", "m4"): 50.0}
    assert loose == {"rod": 1, "coco": 1, "all": 2}


def test_create_views_is_idempotent_and_persists(results_file):
    con = connect(results_file)
    assert analytics.create_views(con) == analytics.create_views(con)
    con.close()
    import duckdb

    with duckdb.connect(str(results_file), read_only=True) as plain:  # no proactivebench code needed to query
        assert plain.execute("SELECT count(*) FROM table1").fetchone() == (3,)
        assert {r[0] for r in plain.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()} \
            >= {"table1", "reference_gap", "action_distribution", "oeg_table"}


def test_open_results_leaves_the_file_untouched(results_file):
    with analytics.open_results(results_file) as con:
        con.execute("SELECT * FROM table1").fetchall()
    import duckdb

    with duckdb.connect(str(results_file), read_only=True) as plain:
        assert plain.execute("SELECT count(*) FROM duckdb_views() WHERE NOT internal").fetchone() == (0,)


def test_views_on_an_empty_results_file(tmp_path):
    connect(tmp_path / "empty.duckdb").close()
    with analytics.open_results(tmp_path / "empty.duckdb") as con:
        for view in analytics.public_views(con):
            assert con.execute(f"SELECT count(*) FROM {view.name}").fetchone() == (0,)


def test_malformed_config_json_does_not_break_the_views(tmp_path):
    con = connect(tmp_path / "r.duckdb")
    con.execute("INSERT INTO runs (run_id, model, mode, config_json) VALUES ('x', 'm', 'mcqa', '{not json')")
    con.execute("INSERT INTO episodes VALUES ('x', 'quickdraw-1', 'quickdraw', true, 2, 1, 'correct')")
    analytics.create_views(con)
    assert con.execute("SELECT run, quickdraw_acc, quickdraw_psr FROM table1").fetchall() == [("m mcqa", 100.0, 1.0)]
    con.close()


# --- the report command ---------------------------------------------------------------------------------------


def test_report_table_shows_paper_cells(results_file, capsys):
    assert main(["report", "--results", str(results_file), "--view", "table1"]) == 0
    out = capsys.readouterr().out
    assert "== table1" in out
    line = next(line for line in out.splitlines() if line.strip().startswith("model-b mcqa"))
    # ROD acc/psr, COCO acc/psr, avg acc/psr, as the paper prints them
    assert line.split()[2:5] == ["0.0/0.5", "66.7/0.0", "33.3/0.2"]


def test_report_json_keeps_full_precision(results_file, capsys):
    assert main(["report", "--results", str(results_file), "--format", "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert list(payload) == ["table1", "reference_gap", "action_distribution", "oeg_table"]
    row = next(r for r in payload["table1"] if r["run"] == "model-a mcqa")
    assert row["avg_psr"] == pytest.approx(17 / 12) and row["vsod_acc"] is None


def test_report_csv_of_one_view_is_plain_csv(results_file, capsys):
    assert main(["report", "--results", str(results_file), "--format", "csv", "--view", "reference_gap"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    gaps = {(r["model"], r["source"]): float(r["gap"]) for r in rows}
    assert gaps == pytest.approx({k: v[2] for k, v in REFERENCE_GAP.items()})


def test_report_markdown_with_filter_views(results_file, tmp_path, capsys):
    predictions = write_predictions(tmp_path / "predictions")
    argv = ["report", "--results", str(results_file), "--format", "markdown", "--predictions", str(predictions)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "### filter_stats" in out and "### oeg_table" in out
    assert "| all | 4 | 4 | 1 | 25.0 | 0.25 |" in out
    assert "| model-a mcqa | 100.0/1.5 | 33.3/1.3 | 66.7/1.4 | 2 | 5 |" in out


@pytest.mark.parametrize("argv, message", [
    (["--results", "{tmp}/missing.duckdb"], "results file not found"),
    (["--results", "{tmp}/garbage.duckdb"], "cannot open as a DuckDB results file"),
    (["--results", "{tmp}/other.duckdb"], "not a results file: missing table(s)"),
    (["--results", "{results}", "--view", "filter_stats"], "need --predictions"),
    (["--results", "{results}", "--predictions", "{tmp}/nowhere"], "predictions directory not found"),
    (["--results", "{results}", "--predictions", "{tmp}/badpred"], "p.parquet: missing column(s) output, verdict, correct"),
    (["--results", "{results}", "--predictions", "{tmp}/unfinished"], "unfinished first-turn run(s)"),
    (["--results", "{results}", "--predictions", "{tmp}/badpred", "--threshold", "0"], "threshold must be in"),
])
def test_report_bad_input_is_one_line_error(results_file, tmp_path, capsys, argv, message):
    (tmp_path / "garbage.duckdb").write_text("not a database")
    import duckdb

    duckdb.connect(str(tmp_path / "other.duckdb")).execute("CREATE TABLE t (x INTEGER)").close()
    (tmp_path / "badpred").mkdir()
    pq.write_table(pa.table({"model": ["m"], "sample_id": ["rod-1"], "source": ["rod"]}),
                   tmp_path / "badpred" / "p.parquet")
    write_predictions(tmp_path / "unfinished")
    (tmp_path / "unfinished" / ".m5.parts").mkdir()  # a first-turn run cut off: parts, no final file yet
    pq.write_table(pa.table({"model": ["m5"]}), tmp_path / "unfinished" / ".m5.parts" / "part-00000.parquet")
    argv = [a.format(tmp=tmp_path, results=results_file) for a in argv]
    assert main(["report", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def test_report_save_views_stores_them_in_the_file(results_file, capsys):
    assert main(["report", "--results", str(results_file), "--save-views", "--view", "table1"]) == 0
    import duckdb

    with duckdb.connect(str(results_file), read_only=True) as plain:
        rows = plain.execute("SELECT run, avg_acc FROM table1 ORDER BY run").fetchall()
    assert [r[0] for r in rows] == sorted(TABLE1) and rows[2][1] == pytest.approx(100 / 3)


def test_report_save_views_refuses_a_file_that_is_not_results(tmp_path, capsys):
    import duckdb

    duckdb.connect(str(tmp_path / "other.duckdb")).execute("CREATE TABLE t (x INTEGER)").close()
    assert main(["report", "--results", str(tmp_path / "other.duckdb"), "--save-views"]) == 2
    assert "not a results file" in capsys.readouterr().err
    with duckdb.connect(str(tmp_path / "other.duckdb"), read_only=True) as plain:  # nothing was created in it
        assert plain.execute("SELECT count(*) FROM duckdb_views() WHERE NOT internal").fetchone() == (0,)
        assert plain.execute("SELECT count(*) FROM duckdb_tables()").fetchone() == (1,)


def test_report_on_tables_of_another_schema_is_one_line(tmp_path, capsys):
    import duckdb

    with duckdb.connect(str(tmp_path / "old.duckdb")) as con:  # the four tables, but not our columns
        for table in ("runs", "turns", "episodes", "judgments"):
            con.execute(f"CREATE TABLE {table} (run_id VARCHAR)")
    for extra in ([], ["--save-views"]):
        assert main(["report", "--results", str(tmp_path / "old.duckdb"), *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "old.duckdb" in err and "\n" not in err
