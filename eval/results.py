"""The results store: one DuckDB file with the tables of design §5 (a contract; views are added by analytics)."""

from __future__ import annotations

from pathlib import Path

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


def connect(path: str | Path, read_only: bool = False):
    """Open (and create the tables of) a results file."""
    import duckdb

    connection = duckdb.connect(str(path), read_only=read_only)
    if not read_only:
        connection.execute(SCHEMA_SQL)
    return connection
