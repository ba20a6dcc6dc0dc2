"""Data parallel under torchrun (CPU, gloo): `eval` and `curate first-turn` split the episodes by rank and end
as one results file equal to a single-process run; the rank split itself."""

from __future__ import annotations

import os
import subprocess
import sys

import duckdb
import pyarrow.parquet as pq
import pytest

from proactivebench.cli import main
from proactivebench.eval.ranks import Ranks

TURNS = "run_id, sample_id, turn, state, frame, prompt, output, option_verdict, category_verdict, chosen_kind, error"
EPISODES = "run_id, sample_id, source, correct, num_turns, proactive_suggestions, stop_reason"


def _tables(path):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return [con.execute(f"SELECT {columns} FROM {table} ORDER BY ALL").fetchall()
                for table, columns in (("turns", TURNS), ("episodes", EPISODES), ("runs", "run_id"))]
    finally:
        con.close()


def _torchrun(tmp_path, *args):
    env = {**os.environ, "HF_DATASETS_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "proactivebench.cli", *args]
    process = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr[-3000:]
    return process.stdout


def test_torchrun_eval_equals_a_single_process_run(imported_dir, tmp_path):
    common = ["eval", "--dataset", str(imported_dir), "--model", "baseline:random", "--seed", "2", "--no-progress"]
    parallel = tmp_path / "parallel.duckdb"
    out = _torchrun(tmp_path, *common, "--results", str(parallel), "--batch-size", "2")
    assert "run " in out and "10 episodes" in out  # rank 0 reports the whole run
    assert out.count("results:") == 1 and "rank 1: 5 episodes evaluated" in out
    single = tmp_path / "single.duckdb"
    assert main([*common, "--results", str(single)]) == 0
    assert _tables(parallel) == _tables(single)
    assert not list(tmp_path.glob(".parallel.duckdb.ranks*"))  # the rank files were merged and removed
    con = duckdb.connect(str(parallel), read_only=True)
    assert '"ranks": 2' in con.execute("SELECT config_json FROM runs").fetchone()[0]
    assert con.execute("SELECT count(*) FROM table1").fetchone()[0] == 1  # views are there
    con.close()
    again = _torchrun(tmp_path, *common, "--results", str(parallel))  # a finished run: nothing to do
    assert "10 episodes" in again and _tables(parallel) == _tables(single)


def test_torchrun_first_turn_equals_a_single_process_run(imported_dir, tmp_path):
    _torchrun(tmp_path, "curate", "first-turn", "--dataset", str(imported_dir), "--model", "baseline:random",
              "--out", str(tmp_path / "parallel"))
    assert main(["curate", "first-turn", "--dataset", str(imported_dir), "--model", "baseline:random",
                 "--out", str(tmp_path / "single")]) == 0
    parallel = pq.read_table(tmp_path / "parallel" / "baseline--random.parquet")
    single = pq.read_table(tmp_path / "single" / "baseline--random.parquet")
    assert parallel.num_rows == 11 and parallel.equals(single)
    assert not list((tmp_path / "parallel").glob(".*parts"))


def test_rank_split_and_device():
    ranks = [Ranks.from_env({"RANK": str(r), "WORLD_SIZE": "3", "LOCAL_RANK": str(r)}) for r in range(3)]
    items = list(range(10))
    shares = [r.take(items) for r in ranks]
    assert sorted(sum(shares, [])) == items and all(len(s) in (3, 4) for s in shares)
    assert Ranks.from_env({}).world == 1 and Ranks.from_env({}).take(items) == items
    assert ranks[1].device("cpu") == "cpu"  # asked for explicitly: kept
    import torch

    assert ranks[1].device("auto") == ("cuda:1" if torch.cuda.is_available() else "auto")
    with pytest.raises(ValueError, match="RANK 3 / WORLD_SIZE 2"):
        Ranks.from_env({"RANK": "3", "WORLD_SIZE": "2"})
