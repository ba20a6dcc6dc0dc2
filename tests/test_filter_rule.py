"""The first-turn leakage rule, once in the core (proactivebench/filter_rule.py): `curate filter` and `report
--predictions` both apply it, so they agree at the boundary."""

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from proactivebench.eval import analytics
from proactivebench.filter_rule import (
    DEFAULT_THRESHOLD, PREDICTION_SCHEMA, PredictionsError, check_threshold, prediction_files, split_sql,
)


def test_a_sample_is_excluded_from_the_threshold_up():
    con = duckdb.connect()
    rows = con.execute(
        f"SELECT r, {split_sql('r', repr(DEFAULT_THRESHOLD))} FROM (VALUES (0.0), (0.24), (0.25), (1.0)) t(r) ORDER BY r"
    ).fetchall()
    assert [split for _, split in rows] == ["test", "test", "excluded", "excluded"]


@pytest.mark.parametrize("bad", [0, -0.1, 1.01])
def test_threshold_outside_zero_one_is_refused(bad):
    with pytest.raises(PredictionsError, match=r"threshold must be in \(0, 1\]"):
        check_threshold(bad)
    assert check_threshold(1) == 1.0


def test_report_keeps_what_the_rule_keeps(tmp_path):
    # 4 models; sample k is solved by k of them: rates 0, 0.25, 0.5, 0.75, 1.
    rows = [
        {"model": f"m{m}", "sample_id": f"coco-00000{k}", "source": "coco", "output": "", "verdict": "",
         "correct": m < k}
        for m in range(4) for k in range(5)
    ]
    for m in range(4):
        mine = [r for r in rows if r["model"] == f"m{m}"]
        pq.write_table(pa.Table.from_pylist(mine, schema=PREDICTION_SCHEMA), tmp_path / f"m{m}.parquet")
    assert [p.name for p in prediction_files(tmp_path)] == [f"m{m}.parquet" for m in range(4)]
    con = duckdb.connect()
    for threshold, kept in ((0.25, 1), (0.5, 2), (1.0, 4)):
        analytics.attach_predictions(con, tmp_path, threshold)
        stats = con.execute("SELECT kept, threshold FROM filter_stats WHERE source = 'all'").fetchone()
        assert stats == (kept, threshold)
