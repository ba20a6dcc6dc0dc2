"""The SQL views agree with the Python engine and metrics on real episodes (the sample release, stepped by the
generic engine with scripted policies), written row for row the way the eval runner writes them."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime

import pytest

from proactivebench.eval import Episode, analytics, summarize
from proactivebench.eval.results import connect


def _letter(obs, text: str) -> str:
    return chr(65 + obs.choices.index(text)) + "."


# model name → policy(observation, row) → the generated text
POLICIES = {
    "always-a": lambda obs, row: "A.",
    "answer-now": lambda obs, row: _letter(obs, row["answer"]),
    "ask-then-answer": lambda obs, row: "A." if obs.turn == 0 else _letter(obs, row["answer"]),
    "babble": lambda obs, row: "I would rather not say",
}


@pytest.fixture(scope="module")
def engine_results(imported_rows, tmp_path_factory):
    path = tmp_path_factory.mktemp("engine") / "results.duckdb"
    con = connect(path)
    expected = {}
    for model, policy in POLICIES.items():
        for mode in ("mcqa", "reference"):
            run_id = f"{model}-{mode}"
            con.execute("INSERT INTO runs VALUES (?, ?, 'baseline', ?, false, NULL, 'sample', NULL, '{}', ?, ?)",
                        [run_id, model, mode, datetime(2026, 1, 1), datetime(2026, 1, 1)])
            results = []
            for row in imported_rows.values():
                episode = Episode(row, mode=mode)
                while not episode.done:
                    episode.step(policy(episode.observe(), row))
                results.append(episode.result)
            for result in results:
                con.execute("INSERT INTO episodes VALUES (?, ?, ?, ?, ?, ?, ?)", [
                    run_id, result.sample_id, result.source, result.correct, result.num_turns,
                    result.proactive_suggestions, result.stop_reason])
                con.executemany(
                    "INSERT INTO turns VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(run_id, result.sample_id, result.source, t.turn, t.state, t.frame, t.prompt, t.output,
                      t.option_verdict, t.category_verdict, t.chosen_kind, t.chosen_text, t.error, 0.0)
                     for t in result.turns])
            expected[(model, mode)] = results
    con.close()
    return path, expected


def test_table1_and_reference_gap_match_the_python_metrics(engine_results):
    path, expected = engine_results
    with analytics.open_results(path) as con:
        long = {(r[0], r[1]): r[2:] for r in con.execute(
            "SELECT model || ' ' || mode, source, n, acc, psr FROM source_accuracy").fetchall()}
        table1 = {r[0]: r[1:] for r in con.execute("SELECT model, avg_acc, avg_psr, episodes FROM table1").fetchall()}
        gap = {(r[0], r[1]): r[2:] for r in con.execute(
            "SELECT model, source, reference_acc, proactive_acc FROM reference_gap").fetchall()}
    assert set(table1) == set(POLICIES)
    for (model, mode), results in expected.items():
        by_source = defaultdict(list)
        for result in results:
            by_source[result.source].append(result)
        scores = {source: summarize(rs) for source, rs in by_source.items()}
        for source, score in scores.items():
            n, acc, psr = long[(f"{model} {mode}", source)]
            assert (n, acc, psr) == (score.episodes, pytest.approx(score.acc), pytest.approx(score.psr))
            column = 1 if mode == "mcqa" else 0
            assert gap[(model, source)][column] == pytest.approx(score.acc)
        if mode == "mcqa":
            avg_acc, avg_psr, episodes = table1[model]
            assert avg_acc == pytest.approx(sum(s.acc for s in scores.values()) / len(scores))
            assert avg_psr == pytest.approx(sum(s.psr for s in scores.values()) / len(scores))
            assert episodes == len(results)
    # the policies are not degenerate: they differ, and something was answered right and something asked
    assert len({round(v[0], 6) for v in table1.values()}) > 1
    assert table1["answer-now"][0] > 0 and table1["ask-then-answer"][1] > 0


def test_action_distribution_matches_the_engine_turns(engine_results):
    path, expected = engine_results
    with analytics.open_results(path) as con:
        rows = {r[0]: r[1:] for r in con.execute(
            "SELECT model, turns, proactive, abstain, correct_category, wrong_category, unparsed, error "
            "FROM action_distribution WHERE source = 'all'").fetchall()}
    for model in POLICIES:
        turns = [t for result in expected[(model, "mcqa")] for t in result.turns]
        counts = Counter(
            "correct_category" if t.chosen_kind == "category" and t.category_verdict == "correct"
            else "wrong_category" if t.chosen_kind == "category"
            else "unparsed" if t.chosen_kind == "none" else t.chosen_kind
            for t in turns
        )
        assert rows[model][0] == len(turns)
        shares = [100 * counts[a] / len(turns) for a in analytics.ANSWER_KINDS]
        assert list(rows[model][1:]) == pytest.approx(shares), model
    assert rows["babble"][5] == pytest.approx(100.0)  # nothing parseable: every turn unparsed
