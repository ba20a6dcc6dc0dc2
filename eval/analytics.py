"""The paper's tables and figures as DuckDB views over the results tables (docs/architecture.md §5).

Every view is plain SQL, so a results file opened in the DuckDB CLI, a notebook or `report` answers the same
queries. `create_views(con)` (re)creates them idempotently; docs/results_tables.md documents every column.

Decisions, documented once here and in the docs:
- A *run* (a row of `table1`) is an experiment setting, not a `run_id`: model + mode + hint + ablation + the
  config variant (`VARIANT_KEYS` of `config_json`) + dataset. Shards and re-runs of one setting merge; where a
  sample was evaluated more than once, the latest run (by `started_at`) wins, so a re-run replaces, never doubles.
- Averages over sources are macro averages (the paper's "avg" column), over the sources a run evaluated.
- `action_distribution` counts every turn (every choice a model made), not only the final one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from proactivebench.filter_rule import DEFAULT_THRESHOLD, check_threshold, prediction_files, solve_rate_sql, split_sql
from proactivebench.sources import SOURCE_NAMES, SOURCES


# config_json keys that make a run a different experiment, with the value that means "the default" (left out of
# the run label so old runs without the key group with new runs that record the default). Add a key here when a
# new eval option changes what is measured; bookkeeping keys (batch size, shard, limit) must stay out.
VARIANT_KEYS: dict[str, str] = {
    "history": "false",  # conversation history (docs/protocol.md §5.1)
    "shots": "0",  # in-context examples (docs/protocol.md §5.2)
    "cot": "false",  # shots with the chain-of-thought prefix (eval/fewshot.py)
    "reduce_shots": "false",  # shots reduced to first and last step
    "history_size": "224",  # history image short edge (only recorded with history)
    "shot_size": "",  # shot image short edge; null: the scenario's ICL size
    "parser": "paper",  # the lenient parser is an option, never the default
    "split": "test",  # the filtered benchmark; `excluded` / `train` are other populations
}

# Modes that are not the multi-turn MCQA benchmark; any other mode (mcqa, or a variant recorded as a mode) is.
SINGLE_TURN_MODES = ("reference", "oeg")
# Columns that identify a setting (and a row of table1 / oeg_table).
SETTING_COLUMNS = "run, model, mode, hint, ablation, variant, dataset"

ANSWER_KINDS = ("proactive", "abstain", "correct_category", "wrong_category", "unparsed", "error")


@dataclass(frozen=True)
class View:
    name: str
    sql: str
    description: str
    public: bool = True  # printed by `report`; helper views are queryable but not printed


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _by_source() -> str:
    """ORDER BY term: the paper's source order, unknown sources after, 'all' last."""
    names = ", ".join(_quote(n) for n in SOURCE_NAMES)
    return f"coalesce(list_position([{names}], source), {len(SOURCE_NAMES) + 1} + (source = 'all')::INTEGER), source"


def _variant_sql() -> str:
    config = "CASE WHEN json_valid(r.config_json) THEN r.config_json END"
    parts = []
    for key, default in VARIANT_KEYS.items():
        value = f"json_extract_string({config}, {_quote('$.' + key)})"
        parts.append(f"CASE WHEN coalesce({value}, {_quote(default)}) <> {_quote(default)} "
                     f"THEN {_quote(key + '=')} || {value} END")
    return f"concat_ws(' ', {', '.join(parts)})"


def _wide(metrics: tuple[str, ...], long_view: str, keys: str, count: str) -> str:
    """One column per source and metric in the paper's source order, plus the macro average."""
    columns = [
        f"max({metric}) FILTER (WHERE source = {_quote(source)}) AS {source}_{metric}"
        for source in SOURCE_NAMES for metric in metrics
    ]
    columns += [f"avg({metric}) AS avg_{metric}" for metric in metrics]
    return (f"SELECT {keys}, {', '.join(columns)}, count(*) AS sources, sum(n)::BIGINT AS {count} "
            f"FROM {long_view} GROUP BY ALL ORDER BY run")


def _action_share(action: str) -> str:
    return f"100 * avg((action = {_quote(action)})::INTEGER) AS {action}"


def result_views() -> list[View]:
    """The views over the four results tables, in dependency order."""
    return [
        View("run_settings", f"""
            WITH normalized AS (
                SELECT r.run_id, r.model, r.mode, coalesce(r.hint, false) AS hint,
                       CASE WHEN coalesce(r.ablation, '') IN ('', 'none') THEN '' ELSE r.ablation END AS ablation,
                       {_variant_sql()} AS variant, coalesce(r.dataset, '') AS dataset, r.started_at,
                       r.finished_at
                FROM runs r),
            labelled AS (
                SELECT *, concat_ws(' ', CASE WHEN hint THEN '+hint' END, nullif(ablation, ''),
                                    nullif(variant, '')) AS setting
                FROM normalized)
            SELECT *, concat_ws(' ', model, mode, nullif(setting, '')) AS run FROM labelled""",
             "every run_id with its setting and display label `run`", public=False),
        View("episode_results", """
            SELECT s.run, s.model, s.mode, s.hint, s.ablation, s.variant, s.dataset, s.setting, e.*
            FROM episodes e JOIN run_settings s USING (run_id)
            QUALIFY row_number() OVER (
                PARTITION BY s.model, s.mode, s.hint, s.ablation, s.variant, s.dataset, e.sample_id
                ORDER BY s.started_at DESC NULLS LAST, e.run_id DESC) = 1""",
             "one episode per setting and sample: the latest run wins", public=False),
        View("source_accuracy", f"""
            SELECT * FROM (
                SELECT {SETTING_COLUMNS}, setting, source, count(*) AS n,
                       100 * avg(correct::INTEGER) AS acc, avg(proactive_suggestions) AS psr
                FROM episode_results WHERE mode <> 'oeg' GROUP BY ALL)
            ORDER BY run, {_by_source()}""",
             "acc (%) and psr (mean accepted moves) per run and source, every non-OEG mode", public=False),
        View("table1", _wide(("acc", "psr"), "(SELECT * EXCLUDE (setting) FROM source_accuracy "
                                              "WHERE mode <> 'reference')", SETTING_COLUMNS, "episodes"),
             "Table 1: acc and psr per source and their macro average, one row per run"),
        View("reference_gap", f"""
            SELECT model, hint, ablation, variant, dataset, source,
                   r.acc AS reference_acc, p.acc AS proactive_acc, r.acc - p.acc AS gap,
                   r.n AS reference_n, p.n AS proactive_n
            FROM (SELECT * FROM source_accuracy WHERE mode = 'reference') r
            LEFT JOIN (SELECT * FROM source_accuracy WHERE mode = 'mcqa') p
                USING (model, hint, ablation, variant, dataset, source)
            ORDER BY model, hint, ablation, variant, dataset, {_by_source()}""",
             "Fig. 3: reference-frame vs proactive (mcqa) accuracy per model and source"),
        View("action_distribution", f"""
            WITH choices AS (
                SELECT {', '.join('e.' + c.strip() for c in SETTING_COLUMNS.split(','))}, t.source,
                       CASE WHEN coalesce(t.error, '') <> '' THEN 'error'
                            WHEN t.chosen_kind IN ('proactive', 'abstain') THEN t.chosen_kind
                            WHEN t.chosen_kind = 'category' AND t.category_verdict = 'correct'
                                THEN 'correct_category'
                            WHEN t.chosen_kind = 'category' THEN 'wrong_category'
                            ELSE 'unparsed' END AS action
                FROM turns t JOIN episode_results e USING (run_id, sample_id)
                WHERE e.mode NOT IN {SINGLE_TURN_MODES})
            SELECT * FROM (
                SELECT {SETTING_COLUMNS}, coalesce(source, 'all') AS source, count(*) AS turns,
                       {', '.join(_action_share(a) for a in ANSWER_KINDS)}
                FROM choices
                GROUP BY GROUPING SETS (({SETTING_COLUMNS}, source), ({SETTING_COLUMNS})))
            ORDER BY run, source <> 'all', {_by_source()}""",
             "Fig. 4: share (%) of each choice over every MCQA turn, per run and source ('all' pools them)"),
        View("oeg_results", """
            SELECT s.run, s.model, s.mode, s.hint, s.ablation, s.variant, s.dataset, j.*,
                   regexp_extract(j.sample_id, '^(.*)-[^-]+$', 1) AS source
            FROM judgments j JOIN run_settings s USING (run_id)
            QUALIFY row_number() OVER (
                PARTITION BY s.model, s.mode, s.hint, s.ablation, s.variant, s.dataset, j.judge_model, j.sample_id
                ORDER BY s.started_at DESC NULLS LAST, j.run_id DESC) = 1""",
             "one judgment per setting, judge and sample (source from the sample id)", public=False),
        View("oeg_source", f"""
            SELECT * FROM (
                SELECT {SETTING_COLUMNS}, judge_model, source, count(*) AS n,
                       100 * avg(category_prediction) AS cc, 100 * avg(proactive_suggestion) AS ps,
                       100 * avg(aggregate) AS agg
                FROM oeg_results GROUP BY ALL)
            ORDER BY run, judge_model, {_by_source()}""",
             "OEG cc, ps, agg (%) per run, judge and source", public=False),
        View("oeg_table", _wide(("cc", "ps", "agg"), "oeg_source", SETTING_COLUMNS + ", judge_model", "samples"),
             "Table 2: OEG cc, ps and agg per source and their macro average, one row per run and judge"),
    ]


def prediction_views(threshold: float) -> list[View]:
    """Filter statistics over the `predictions` view (first-turn predictions of the curation roster)."""
    threshold = check_threshold(threshold)
    kept = f"{split_sql('solve_rate', repr(threshold))} = 'test'"
    return [
        View("prediction_solve_rates", f"""
            WITH per_model AS (
                SELECT sample_id, any_value(source) AS source, model, bool_or(correct) AS correct
                FROM predictions GROUP BY sample_id, model)
            SELECT sample_id, any_value(source) AS source, count(*) AS models,
                   count(*) FILTER (WHERE correct) AS solved, {solve_rate_sql("correct")} AS solve_rate
            FROM per_model GROUP BY sample_id""",
             "first-turn solve rate per sample: share of roster models right", public=False),
        View("filter_solved", f"""
            WITH per_model AS (
                SELECT source, sample_id, model, max(correct::INTEGER) AS correct
                FROM predictions GROUP BY ALL)
            SELECT * FROM (
                SELECT source, model, count(*) AS samples, sum(correct)::BIGINT AS solved,
                       100 * avg(correct) AS solved_pct
                FROM per_model GROUP BY ALL)
            ORDER BY {_by_source()}, model""",
             "share (%) of samples each roster model solves at the first turn, per source"),
        View("filter_stats", f"""
            SELECT * FROM (
                SELECT coalesce(source, 'all') AS source, count(*) AS samples, max(models) AS models,
                       count(*) FILTER (WHERE {kept}) AS kept,
                       100 * count(*) FILTER (WHERE {kept}) / count(*) AS kept_pct,
                       {threshold!r}::DOUBLE AS threshold
                FROM prediction_solve_rates GROUP BY ROLLUP (source))
            ORDER BY {_by_source()}""",
             "per source: samples, roster size and samples kept (solve rate < threshold, as `curate filter`)"),
    ]


def create_views(con, temporary: bool = False) -> list[str]:
    """Create (or replace) the result views on a connection; `temporary` keeps a read-only file untouched."""
    missing = [t for t in ("runs", "turns", "episodes", "judgments") if not _has_table(con, t)]
    if missing:
        raise ValueError(f"not a results file: missing table(s) {', '.join(missing)}")
    return _create(con, result_views(), temporary)


def attach_predictions(con, directory: str | Path, threshold: float = DEFAULT_THRESHOLD) -> list[str]:
    """Expose a directory of first-turn prediction parquet files as `predictions` plus the filter views.

    The files are those `curate filter` reads (same listing and checks: an unfinished first-turn run is refused).
    The views are temporary: they point at files outside the results file.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"predictions directory not found: {directory}")
    check_threshold(threshold)
    files = prediction_files(directory)
    file_list = ", ".join(_quote(str(f)) for f in files)
    views = [View("predictions", f"SELECT * FROM read_parquet([{file_list}], union_by_name = true)",
                  "the first-turn predictions, one row per model and sample", public=False)]
    return _create(con, views + prediction_views(threshold), temporary=True)


def public_views(con) -> list[View]:
    """The views `report` prints, in order, that exist on this connection."""
    views = [v for v in result_views() + prediction_views(DEFAULT_THRESHOLD) if v.public]
    return [v for v in views if _has_table(con, v.name)]


def save_views(path: str | Path) -> list[str]:
    """Store the result views in a results file, so any DuckDB client can query them (needs write access)."""
    import duckdb

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"results file not found: {path}")
    try:
        con = duckdb.connect(str(path))
    except duckdb.Error as error:
        raise ValueError(f"{path}: cannot open for writing ({str(error).splitlines()[0]})") from None
    try:
        return create_views(con)
    except (ValueError, duckdb.Error) as error:
        raise ValueError(f"{path}: {str(error).splitlines()[0]}") from None
    finally:
        con.close()


def open_results(path: str | Path, predictions: str | Path | None = None,
                 threshold: float = DEFAULT_THRESHOLD):
    """Open a results file read-only with every view attached (temporary), ready for queries."""
    import duckdb

    from .results import open_read_only

    path = Path(path)
    con = open_read_only(path)
    try:
        create_views(con, temporary=True)
    except (ValueError, duckdb.Error) as error:  # e.g. tables of another schema: one line, not a traceback
        con.close()
        raise ValueError(f"{path}: {str(error).splitlines()[0]}") from None
    if predictions is not None:
        try:
            attach_predictions(con, predictions, threshold)  # its errors name the predictions folder or file
        except BaseException:
            con.close()
            raise
    return con


def _create(con, views: list[View], temporary: bool) -> list[str]:
    kind = "TEMPORARY VIEW" if temporary else "VIEW"
    for view in views:
        con.execute(f"CREATE OR REPLACE {kind} {view.name} AS {view.sql}")
    return [v.name for v in views]


def _has_table(con, name: str) -> bool:
    # Covers tables and views, persistent or temporary.
    return con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? "
        "UNION ALL SELECT count(*) FROM duckdb_views() WHERE view_name = ?", [name, name]
    ).fetchall() != [(0,), (0,)]


def source_label(name: str) -> str:
    """The paper's acronym for a source (ROD, VSOD, …), or the name itself for an unknown one."""
    return SOURCES[name].acronym if name in SOURCES else name
