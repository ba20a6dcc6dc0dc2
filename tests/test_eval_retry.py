"""Issue 17 item 4: an episode that ended in a backend error is retried when the same run is resumed."""

from __future__ import annotations

import duckdb

from proactivebench.eval.backends import load_backend
from proactivebench.eval.backends.base import Backend
from proactivebench.eval.runner import EvalConfig, run_eval


class Flaky(Backend):
    """The oracle, except that requests for `failing` samples raise (a server answering 500, say)."""

    kind = "baseline"
    needs_images = False

    def __init__(self, failing: set[str]):
        super().__init__("baseline:oracle")
        self.oracle = load_backend("baseline:oracle")
        self.failing = failing

    def _generate(self, requests):
        if any(r.context.sample_id in self.failing for r in requests):
            raise RuntimeError("HTTP 500 from the server")
        return [g.text for g in self.oracle.generate(requests)]


def _episodes(path):
    con = duckdb.connect(str(path), read_only=True)
    try:
        episodes = con.execute("SELECT sample_id, correct, stop_reason FROM episodes ORDER BY sample_id").fetchall()
        errors = con.execute("SELECT count(*) FROM turns WHERE error <> ''").fetchone()[0]
    finally:
        con.close()
    return episodes, errors


def test_a_rerun_retries_the_episodes_that_ended_in_a_backend_error(imported_dir, tmp_path):
    results = tmp_path / "r.duckdb"
    config = EvalConfig(str(imported_dir), "baseline:oracle", sources=("coco", "mvpn"))
    first = run_eval(config, results, backend=Flaky({"coco-000000", "mvpn-000005"}), progress=False)
    assert first.errors == 2 and first.acc < 100.0
    episodes, _ = _episodes(results)
    assert {e[0] for e in episodes if e[2] == "error"} == {"coco-000000", "mvpn-000005"}

    # The server is healthy again: the same command retries exactly the two failures.
    second = run_eval(config, results, backend=Flaky(set()), progress=False)
    assert second.run_id == first.run_id and second.new_episodes == 2
    assert second.errors == 0 and second.acc == 100.0
    episodes, error_turns = _episodes(results)
    assert len(episodes) == len({e[0] for e in episodes}) == first.episodes  # each episode once, none lost
    assert all(e[1] and e[2] == "correct" for e in episodes) and error_turns == 0

    # A third run has nothing left to do.
    third = run_eval(config, results, backend=Flaky(set()), progress=False)
    assert third.new_episodes == 0 and third.acc == 100.0


def test_a_deterministic_error_fails_again_and_stays_recorded(imported_dir, tmp_path):
    results = tmp_path / "r.duckdb"
    config = EvalConfig(str(imported_dir), "baseline:oracle", sources=("coco",))
    run_eval(config, results, backend=Flaky({"coco-000000"}), progress=False)
    again = run_eval(config, results, backend=Flaky({"coco-000000"}), progress=False)
    assert again.new_episodes == 1 and again.errors == 1
    episodes, error_turns = _episodes(results)
    assert [e for e in episodes if e[0] == "coco-000000"] == [("coco-000000", False, "error")]
    assert error_turns == 1  # recorded once, not once per attempt


def test_eval_help_says_errors_are_retried(capsys):
    import pytest

    from proactivebench.cli import main

    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "backend error" in text and "retried" in text
