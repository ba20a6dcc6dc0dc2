"""`curate filter`: the paper's first-turn leakage rule, as one DuckDB query over the prediction files.

A sample is excluded when at least `threshold` of the roster answers it right at the first MCQA turn (paper:
25%, i.e. 6 of 22 models). The pool is every `test` and `excluded` row of the input folder; `train` is copied
as it is. The rows are streamed into a new hub folder with `first_turn_solve_rate` filled in, frames untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from proactivebench.filter_rule import (
    DEFAULT_THRESHOLD, PredictionsError, check_threshold, prediction_files, solve_rate_sql, split_sql,
)
from proactivebench.integrity import verify_folder
from proactivebench.sources import SOURCE_NAMES
from proactivebench.safe_files import OutputFolder, check_no_overlap, replace_dir, staged_dir
from proactivebench.store import count_rows, iter_rows, layout, write_card, write_split


POOL_SPLITS = ("test", "excluded")
REPORT_NAME = "filter_report.json"
SHOW = 5  # ids named in an error message


# Predictions that cannot be joined with the dataset as they are (the core's error, under this stage's name).
FilterError = PredictionsError


@dataclass
class FilterReport:
    threshold: float
    models: list[str]
    before: dict[str, int] = field(default_factory=dict)  # pool size per source (test + excluded)
    after: dict[str, int] = field(default_factory=dict)  # kept (test) per source
    excluded: dict[str, int] = field(default_factory=dict)
    input_splits: dict[str, dict[str, int]] = field(default_factory=dict)
    solve_rate: dict[str, float] = field(default_factory=dict)  # sample_id -> share of models right

    def to_json(self) -> dict:
        return {
            "threshold": self.threshold,
            "models": self.models,
            "num_models": len(self.models),
            "counts": {
                s: {"before": self.before[s], "after": self.after[s], "excluded": self.excluded[s]} for s in self.before
            },
            "total": {
                "before": sum(self.before.values()),
                "after": sum(self.after.values()),
                "excluded": sum(self.excluded.values()),
            },
            "input_splits": self.input_splits,
        }

    def table(self) -> str:
        lines = [f"{'source':>11}  {'before':>7}  {'after':>7}  {'excluded':>8}"]
        for source in self.before:
            lines.append(f"{source:>11}  {self.before[source]:>7}  {self.after[source]:>7}  {self.excluded[source]:>8}")
        total = self.to_json()["total"]
        lines.append(f"{'total':>11}  {total['before']:>7}  {total['after']:>7}  {total['excluded']:>8}")
        return "\n".join(lines)


def _sql_list(paths: list[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def _some(values: list, total: int | None = None) -> str:
    total = len(values) if total is None else total
    shown = ", ".join(str(v) for v in values[:SHOW])
    return shown + (f" (and {total - SHOW} more)" if total > SHOW else "")


def pool_files(dataset: Path) -> list[Path]:
    on_disk = layout(dataset)
    files = [p for splits in on_disk.values() for split in POOL_SPLITS for p in splits.get(split, [])]
    if not files:
        raise FilterError(f"{dataset}: no test/excluded shards under data/ (is this a hub-layout folder?)")
    return files


def _check_predictions(con, dataset: Path) -> list[str]:
    """Refuse predictions that do not cover exactly the pool's samples, once per model. Returns the models."""
    duplicates = con.execute(
        """SELECT model, sample_id, count(*) AS n, string_agg(DISTINCT parse_filename(filename), ', ') AS files
           FROM preds GROUP BY model, sample_id HAVING count(*) > 1 ORDER BY model, sample_id"""
    ).fetchall()
    if duplicates:
        model, sample, n, files = duplicates[0]
        raise FilterError(
            f"duplicate predictions: model {model!r} has {n} rows for sample {sample!r} in {files}"
            f" ({len(duplicates)} duplicated (model, sample) pairs)"
        )
    nulls = con.execute(
        """SELECT parse_filename(filename), count(*) FROM preds
           WHERE model IS NULL OR sample_id IS NULL OR correct IS NULL GROUP BY 1 ORDER BY 1"""
    ).fetchall()
    if nulls:
        raise FilterError(f"{nulls[0][0]}: {nulls[0][1]} row(s) with a null model, sample_id or correct")
    models = [m for (m,) in con.execute("SELECT DISTINCT model FROM preds ORDER BY model").fetchall()]
    missing = con.execute(
        """SELECT m.model, count(*), list(p.sample_id ORDER BY p.sample_id)[1:5]
           FROM (SELECT DISTINCT model FROM preds) m CROSS JOIN pool p
           ANTI JOIN preds q ON q.model = m.model AND q.sample_id = p.sample_id
           GROUP BY m.model ORDER BY m.model"""
    ).fetchall()
    if missing:
        details = "; ".join(f"{model!r} lacks {n}: {_some(ids, n)}" for model, n, ids in missing)
        raise FilterError(f"the prediction files do not cover the same samples: {details}")
    unknown = con.execute(
        """SELECT count(DISTINCT sample_id), list(DISTINCT sample_id ORDER BY sample_id)[1:5]
           FROM preds ANTI JOIN pool USING (sample_id)"""
    ).fetchone()
    if unknown[0]:
        raise FilterError(f"predictions for {unknown[0]} sample(s) not in {dataset}: {_some(unknown[1], unknown[0])}")
    wrong_source = con.execute(
        """SELECT q.sample_id, q.source, p.source FROM preds q JOIN pool p USING (sample_id)
           WHERE q.source IS DISTINCT FROM p.source LIMIT 1"""
    ).fetchone()
    if wrong_source:
        raise FilterError(f"sample {wrong_source[0]!r}: predictions say source {wrong_source[1]!r}, dataset {wrong_source[2]!r}")
    return models


# The rule itself: one query over the pool and every prediction file.
SOLVE_RATE_SQL = """
SELECT p.source, p.sample_id,
       count(*) AS models,
       count(*) FILTER (WHERE q.correct) AS solved,
       {rate} AS rate,
       {split} AS split
FROM pool p JOIN preds q USING (sample_id)
GROUP BY p.source, p.sample_id
ORDER BY p.source, p.sample_id
""".format(rate=solve_rate_sql("q.correct"), split=split_sql(solve_rate_sql("q.correct"), "$threshold"))


def solve_rates(dataset: Path | str, predictions: Path | str, threshold: float) -> FilterReport:
    """Check the predictions, then compute each pool sample's first-turn solve rate and its new split."""
    import duckdb

    check_threshold(threshold)
    dataset, predictions = Path(dataset), Path(predictions)
    files = prediction_files(predictions)
    con = duckdb.connect()
    try:
        # Views only read `sample_id`/`source`: DuckDB never touches the frame bytes of the shards.
        con.execute(f"CREATE VIEW pool AS SELECT sample_id, source FROM read_parquet({_sql_list(pool_files(dataset))})")
        con.execute(
            f"CREATE VIEW preds AS SELECT * FROM read_parquet({_sql_list(files)}, union_by_name = true, filename = true)"
        )
        duplicated = con.execute("SELECT sample_id FROM pool GROUP BY 1 HAVING count(*) > 1 LIMIT 1").fetchone()
        if duplicated:
            raise FilterError(f"{dataset}: sample {duplicated[0]!r} appears more than once in test/excluded")
        models = _check_predictions(con, dataset)
        rows = con.execute(SOLVE_RATE_SQL, {"threshold": threshold}).fetchall()
    finally:
        con.close()
    report = FilterReport(threshold=threshold, models=models)
    report.input_splits = {s: {k: v for k, v in c.items() if k in POOL_SPLITS} for s, c in count_rows(dataset).items()}
    for source in SOURCE_NAMES:
        if source in report.input_splits:
            report.before[source] = report.after[source] = report.excluded[source] = 0
    for source, sample_id, _, _, rate, split in rows:
        report.solve_rate[sample_id] = rate
        report.before[source] += 1
        report.after[source] += split == "test"
        report.excluded[source] += split == "excluded"
    return report


def filter_dataset(
    dataset: Path | str, predictions: Path | str, out: Path | str, threshold: float = DEFAULT_THRESHOLD, overwrite: bool = False
) -> FilterReport:
    """Write `out`: `test` = rate < threshold, `excluded` = rate >= threshold, `train` copied; plus the report."""
    dataset, out = Path(dataset), Path(out)
    check_no_overlap(out, "--out", {"--dataset": dataset, "--predictions": predictions})
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not overwrite:
            raise FilterError(f"{out} exists and is not empty (pass --overwrite to replace it)")
        # --overwrite replaces a folder this tool wrote, never files of the user's
        foreign = OutputFolder.check(out, "--out").foreign_files()
        if foreign:
            raise FilterError(
                f"{foreign[0]}: not written by proactivebench; --overwrite would delete it: move it away or pass another --out"
            )
    verify_folder(dataset, frames=True)  # before any work: every split is read (train is copied)
    report = solve_rates(dataset, predictions, threshold)
    threshold_split = {sid: ("excluded" if r >= threshold else "test") for sid, r in report.solve_rate.items()}

    # Built beside `out` and swapped in whole: a failure leaves `out` as it was.
    bar = tqdm(total=2 * sum(report.before.values()), desc="filter", unit="row")
    with staged_dir(out.parent, f"filter-{out.name}") as scratch:
        staging = scratch / "out"
        try:
            _write_filtered(dataset, staging, report, threshold_split, bar)
        finally:
            bar.close()
        replace_dir(staging, out)
    return report


def _write_filtered(dataset: Path, staging: Path, report: FilterReport, threshold_split: dict, bar) -> None:
    """The new folder: pool rows with their solve rate, in the split the threshold gives; train copied."""
    rate = report.solve_rate
    for source in report.before:

        def pooled(source=source):
            for split in POOL_SPLITS:
                for row in iter_rows(dataset, [source], split=split):
                    bar.update(1)
                    yield row

        for split in POOL_SPLITS:
            chosen = (
                {**row, "first_turn_solve_rate": rate[row["sample_id"]]}
                for row in pooled()
                if threshold_split[row["sample_id"]] == split
            )
            write_split(staging, source, split, chosen, render_card=False)
    for source, splits in layout(dataset).items():
        if "train" in splits:  # GRPO data is not part of the filter: copied as it is
            write_split(staging, source, "train", iter_rows(dataset, [source], split="train"), render_card=False)
    write_card(staging)
    OutputFolder(staging).write_json(REPORT_NAME, report.to_json())
