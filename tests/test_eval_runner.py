"""The runner: baselines' scores, hf at batch 1 vs 8, kill + resume, error turns, shards, ablation, tables."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap

import duckdb
import pytest
from PIL import Image

from proactivebench.eval.results import merge_results
from proactivebench.eval.runner import EvalConfig, parse_shard, run_eval
from proactivebench.graph import StateGraph
from proactivebench.schema import states_from_rows


TURN_COLUMNS = "sample_id, source, turn, state, frame, prompt, output, option_verdict, category_verdict, chosen_kind, chosen_text, error"
EPISODE_COLUMNS = "sample_id, source, correct, num_turns, proactive_suggestions, stop_reason"


def _tables(path, run_id=None):
    con = duckdb.connect(str(path), read_only=True)
    where = f"WHERE run_id = '{run_id}'" if run_id else ""
    try:
        turns = con.execute(f"SELECT {TURN_COLUMNS} FROM turns {where} ORDER BY sample_id, turn").fetchall()
        episodes = con.execute(f"SELECT {EPISODE_COLUMNS} FROM episodes {where} ORDER BY sample_id").fetchall()
        runs = con.execute(f"SELECT run_id, config_json FROM runs {where}").fetchall()
    finally:
        con.close()
    return turns, episodes, runs


def test_oracle_scores_100_with_the_shortest_paths_psr(imported_dir, imported_rows, tmp_path):
    results = tmp_path / "r.duckdb"
    summary = run_eval(EvalConfig(str(imported_dir), "baseline:oracle"), results, progress=False)
    turns, episodes, runs = _tables(results)
    expected_psr = {}
    for sample_id, source, *_ in episodes:
        row = imported_rows[sample_id]
        path = StateGraph(states_from_rows(row["states"])).answer_path(row["first_state"], row["max_turns"])
        expected_psr[sample_id] = len(path) - 1
    assert summary.acc == 100.0 and summary.errors == 0 and summary.episodes == len(episodes) == 10
    assert summary.psr == pytest.approx(sum(expected_psr.values()) / len(expected_psr))
    assert summary.psr == pytest.approx(0.2)  # the two ROD episodes need one move each (no answer at turn 0)
    assert summary.per_source["rod"] == (2, 100.0, 1.0)
    assert all(e[2] and e[4] == expected_psr[e[0]] and e[5] == "correct" for e in episodes)
    assert len(turns) == sum(e[3] for e in episodes)
    config = json.loads(runs[0][1])
    for key in ("backend_options", "parser", "batch_size", "sources", "limit", "shard", "seed", "dataset", "revision"):
        assert key in config
    assert config["parser"] == "paper" and config["shard"] == "0/1" and config["dataset"] == str(imported_dir.resolve())


def test_always_abstain_scores_0(imported_dir, tmp_path):
    summary = run_eval(EvalConfig(str(imported_dir), "baseline:always-abstain"), tmp_path / "r.duckdb", progress=False)
    _, episodes, _ = _tables(tmp_path / "r.duckdb")
    assert summary.acc == 0.0 and summary.psr == 0.0
    assert {e[5] for e in episodes} == {"abstain"}


def test_reference_mode_and_hint(imported_dir, tmp_path):
    results = tmp_path / "r.duckdb"
    summary = run_eval(EvalConfig(str(imported_dir), "baseline:oracle", mode="reference", hint=True), results, progress=False)
    turns, _, _ = _tables(results)
    assert summary.acc == 100.0 and summary.psr == 0.0 and len(turns) == 10
    rod = [t for t in turns if t[0] == "rod-000000"][0]
    assert rod[5].startswith("What type of object is in the image? Hint: moving the occluding object")
    assert "A. Screwdriver.\nB. Banana." in rod[5]  # categories only, lettered from A


@pytest.mark.parametrize("model_fixture", ["tiny_llava_dir", "tiny_qwen_dir"])
def test_hf_batch_1_and_8_give_identical_turns(model_fixture, imported_dir, tmp_path, request, one_torch_thread):
    model = f"hf:{request.getfixturevalue(model_fixture)}"
    options = {"max_new_tokens": 6}
    outputs = []
    for batch_size in (1, 8):
        results = tmp_path / f"b{batch_size}.duckdb"
        config = EvalConfig(str(imported_dir), model, batch_size=batch_size, backend_options=options)
        summary = run_eval(config, results, progress=False)
        assert summary.episodes == 10 and summary.errors == 0
        outputs.append(_tables(results)[:2])
    assert outputs[0] == outputs[1]
    turns, episodes = outputs[0]
    assert all(isinstance(t[6], str) for t in turns) and len(episodes) == 10


_KILLED_RUN = textwrap.dedent(
    """
    import os, signal, sys
    from proactivebench.eval.backends import load_backend
    from proactivebench.eval.runner import EvalConfig, run_eval
    from proactivebench.eval.scheduler import CommitPolicy

    dataset, results, kill_after = sys.argv[1], sys.argv[2], int(sys.argv[3])
    backend = load_backend("baseline:always-proactive")
    original, calls = backend.generate, [0]

    def generate(requests):
        calls[0] += 1
        if calls[0] > kill_after:
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no flush: a real crash
        return original(requests)

    backend.generate = generate
    config = EvalConfig(dataset, "baseline:always-proactive", batch_size=3, commit=CommitPolicy(every_turns=3))
    run_eval(config, results, backend=backend, progress=False)
    """
)


def test_killed_run_resumes_to_the_uninterrupted_tables(imported_dir, tmp_path):
    script = tmp_path / "killed.py"
    script.write_text(_KILLED_RUN)
    killed = tmp_path / "killed.duckdb"
    env = {**os.environ, "HF_DATASETS_CACHE": str(tmp_path / "cache")}
    process = subprocess.run(
        [sys.executable, str(script), str(imported_dir), str(killed), "6"], env=env, capture_output=True, timeout=120
    )
    assert process.returncode == -9, process.stderr.decode()[-2000:]
    partial_turns, partial_episodes, _ = _tables(killed)
    assert 0 < len(partial_episodes) < 10 and partial_turns  # it really stopped mid-way, with rows written

    config = EvalConfig(str(imported_dir), "baseline:always-proactive", batch_size=3)
    resumed = run_eval(config, killed, progress=False)
    assert resumed.new_episodes == 10 - len(partial_episodes)
    clean = run_eval(EvalConfig(str(imported_dir), "baseline:always-proactive", batch_size=5), tmp_path / "clean.duckdb", progress=False)
    assert resumed.run_id == clean.run_id  # batch size is not part of the run's identity
    killed_tables, clean_tables = _tables(killed), _tables(tmp_path / "clean.duckdb")
    assert killed_tables[0] == clean_tables[0] and killed_tables[1] == clean_tables[1]
    assert len(killed_tables[2]) == 1
    # A second resume has nothing left to do and writes nothing.
    again = run_eval(config, killed, progress=False)
    assert again.new_episodes == 0 and _tables(killed)[:2] == killed_tables[:2]


def _png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_backend_error_is_an_error_turn_and_the_run_goes_on(imported_rows, tiny_qwen_dir, tmp_path, one_torch_thread):
    """A one-pixel-high crop makes Qwen's processor raise: that episode ends wrong with an error turn."""
    from proactivebench.store import write_split

    broken = dict(imported_rows["quickdraw-000000"])
    first_frame = broken["states"][broken["first_state"]]["frame"]
    frames = list(broken["frames"])
    frames[first_frame] = {"bytes": _png(Image.new("RGB", (400, 1), "white")), "path": "thin.png"}
    broken["frames"] = frames
    dataset = tmp_path / "bench"
    write_split(dataset, "quickdraw", "test", [broken])
    write_split(dataset, "mvpn", "test", [imported_rows["mvpn-000005"]])
    results = tmp_path / "r.duckdb"
    config = EvalConfig(str(dataset), f"hf:{tiny_qwen_dir}", batch_size=4, backend_options={"max_new_tokens": 4})
    summary = run_eval(config, results, progress=False)
    turns, episodes, _ = _tables(results)
    by_id = {e[0]: e for e in episodes}
    assert summary.episodes == 2 and summary.errors == 1 and summary.acc == 0.0
    assert by_id["quickdraw-000000"][2:] == (False, 1, 0, "error")
    error_turn = [t for t in turns if t[0] == "quickdraw-000000"][0]
    assert "ValueError" in error_turn[11] and error_turn[6] == ""
    assert by_id["mvpn-000005"][5] != "error"
    assert all(t[11] == "" for t in turns if t[0] == "mvpn-000005")


def test_shards_split_a_run_and_merge_back(imported_dir, tmp_path):
    parts = []
    for index in range(3):
        path = tmp_path / f"shard{index}.duckdb"
        config = EvalConfig(str(imported_dir), "baseline:random", shard=(index, 3), seed=1)
        parts.append((run_eval(config, path, progress=False), path))
    assert len({summary.run_id for summary, _ in parts}) == 1
    assert sum(summary.episodes for summary, _ in parts) == 10
    merged = tmp_path / "merged.duckdb"
    merge_results([p for _, p in parts] + [parts[0][1]], merged)  # a repeated file adds nothing
    full = tmp_path / "full.duckdb"
    run_eval(EvalConfig(str(imported_dir), "baseline:random", seed=1), full, progress=False)
    assert _tables(merged)[:2] == _tables(full)[:2]
    assert parse_shard("2/4") == (2, 4)
    with pytest.raises(ValueError, match="I/N"):
        parse_shard("2")


def test_sources_and_limit_select_episodes(imported_dir, tmp_path):
    config = EvalConfig(str(imported_dir), "baseline:oracle", sources=("coco", "rod"), limit=2)
    summary = run_eval(config, tmp_path / "r.duckdb", progress=False)
    assert {s: v[0] for s, v in summary.per_source.items()} == {"coco": 2, "rod": 2}
    # Extending the selection resumes the same run and runs only the new episodes.
    bigger = run_eval(EvalConfig(str(imported_dir), "baseline:oracle", sources=("coco", "rod")), tmp_path / "r.duckdb", progress=False)
    assert bigger.run_id == summary.run_id and bigger.new_episodes == 1 and bigger.episodes == 5
    with pytest.raises(ValueError, match="no 'train' split"):
        run_eval(EvalConfig(str(imported_dir), "baseline:oracle", split="train"), tmp_path / "x.duckdb", progress=False)


def test_invalid_suggestions_ablation(imported_dir, imported_rows, tmp_path):
    results = tmp_path / "r.duckdb"
    config = EvalConfig(str(imported_dir), "baseline:always-proactive", ablation="invalid-suggestions")
    summary = run_eval(config, results, progress=False)
    turns, episodes, _ = _tables(results)
    plain = run_eval(EvalConfig(str(imported_dir), "baseline:always-proactive"), results, progress=False)
    assert summary.run_id != plain.run_id
    con = duckdb.connect(str(results), read_only=True)
    assert con.execute("SELECT ablation FROM runs WHERE run_id = ?", [summary.run_id]).fetchone()[0] == "invalid-suggestions"
    con.close()
    first_prompt = {t[0]: t[5] for t in turns if t[2] == 0}
    for sample_id, prompt in first_prompt.items():
        own = [o["text"] for o in imported_rows[sample_id]["options"] if o["kind"] == "proactive"]
        assert not any(f". {text}\n" in prompt for text in own), sample_id  # every proactive option was replaced
    assert summary.acc == 0.0 and len(episodes) == 10


def test_bad_config_is_a_one_line_error(imported_dir, tmp_path):
    with pytest.raises(ValueError, match="unknown mode"):
        run_eval(EvalConfig(str(imported_dir), "baseline:oracle", mode="chat"), tmp_path / "r.duckdb")
    with pytest.raises(ValueError, match="unknown ablation"):
        run_eval(EvalConfig(str(imported_dir), "baseline:oracle", ablation="x"), tmp_path / "r.duckdb")
    with pytest.raises(ValueError, match="cannot load dataset"):
        run_eval(EvalConfig(str(tmp_path / "missing"), "baseline:oracle"), tmp_path / "r.duckdb")


def test_oeg_mode_with_the_tiny_qwen(imported_dir, imported_rows, tiny_qwen_dir, tmp_path, one_torch_thread):
    """One open-ended turn on the first state; the reference's sample choice: random.seed(seed) + shuffle + [:limit]."""
    import random

    results = tmp_path / "r.duckdb"
    config = EvalConfig(str(imported_dir), f"hf:{tiny_qwen_dir}", mode="oeg", sources=("coco",), limit=2,
                        backend_options={"max_new_tokens": 5})
    summary = run_eval(config, results, progress=False)
    turns, episodes, _ = _tables(results)
    coco = sorted(k for k in imported_rows if k.startswith("coco-") and k != "coco-000003")  # 000003 is excluded
    order = list(range(len(coco)))
    random.Random(0).shuffle(order)
    assert sorted(e[0] for e in episodes) == sorted(coco[i] for i in order[:2])
    assert summary.acc is None and all(e[2] is None and e[3] == 1 and e[5] == "generated" for e in episodes)
    for turn in turns:
        row = imported_rows[turn[0]]
        assert turn[5] == row["question"] and turn[7] is None and turn[6] != ""  # no options, no verdicts
        assert turn[4] == row["states"][row["first_state"]]["frame"]


def test_results_file_carries_the_views(imported_dir, tmp_path):
    import duckdb

    from proactivebench.eval.runner import EvalConfig, run_eval

    results = tmp_path / "r.duckdb"
    run_eval(EvalConfig(str(imported_dir), "baseline:oracle"), results, progress=False)
    with duckdb.connect(str(results), read_only=True) as con:  # a plain client, no proactivebench code
        (avg,) = con.execute("SELECT avg_acc FROM table1").fetchone()
    assert avg == 100.0


def test_merge_command(imported_dir, tmp_path, capsys):
    from proactivebench.cli import main

    shards = []
    for index in range(2):
        path = tmp_path / f"s{index}.duckdb"
        run_eval(EvalConfig(str(imported_dir), "baseline:random", shard=(index, 2), seed=3), path, progress=False)
        shards.append(str(path))
    full = tmp_path / "full.duckdb"
    run_eval(EvalConfig(str(imported_dir), "baseline:random", seed=3), full, progress=False)
    out = tmp_path / "m.duckdb"
    assert main(["merge", *shards, shards[0], "--out", str(out)]) == 0
    assert "10 episodes (10 added)" in capsys.readouterr().out
    assert _tables(out)[:2] == _tables(full)[:2]
    before = out.read_bytes()
    assert main(["merge", *shards, "--out", str(out)]) == 2  # an existing file is not touched unasked
    assert "--update" in capsys.readouterr().err and out.read_bytes() == before
    assert main(["merge", *shards, "--out", str(out), "--update"]) == 0  # idempotent
    assert "(0 added)" in capsys.readouterr().out and _tables(out)[:2] == _tables(full)[:2]
    import duckdb

    other = tmp_path / "other.duckdb"
    con = duckdb.connect(str(other))
    con.execute("CREATE TABLE runs (run_id VARCHAR)")
    con.close()
    assert main(["merge", shards[0], str(other), "--out", str(tmp_path / "x.duckdb")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "other.duckdb: not a proactivebench results file" in err
    assert not (tmp_path / "x.duckdb").exists() and not list(tmp_path.glob(".x.duckdb*"))
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["merge", shards[0], "--out", str(tmp_path / "notes.txt")]) == 2
    assert (tmp_path / "notes.txt").read_text() == "mine"
