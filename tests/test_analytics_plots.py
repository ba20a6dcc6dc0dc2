"""The report's PNG figures (opened as images) and the results notebook (valid nbformat 4, its cells run)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from proactivebench.cli import main
from proactivebench.eval import analytics
from proactivebench.eval.plots import PLOTS, write_plots

from test_analytics import write_known_results, write_predictions

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "results.ipynb"


def _ink(path: Path) -> tuple[tuple[int, int], float, int]:
    """(size, share of non-white pixels, number of distinct colours) of a PNG."""
    with Image.open(path) as image:
        assert image.format == "PNG"
        pixels = np.asarray(image.convert("RGB"))
    non_white = (pixels < 245).any(axis=2).mean()
    colours = len(np.unique(pixels.reshape(-1, 3), axis=0))
    return (pixels.shape[1], pixels.shape[0]), float(non_white), colours


def _has_colour(path: Path, hex_colour: str, min_pixels: int = 200) -> bool:
    target = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB")).astype(int)
    return int((np.abs(pixels - target).sum(axis=2) < 6).sum()) >= min_pixels


def test_report_plot_writes_every_figure(tmp_path, capsys):
    results = write_known_results(tmp_path / "results.duckdb")
    assert main(["report", "--results", str(results), "--plot", str(tmp_path / "plots"), "--format", "csv"]) == 0
    err = capsys.readouterr().err
    written = sorted(p.name for p in (tmp_path / "plots").iterdir())
    # no temporary files left behind; the manifest lists the tool's figures (proactivebench/safe_files.py)
    assert written == sorted([".proactivebench.json", *(f"{name}.png" for name in PLOTS)])
    for name in PLOTS:
        path = tmp_path / "plots" / f"{name}.png"
        assert f"wrote {path}" in err
        (width, height), ink, colours = _ink(path)
        assert width >= 500 and height >= 200, name
        assert 0.03 < ink < 0.9, f"{name}: {ink:.3f} of the pixels drawn"
        assert colours > 20, name
    # the bars are really there: each action's colour fills a visible area of Fig. 4
    from proactivebench.eval.plots import ACTION_COLORS

    for action, colour in ACTION_COLORS.items():
        assert _has_colour(tmp_path / "plots" / "action_distribution.png", colour), action


def test_plots_skip_views_without_rows(tmp_path):
    from proactivebench.eval.results import connect

    con = connect(tmp_path / "r.duckdb")
    con.execute("INSERT INTO runs (run_id, model, mode) VALUES ('x', 'm', 'mcqa')")
    con.execute("INSERT INTO episodes VALUES ('x', 'coco-1', 'coco', true, 1, 0, 'correct')")
    con.execute("INSERT INTO turns (run_id, sample_id, source, turn, chosen_kind, category_verdict, error) "
                "VALUES ('x', 'coco-1', 'coco', 0, 'category', 'correct', '')")
    con.close()
    with analytics.open_results(tmp_path / "r.duckdb") as con:
        written = write_plots(con, tmp_path / "plots")
    # no reference run and no judgments: only Table 1 and Fig. 4 have something to draw
    assert [p.name for p in written] == ["table1.png", "action_distribution.png"]
    assert all(_ink(p)[1] > 0.03 for p in written)


# --- the notebook ---------------------------------------------------------------------------------------------


def test_notebook_is_valid_nbformat_4():
    notebook = json.loads(NOTEBOOK.read_text())
    assert notebook["nbformat"] == 4 and notebook["nbformat_minor"] >= 4
    assert notebook["metadata"]["kernelspec"]["language"] == "python"
    ids = set()
    for cell in notebook["cells"]:
        assert cell["cell_type"] in {"markdown", "code"}
        assert isinstance(cell["source"], (str, list)) and isinstance(cell["metadata"], dict)
        assert cell["id"] not in ids
        ids.add(cell["id"])
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None  # committed without outputs
    sources = "".join("".join(c["source"]) for c in notebook["cells"])
    for view in ("table1", "reference_gap", "action_distribution", "oeg_table", "filter_stats"):
        assert view in sources


def test_notebook_cells_run_on_a_results_file(tmp_path, monkeypatch):
    """Runs every code cell in order, as a kernel would, on the known results file and predictions."""
    results = write_known_results(tmp_path / "results.duckdb")
    monkeypatch.setenv("PROACTIVEBENCH_RESULTS", str(results))
    monkeypatch.setenv("PROACTIVEBENCH_PREDICTIONS", str(write_predictions(tmp_path / "predictions")))
    monkeypatch.setenv("PROACTIVEBENCH_PLOTS", str(tmp_path / "figures"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict = {"display": lambda *args, **kwargs: None}  # IPython's display, a no-op here
    cells = [c for c in json.loads(NOTEBOOK.read_text())["cells"] if c["cell_type"] == "code"]
    for i, cell in enumerate(cells):
        # IPython magics (`%matplotlib inline`) are the kernel's business, not Python's
        code = "".join(line for line in cell["source"] if not line.lstrip().startswith("%"))
        exec(compile(code, f"<cell {i}>", "exec"), namespace)
    table1 = namespace["table1"]
    assert set(table1["run"]) == {"model-a mcqa", "model-a mcqa history=true", "model-b mcqa"}
    assert table1.set_index("run").loc["model-b mcqa", "avg_acc"] == pytest.approx(100 / 3)
    assert sorted(p.name for p in (tmp_path / "figures").glob("*.png")) == sorted(f"{n}.png" for n in PLOTS)
    namespace["con"].close()


def test_documented_sql_runs(tmp_path):
    """Every statement of the docs' "Your own SQL" block runs against the views (docs stay in step with code)."""
    import re

    doc = (NOTEBOOK.parents[1] / "docs" / "results_tables.md").read_text()
    blocks = re.findall(r"```sql\n(.*?)```", doc, flags=re.S)
    statements = [s.strip() for block in blocks for s in block.split(";") if s.strip()]
    assert len(statements) >= 5
    results = write_known_results(tmp_path / "results.duckdb")
    with analytics.open_results(results) as con:
        for statement in statements:
            con.execute(statement).fetchall()
        documented = set(re.findall(r"^### `(\w+)`", doc, flags=re.M))
        assert documented == {v.name for v in analytics.public_views(con)} - {"filter_stats", "filter_solved"}
