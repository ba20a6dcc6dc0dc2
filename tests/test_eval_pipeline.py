"""The pipelined scheduler against a stand-in OpenAI-compatible server with per-request latency: no batch
barrier, and a run SIGKILLed mid-way (requests in flight, a commit group pending) resumes to the tables of an
uninterrupted run."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import duckdb
import pytest

from proactivebench.eval.runner import EvalConfig, run_eval
from proactivebench.eval.scheduler import CommitPolicy
from proactivebench.eval.standin import answer_for, latency_for, serve

TURNS = "sample_id, turn, state, frame, prompt, output, option_verdict, category_verdict, chosen_kind, chosen_text, error"
EPISODES = "sample_id, source, correct, num_turns, proactive_suggestions, stop_reason"


def _tables(path):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return (con.execute(f"SELECT {TURNS} FROM turns ORDER BY sample_id, turn").fetchall(),
                con.execute(f"SELECT {EPISODES} FROM episodes ORDER BY sample_id").fetchall())
    finally:
        con.close()


@pytest.fixture(scope="module")
def standin():
    with serve(min_ms=5, max_ms=60) as url:
        yield url


def test_answers_and_latencies_are_functions_of_the_prompt():
    prompt = "Q? Options:\nA. move\nB. cat\nC. dog\n"
    assert answer_for(prompt) == answer_for(prompt) and answer_for(prompt) in "ABC"
    assert 0.02 <= latency_for(prompt) <= 0.4 and latency_for(prompt) == latency_for(prompt)


def test_episodes_do_not_wait_for_each_other(standin, imported_dir, tmp_path):
    options = {"base_url": standin, "concurrency": 4, "max_retries": 0}
    summary = run_eval(EvalConfig(str(imported_dir), "openai:standin", backend_options=options),
                       tmp_path / "r.duckdb", progress=False)
    assert summary.episodes == 10 and summary.errors == 0
    con = duckdb.connect(str(tmp_path / "r.duckdb"), read_only=True)
    rows = con.execute("SELECT prompt, output, latency_s FROM turns").fetchall()
    config = con.execute("SELECT config_json FROM runs").fetchone()[0]
    con.close()
    assert all(output == answer_for(prompt) for prompt, output, _ in rows)
    # Each turn's latency is its own request's (a batch barrier would give all of a step the slowest one's).
    assert all(latency_for(p, 5, 60) - 0.001 <= latency < latency_for(p, 5, 60) + 0.25 for p, _, latency in rows)
    assert "\"concurrency\": 4" in config and len(rows) > 10  # several turns each


_KILLED = textwrap.dedent(
    """
    import os, signal, sys
    from proactivebench.eval.backends import load_backend
    from proactivebench.eval.runner import EvalConfig, run_eval
    from proactivebench.eval.scheduler import CommitPolicy

    dataset, results, url, kill_after = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    backend = load_backend("openai:standin", base_url=url, concurrency=4, max_retries=0)
    original, answered = backend.agenerate, [0]

    async def agenerate(request):
        generation = await original(request)
        answered[0] += 1
        if answered[0] > kill_after:  # other requests in flight, a commit group pending: a real crash
            os.kill(os.getpid(), signal.SIGKILL)
        return generation

    backend.agenerate = agenerate
    config = EvalConfig(dataset, "openai:standin", commit=CommitPolicy(every_turns=5, every_s=60),
                        backend_options={"base_url": url, "concurrency": 4})
    run_eval(config, results, backend=backend, progress=False)
    """
)


def test_sigkilled_pipelined_run_resumes_to_the_uninterrupted_tables(standin, imported_dir, tmp_path):
    script = tmp_path / "killed.py"
    script.write_text(_KILLED)
    killed = tmp_path / "killed.duckdb"
    env = {**os.environ, "HF_DATASETS_CACHE": str(tmp_path / "cache")}
    process = subprocess.run([sys.executable, str(script), str(imported_dir), str(killed), standin, "13"], env=env,
                             capture_output=True, timeout=120)
    assert process.returncode == -9, process.stderr.decode()[-2000:]
    turns, episodes = _tables(killed)
    assert 0 < len(episodes) < 10 and len(turns) == 10  # two groups of 5 committed, the rest lost with the kill
    options = {"base_url": standin, "concurrency": 4}
    resumed = run_eval(EvalConfig(str(imported_dir), "openai:standin", backend_options=options), killed,
                       progress=False)
    assert resumed.new_episodes == 10 - len(episodes)
    clean = tmp_path / "clean.duckdb"
    run_eval(EvalConfig(str(imported_dir), "openai:standin", commit=CommitPolicy(every_turns=1),
                        backend_options={**options, "concurrency": 7}), clean, progress=False)
    assert _tables(killed) == _tables(clean)


def test_pipelined_runs_start_the_longest_episodes_first(standin, imported_dir, tmp_path):
    """Longest-processing-time first: a server run starts the episodes that may take the most turns first (the
    tail is then short episodes), an in-process run keeps the dataset order (its batches shape the outputs)."""
    from proactivebench.eval.backends import load_backend
    from proactivebench.store import load_episodes

    table = load_episodes(str(imported_dir), "test")
    max_turns = dict(zip(table["sample_id"], table["max_turns"]))
    assert len(set(max_turns.values())) > 1  # else the order could not tell
    options = {"base_url": standin, "concurrency": 1, "max_retries": 0}
    backend = load_backend("openai:standin", **options)
    started: list[str] = []
    inner = backend.agenerate

    async def agenerate(request):
        sample_id = request.key.rsplit("/", 1)[0]
        if sample_id not in started:
            started.append(sample_id)
        return await inner(request)

    backend.agenerate = agenerate
    run_eval(EvalConfig(str(imported_dir), "openai:standin", backend_options=options), tmp_path / "r.duckdb",
             backend=backend, progress=False)
    backend.close()
    assert sorted(started) == sorted(max_turns)
    assert [max_turns[s] for s in started] == sorted(max_turns.values(), reverse=True)
    assert started != list(table["sample_id"])  # the dataset order is not already longest first


def test_cli_run_against_a_server_logs_no_line_per_request(standin, imported_dir, tmp_path):
    """HTTP clients log each request at INFO; the command line keeps them quiet unless --verbose."""
    command = [sys.executable, "-m", "proactivebench", "eval", "--dataset", str(imported_dir), "--model",
               "openai:standin", "--base-url", standin, "--results", str(tmp_path / "r.duckdb"), "--no-progress"]
    quiet = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 0, quiet.stderr
    assert "HTTP Request" not in quiet.stdout + quiet.stderr and "/chat/completions" not in quiet.stderr
    loud = [*command[:3], "--verbose", *command[3:-2], str(tmp_path / "loud.duckdb"), "--no-progress"]
    loud = subprocess.run(loud, capture_output=True, text=True, timeout=300)
    assert loud.returncode == 0 and "/chat/completions" in loud.stdout + loud.stderr  # the log is there to see
