"""`curate first-turn`: baselines as roster members, batching, resuming, backend errors, the roster file."""

import json

import pyarrow.parquet as pq
import pytest

from proactivebench.cli import main
from proactivebench.curation.first_turn import default_roster_path, first_turn, load_roster, roster_first_turn
from proactivebench.curation.predictions import PREDICTION_COLUMNS
from proactivebench.eval.backends import Generation, load_backend
from proactivebench.eval.scheduler import CommitPolicy


def read(path):
    return {r["sample_id"]: r for r in pq.read_table(path).to_pylist()}


class Recording:
    """Wraps a real backend: records batch sizes, can fail a request or stop the run after some calls."""

    def __init__(self, spec, stop_after=None, fail=()):
        self.inner = load_backend(spec)
        self.calls, self.stop_after, self.fail = [], stop_after, set(fail)
        self.default_batch_size = 8

    def generate(self, requests):
        if self.stop_after is not None and len(self.calls) >= self.stop_after:
            raise KeyboardInterrupt  # an interrupted run
        self.calls.append([r.key for r in requests])
        out = self.inner.generate(requests)
        return [Generation("", error="boom") if r.context.sample_id in self.fail else g for r, g in zip(requests, out)]


def test_oracle_is_right_at_the_first_turn_exactly_where_an_answer_is_accepted(imported_dir, imported_rows, tmp_path, capsys):
    assert main(["curate", "first-turn", "--dataset", str(imported_dir), "--model", "baseline:oracle",
                 "--out", str(tmp_path), "--batch-size", "4"]) == 0
    path = tmp_path / "baseline--oracle.parquet"
    assert pq.read_schema(path).names == list(PREDICTION_COLUMNS)
    rows = read(path)
    assert set(rows) == set(imported_rows)  # test + excluded
    for sid, row in rows.items():
        episode = imported_rows[sid]
        accepts = episode["states"][episode["first_state"]]["accepts_answer"]
        assert row["correct"] is accepts and row["model"] == "baseline:oracle" and row["source"] == episode["source"]
        assert row["verdict"] == ("correct" if accepts else "mismatch")  # a proactive letter is no category
    assert any(not r["correct"] for r in rows.values())  # ROD's first state accepts no answer
    assert "baseline:oracle: 11 predicted" in capsys.readouterr().out


def test_batches_resume_and_errors(imported_dir, imported_rows, tmp_path):
    interrupted = Recording("baseline:random", stop_after=2)
    with pytest.raises(KeyboardInterrupt):
        first_turn(imported_dir, "baseline:random", tmp_path, batch_size=3, backend=interrupted,
                   policy=CommitPolicy(every_turns=3))  # a part file per batch
    parts = list((tmp_path / ".baseline--random.parts").glob("part-*.parquet"))
    assert len(parts) == 2 and not (tmp_path / "baseline--random.parquet").exists()

    done_first = {k.split("/")[0] for c in interrupted.calls for k in c}
    failing = sorted(set(imported_rows) - done_first)[0]
    resumed = Recording("baseline:random", fail=[failing])
    report = first_turn(imported_dir, "baseline:random", tmp_path, batch_size=3, backend=resumed)
    assert report.skipped == 6 and report.predicted == 5 and report.errors == 1
    assert [len(c) for c in resumed.calls] == [3, 2]
    assert not done_first & {k.split("/")[0] for c in resumed.calls for k in c}  # nothing predicted twice

    rows = read(tmp_path / "baseline--random.parquet")
    assert set(rows) == set(imported_rows) and len(pq.read_table(tmp_path / "baseline--random.parquet")) == 11
    assert rows[failing]["verdict"] == "error" and rows[failing]["correct"] is False
    assert not (tmp_path / ".baseline--random.parts").exists()
    # Same as an uninterrupted run: randomness is keyed by sample, not by batch.
    clean = first_turn(imported_dir, "baseline:random", tmp_path / "clean", batch_size=5)
    reference = read(clean.path)
    assert {s: r["output"] for s, r in rows.items() if s != failing} == {
        s: r["output"] for s, r in reference.items() if s != failing
    }
    # A rerun retries only the backend error (as `eval` does): the error that fails again stays recorded once.
    still = Recording("baseline:random", fail=[failing])
    report = first_turn(imported_dir, "baseline:random", tmp_path, backend=still)
    assert [k.split("/")[0] for c in still.calls for k in c] == [failing]
    assert report.skipped == 10 and report.predicted == 1 and report.retried == 1 and report.errors == 1
    assert len(pq.read_table(tmp_path / "baseline--random.parquet")) == 11
    assert read(tmp_path / "baseline--random.parquet")[failing]["verdict"] == "error"
    # The server is healthy again: the retried prediction replaces the error row, nothing else is predicted.
    healthy = Recording("baseline:random")
    report = first_turn(imported_dir, "baseline:random", tmp_path, backend=healthy)
    assert [k.split("/")[0] for c in healthy.calls for k in c] == [failing]
    assert report.retried == 1 and report.errors == 0 and report.correct == sum(r["correct"] for r in reference.values())
    rows = read(tmp_path / "baseline--random.parquet")
    assert len(pq.read_table(tmp_path / "baseline--random.parquet")) == 11 and rows == reference
    # A finished file without errors is not predicted again.
    again = Recording("baseline:random")
    assert first_turn(imported_dir, "baseline:random", tmp_path, backend=again).predicted == 0 and not again.calls


def test_first_turn_help_says_errors_are_retried(capsys):
    with pytest.raises(SystemExit):
        main(["curate", "first-turn", "--help"])
    assert "retries it" in " ".join(capsys.readouterr().out.split())


def test_a_file_of_another_model_is_refused(imported_dir, tmp_path):
    first_turn(imported_dir, "baseline:random", tmp_path, limit=2)
    (tmp_path / "baseline--random.parquet").rename(tmp_path / "baseline--oracle.parquet")
    with pytest.raises(ValueError, match="holds predictions of baseline:random, not 'baseline:oracle'"):
        first_turn(imported_dir, "baseline:oracle", tmp_path)


def test_the_paper_roster_and_a_roster_of_baselines(imported_dir, tmp_path, capsys):
    roster = load_roster()
    specs = [e.spec for e in roster]
    assert len(specs) == 22 and len(set(specs)) == 22
    assert sum(s.startswith("openai:") for s in specs) == 3 and "hf:Qwen/Qwen2.5-VL-7B-Instruct" in specs
    assert "unverified here" in json.loads(default_roster_path().read_text())["note"]

    mine = tmp_path / "roster.json"
    mine.write_text(json.dumps({"models": [{"spec": "baseline:oracle"}, {"spec": "baseline:always-abstain"}]}))
    reports = roster_first_turn(imported_dir, mine, tmp_path / "preds", batch_size=6)
    assert [r.correct for r in reports] == [9, 0]
    assert sorted(p.name for p in (tmp_path / "preds").glob("*.parquet")) == [
        "baseline--always-abstain.parquet", "baseline--oracle.parquet"]
    assert main(["curate", "roster", str(mine)]) == 0
    assert capsys.readouterr().out.split() == ["baseline:oracle", "baseline:always-abstain"]


def test_bad_input_is_one_line(imported_dir, tmp_path, capsys):
    assert main(["curate", "first-turn", "--dataset", str(imported_dir), "--model", "nonsense", "--out", str(tmp_path)]) == 2
    assert "model spec 'nonsense'" in capsys.readouterr().err
    assert main(["curate", "first-turn", "--dataset", str(tmp_path / "nope"), "--model", "baseline:oracle",
                 "--out", str(tmp_path)]) == 2
    assert "no test/excluded shards" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"models": [{"spec": "baseline:oracle"}, {"spec": "baseline:oracle"}]}))
    with pytest.raises(ValueError, match="listed twice: baseline:oracle"):
        load_roster(bad)


def test_roster_loop_stops_at_a_missing_api_key_after_the_models_before_it(imported_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("PB_TEST_KEY", raising=False)
    roster = tmp_path / "roster.json"
    roster.write_text(json.dumps({"models": [
        {"spec": "baseline:oracle"},
        {"spec": "openai:some-model", "options": {"base_url": "http://127.0.0.1:9", "api_key_env": "PB_TEST_KEY"}},
    ]}))
    code = main(["curate", "first-turn", "--dataset", str(imported_dir), "--roster", str(roster), "--out", str(tmp_path / "p")])
    captured = capsys.readouterr()
    assert code == 2 and "environment variable PB_TEST_KEY" in captured.err
    assert "baseline:oracle: 11 predicted" in captured.out and (tmp_path / "p" / "baseline--oracle.parquet").exists()
