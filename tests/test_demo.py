"""The demo end to end into a temporary folder, checking each stage's output."""

import json

import duckdb
from PIL import Image

from proactivebench.demo import BASELINES, FILTER_ROSTER, run_demo
from proactivebench.sources import SOURCE_NAMES
from proactivebench.store import count_rows


def test_demo_runs_the_whole_pipeline(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FIFTYONE_DATABASE_DIR", str(tmp_path / "fiftyone-db"))
    out = tmp_path / "demo"
    assert run_demo(out) == 0
    printed = capsys.readouterr().out

    assert sorted(p.name for p in (out / "raw").iterdir() if not p.name.startswith(".")) == sorted(SOURCE_NAMES)
    built = count_rows(out / "built")
    assert set(built) == set(SOURCE_NAMES) and all(splits["test"] > 0 for splits in built.values())
    # The baselines of the filtering roster plus the tiny transformers model (the test environment has torch).
    assert len(list((out / "predictions").glob("*.parquet"))) == len(FILTER_ROSTER) + 1

    bench = count_rows(out / "benchmark")
    pool = sum(s["test"] for s in built.values())
    assert sum(s.get("test", 0) + s.get("excluded", 0) for s in bench.values()) == pool
    assert json.loads((out / "benchmark" / "filter_report.json").read_text())
    assert "load_dataset:" in printed and "nothing uploaded" in printed

    with duckdb.connect(str(out / "results.duckdb"), read_only=True) as con:
        runs = con.execute("SELECT model, mode FROM runs").fetchall()
        assert len(runs) == 2 * len(BASELINES) + 1
        assert con.execute("SELECT count(*) FROM runs WHERE backend = 'hf'").fetchone()[0] == 1
        oracle = con.execute(
            "SELECT avg(correct::INT) FROM episodes JOIN runs USING (run_id) WHERE model = 'oracle' AND mode = 'mcqa'"
        ).fetchone()[0]
        abstain = con.execute(
            "SELECT avg(correct::INT) FROM episodes JOIN runs USING (run_id) "
            "WHERE model = 'always-abstain' AND mode = 'mcqa'"
        ).fetchone()[0]
    assert oracle == 1.0 and abstain == 0.0
    assert "table1" in printed
    plots = sorted((out / "plots").glob("*.png"))
    assert plots and all(Image.open(p).size[0] > 100 for p in plots)
    assert "demo finished" in printed
    page = (out / "report.html").resolve()
    assert f"the report page (opens offline in any browser): {page}" in printed
    assert '<script type="application/json" id="data">' in page.read_text() and "data:image/jpeg;base64," in page.read_text()
