"""`proactivebench merge`: results files from many machines, ranks or `--shard I/N` jobs into one file.

Rules: a run keeps its first `runs` row; an episode (run, sample) its first complete copy with exactly that
copy's turns (turns of cut-off episodes, which have no `episodes` row, are left behind: a resume reruns them);
a judgment (run, sample, judge) its first copy. So merging is idempotent and a file given twice adds nothing.
Every input is checked against the results schema first; the output is built in a temporary file next to it
and moved into place (safe_files.atomic_file), so a failed merge leaves nothing half-written, and an existing `--out` is only ever
extended, and only when asked (`update=True`).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from proactivebench.safe_files import atomic_file
from proactivebench.store import one_line

from .results import SCHEMA_SQL, connect

TABLES = ("runs", "turns", "episodes", "judgments")


@dataclass
class MergeReport:
    out: Path
    inputs: int
    runs: int  # rows in the output
    episodes: int
    added_episodes: int  # by this merge


def _columns(connection, catalog: str | None = None) -> dict[str, list[tuple[str, str]]]:
    where = "table_catalog = ?" if catalog else "table_catalog = current_database()"
    rows = connection.execute(
        f"SELECT table_name, column_name, data_type FROM information_schema.columns WHERE {where} "
        "AND table_schema = 'main' ORDER BY table_name, ordinal_position",
        [catalog] if catalog else [],
    ).fetchall()
    tables: dict[str, list[tuple[str, str]]] = {}
    for table, column, kind in rows:
        tables.setdefault(table, []).append((column, kind))
    return tables


def expected_schema() -> dict[str, list[tuple[str, str]]]:
    """The results tables as SCHEMA_SQL creates them (the one definition; nothing hand-copied here)."""
    import duckdb

    connection = duckdb.connect()
    try:
        connection.execute(SCHEMA_SQL)
        return {t: c for t, c in _columns(connection).items() if t in TABLES}
    finally:
        connection.close()


def check_schema(connection, alias: str | None, path: Path, expected: dict) -> None:
    found = _columns(connection, alias)
    for table, columns in expected.items():
        if found.get(table) != columns:
            have = ", ".join(c for c, _ in found.get(table, [])) or "missing"
            raise ValueError(
                f"{path}: not a proactivebench results file of this version (table {table}: {have}; expected "
                f"{', '.join(c for c, _ in columns)})"
            )


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _merge_one(connection, alias: str) -> int:
    connection.execute("BEGIN")
    try:
        connection.execute(
            f"INSERT INTO runs SELECT * FROM {alias}.runs WHERE run_id NOT IN (SELECT run_id FROM runs)"
        )
        connection.execute(
            f"""CREATE TEMP TABLE new_eps AS SELECT DISTINCT run_id, sample_id FROM (
                SELECT run_id, sample_id FROM {alias}.episodes EXCEPT SELECT run_id, sample_id FROM episodes)"""
        )
        added = connection.execute("SELECT count(*) FROM new_eps").fetchone()[0]
        connection.execute(f"INSERT INTO turns SELECT t.* FROM {alias}.turns t JOIN new_eps USING (run_id, sample_id)")
        connection.execute(
            f"INSERT INTO episodes SELECT e.* FROM {alias}.episodes e JOIN new_eps USING (run_id, sample_id)"
        )
        connection.execute(
            f"""INSERT INTO judgments SELECT * FROM {alias}.judgments j WHERE NOT EXISTS (
                SELECT 1 FROM judgments k WHERE k.run_id = j.run_id AND k.sample_id = j.sample_id
                AND k.judge_model = j.judge_model)"""
        )
        connection.execute("DROP TABLE new_eps")
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    return added


def merge_files(inputs: list[str | Path], out: str | Path, update: bool = False) -> MergeReport:
    """Merge `inputs` into `out`; an existing `out` is refused unless `update` (then its rows are all kept)."""
    import duckdb

    out = Path(out)
    paths = [Path(p) for p in inputs]
    if not paths:
        raise ValueError("merge: no input files")
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"results file not found: {path}")
    if out.exists() and not update:
        raise ValueError(f"{out} exists; pass --update to merge into it (its rows are kept), or choose another --out")
    if out.exists() and not out.is_file():
        raise ValueError(f"{out} is not a file")
    out.parent.mkdir(parents=True, exist_ok=True)
    expected = expected_schema()
    # Built in the one safe writer's temporary sibling (proactivebench/safe_files.py): `out` changes only when
    # every input merged; DuckDB's own `<temporary>.wal` beside it goes with it.
    with atomic_file(out) as temporary:
        try:
            return _merge_into(temporary, out, paths, expected)
        finally:
            temporary.with_name(temporary.name + ".wal").unlink(missing_ok=True)


def _merge_into(temporary: Path, out: Path, paths: list[Path], expected: dict) -> MergeReport:
    import duckdb

    if out.exists():
        shutil.copyfile(out, temporary)
        wal = out.with_name(out.name + ".wal")
        if wal.exists():
            shutil.copyfile(wal, temporary.with_name(temporary.name + ".wal"))
    try:
        connection = connect(temporary) if not out.exists() else duckdb.connect(str(temporary))
    except duckdb.Error as error:
        raise ValueError(f"{out}: cannot open as a DuckDB results file ({str(error).splitlines()[0]})") from None
    try:
        if out.exists():
            check_schema(connection, None, out, expected)
        added = 0
        for i, path in enumerate(paths):
            alias = f"src{i}"
            try:
                connection.execute(f"ATTACH {_quote(path.resolve())} AS {alias} (READ_ONLY)")
            except duckdb.Error as error:
                raise ValueError(f"{path}: cannot open as a DuckDB results file ({str(error).splitlines()[0]})") from None
            check_schema(connection, alias, path, expected)
            try:
                added += _merge_one(connection, alias)
            except duckdb.Error as error:  # e.g. a truncated file whose catalog still reads
                raise ValueError(f"{path}: damaged or truncated results file ({one_line(error)})") from None
            connection.execute(f"DETACH {alias}")
        from .analytics import create_views

        create_views(connection)
        runs, episodes = (connection.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("runs", "episodes"))
        connection.execute("CHECKPOINT")
    finally:
        connection.close()
    return MergeReport(out, len(paths), runs, episodes, added)
