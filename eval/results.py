"""The results store: one DuckDB file with the tables of docs/architecture.md §5 (a contract; views: analytics)."""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proactivebench.safe_files import OutputFolder

from proactivebench.engine import STOP_ERROR

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY, model VARCHAR, backend VARCHAR, mode VARCHAR, hint BOOLEAN, ablation VARCHAR,
    dataset VARCHAR, dataset_revision VARCHAR, config_json VARCHAR, started_at TIMESTAMP, finished_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS turns (
    run_id VARCHAR, sample_id VARCHAR, source VARCHAR, turn INTEGER, state INTEGER, frame INTEGER, prompt VARCHAR,
    output VARCHAR, option_verdict VARCHAR, category_verdict VARCHAR, chosen_kind VARCHAR, chosen_text VARCHAR,
    error VARCHAR, latency_s DOUBLE
);
CREATE TABLE IF NOT EXISTS episodes (
    run_id VARCHAR, sample_id VARCHAR, source VARCHAR, correct BOOLEAN, num_turns INTEGER,
    proactive_suggestions INTEGER, stop_reason VARCHAR
);
CREATE TABLE IF NOT EXISTS judgments (
    run_id VARCHAR, sample_id VARCHAR, judge_model VARCHAR, raw VARCHAR, proactive_suggestion INTEGER,
    category_prediction INTEGER, aggregate INTEGER
);
"""


@contextmanager
def damaged_file_errors(path: str | Path):
    """A truncated or corrupt results file fails when DuckDB reaches the damaged block, at any query: one line
    naming the file instead of DuckDB's traceback."""
    import duckdb

    try:
        yield
    except (duckdb.IOException, duckdb.SerializationException, duckdb.InternalException, duckdb.FatalException) as error:
        raise ValueError(f"{path}: damaged or truncated results file ({str(error).splitlines()[0]})") from None


def open_read_only(path: str | Path):
    """An existing results file, read-only; a missing or non-DuckDB file is a one-line error naming it."""
    import duckdb

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"results file not found: {path}")
    try:
        return duckdb.connect(str(path), read_only=True)
    except duckdb.Error as error:
        raise ValueError(f"{path}: cannot open as a DuckDB results file ({str(error).splitlines()[0]})") from None


def connect(path: str | Path, read_only: bool = False):
    """Open (and create the tables of) a results file."""
    import duckdb

    connection = duckdb.connect(str(path), read_only=read_only)
    if not read_only:
        try:
            _check_existing(connection, Path(path))
        except BaseException:
            connection.close()
            raise
        connection.execute(SCHEMA_SQL)
    return connection


def _check_existing(connection, path: Path) -> None:
    """A database that already holds tables must hold ours, as this version writes them: another program's
    DuckDB file is refused before a single table is added to it."""
    tables = connection.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' AND table_type = 'BASE TABLE'"
    ).fetchone()[0]
    if tables:
        from .merge import check_schema, expected_schema

        check_schema(connection, None, path, expected_schema())


# --- writing and resuming ---------------------------------------------------------------------------------------

TURN_COLUMNS = (
    "run_id", "sample_id", "source", "turn", "state", "frame", "prompt", "output", "option_verdict",
    "category_verdict", "chosen_kind", "chosen_text", "error", "latency_s",
)
EPISODE_COLUMNS = ("run_id", "sample_id", "source", "correct", "num_turns", "proactive_suggestions", "stop_reason")
JUDGMENT_COLUMNS = (
    "run_id", "sample_id", "judge_model", "raw", "proactive_suggestion", "category_prediction", "aggregate",
)


@dataclass
class RunInfo:
    """A row of `runs`."""

    run_id: str
    model: str
    backend: str
    mode: str
    hint: bool
    ablation: str | None
    dataset: str
    dataset_revision: str | None
    config: dict[str, Any] = field(default_factory=dict)


def run_id_for(identity: dict[str, Any]) -> str:
    """A short stable id from what defines a run's outputs, so a rerun of the same command finds and resumes it."""
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()
    return digest[:16]


def _insert(connection, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """Rows in one columnar insert: DuckDB's `executemany` binds row by row, ~100x slower for a commit group."""
    if rows:
        import pyarrow as pa

        data = pa.Table.from_arrays([pa.array(list(values)) for values in zip(*rows)], names=list(columns))
        connection.register("_pb_rows", data)
        try:
            connection.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM _pb_rows")
        finally:
            connection.unregister("_pb_rows")


def completed_ids(path: str | Path, run_id: str) -> set[str]:
    """Sample ids of the run's complete episodes in a results file (none if the file does not exist yet)."""
    import duckdb

    if not Path(path).is_file():
        return set()
    try:
        connection = duckdb.connect(str(path), read_only=True)
    except duckdb.IOException as error:
        raise ValueError(f"cannot open results file {path}: {str(error).splitlines()[0]}") from None
    try:
        rows = connection.execute("SELECT sample_id FROM episodes WHERE run_id = ?", [run_id]).fetchall()
    except duckdb.CatalogException:
        rows = []
    finally:
        connection.close()
    return {r[0] for r in rows}


class ResultsWriter:
    """Writes one run into a results file as it goes, and resumes it.

    Invariant: an `episodes` row is committed in the same transaction as its episode's last turn, so on
    resume the episodes present are complete and any turn without an episode row belongs to an episode that
    was cut off: those turns are deleted and the episode runs again. Nothing is lost or written twice.
    Episodes that ended in a backend error (stop_reason "error") are deleted on resume too and run again.
    """

    def __init__(self, path: str | Path, run: RunInfo):
        import duckdb

        self.path, self.run = Path(path), run
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with damaged_file_errors(self.path):
                self.connection = connect(self.path)
        except duckdb.IOException as error:  # another process holds the file
            raise ValueError(f"cannot open results file {self.path}: {str(error).splitlines()[0]}") from None

    def start(self) -> set[str]:
        """Create or reopen the run; returns the sample ids already complete (to skip)."""
        with damaged_file_errors(self.path):
            return self._start()

    def _start(self) -> set[str]:
        con, run = self.connection, self.run
        con.execute("BEGIN")
        exists = con.execute("SELECT 1 FROM runs WHERE run_id = ?", [run.run_id]).fetchone()
        config = json.dumps(run.config, sort_keys=True, default=str)
        if exists:  # resuming: keep started_at, record this invocation's settings (limit/shard/batch may differ)
            con.execute(
                "UPDATE runs SET config_json = ?, finished_at = NULL WHERE run_id = ?", [config, run.run_id]
            )
        else:
            con.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, current_timestamp, NULL)",
                [run.run_id, run.model, run.backend, run.mode, run.hint, run.ablation, run.dataset,
                 run.dataset_revision, config],
            )
        # An episode that ended in a backend error is a failure, not a result: it runs again (a deterministic
        # error fails again and is recorded again). Its judgment (the judge scores an error 0) goes with it.
        retry = "SELECT sample_id FROM episodes WHERE run_id = ? AND stop_reason = ?"
        con.execute(f"DELETE FROM judgments WHERE run_id = ? AND sample_id IN ({retry})", [run.run_id, run.run_id, STOP_ERROR])
        con.execute("DELETE FROM episodes WHERE run_id = ? AND stop_reason = ?", [run.run_id, STOP_ERROR])
        con.execute(
            "DELETE FROM turns WHERE run_id = ? AND sample_id NOT IN (SELECT sample_id FROM episodes WHERE run_id = ?)",
            [run.run_id, run.run_id],
        )
        done = {r[0] for r in con.execute("SELECT sample_id FROM episodes WHERE run_id = ?", [run.run_id]).fetchall()}
        con.execute("COMMIT")
        return done

    def completed(self) -> list[tuple[str, bool | None, int]]:
        """(source, correct, proactive_suggestions) of every complete episode of the run (for running metrics)."""
        return self.connection.execute(
            "SELECT source, correct, proactive_suggestions FROM episodes WHERE run_id = ?", [self.run.run_id]
        ).fetchall()

    def write(self, turns: list[dict], episodes: list[dict]) -> None:
        """One step of the runner: its turns and the episodes they finished, atomically."""
        con = self.connection
        con.execute("BEGIN")
        try:
            _insert(con, "turns", TURN_COLUMNS, [tuple(t.get(c) for c in TURN_COLUMNS) for t in turns])
            _insert(con, "episodes", EPISODE_COLUMNS, [tuple(e.get(c) for c in EPISODE_COLUMNS) for e in episodes])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def finish(self) -> None:
        self.connection.execute("UPDATE runs SET finished_at = current_timestamp WHERE run_id = ?", [self.run.run_id])

    def close(self) -> None:
        self.connection.close()


class JudgmentWriter:
    """Writes judgments of one judge; resumes by skipping (run, sample) pairs it already judged."""

    def __init__(self, connection, judge_model: str):
        self.connection, self.judge_model = connection, judge_model

    def done(self, run_id: str) -> set[str]:
        rows = self.connection.execute(
            "SELECT sample_id FROM judgments WHERE run_id = ? AND judge_model = ?", [run_id, self.judge_model]
        ).fetchall()
        return {r[0] for r in rows}

    def write(self, rows: list[dict]) -> None:
        con = self.connection
        con.execute("BEGIN")
        try:
            _insert(con, "judgments", JUDGMENT_COLUMNS, [tuple(r.get(c) for c in JUDGMENT_COLUMNS) for r in rows])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise


EXPORT_TABLES = ("runs", "turns", "episodes", "judgments")
EXPORT_FLAG = "--export-parquet"


def check_export_dir(out_dir: str | Path) -> None:
    """Refuse (one line) an export folder of the user's, or a `<table>.parquet` there this tool did not write."""
    OutputFolder.check(out_dir, EXPORT_FLAG).check_replaceable([Path(out_dir) / f"{t}.parquet" for t in EXPORT_TABLES])


def export_parquet(path: str | Path, out_dir: str | Path) -> list[Path]:
    """Every results table as `<out_dir>/<table>.parquet` (the design's parquet export), through the folder's
    manifest: a file the tool did not write is never replaced."""
    check_export_dir(out_dir)
    folder = OutputFolder.claim(out_dir, EXPORT_FLAG)
    connection = connect(path, read_only=True)
    files = []
    try:
        for table in EXPORT_TABLES:
            with folder.member(f"{table}.parquet") as temporary:
                quoted = str(temporary).replace("'", "''")
                connection.execute(f"COPY (SELECT * FROM {table}) TO '{quoted}' (FORMAT parquet)")
            files.append(folder.root / f"{table}.parquet")
    finally:
        connection.close()
        folder.undo_claim()
    return files


def merge_results(inputs: list[str | Path], out: str | Path, update: bool = False) -> "MergeReport":
    """Merge results files (the shards of one run from several machines or ranks) into `out`: see merge.py."""
    from .merge import merge_files

    return merge_files(inputs, out, update=update)
