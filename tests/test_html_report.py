"""`report --html`: the page's numbers are the analytics views', its intervals are seeded bootstrap intervals, its
published rows are the package data, its trajectories are capped; and `report --format csv|json` carries the CIs."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import subprocess
from datetime import datetime

import duckdb
import pytest
from PIL import Image

from proactivebench.cli import main
from proactivebench.eval import analytics
from proactivebench.eval.bootstrap import table1_intervals
from proactivebench.eval.html_report import model_key, published
from proactivebench.sources import SOURCE_NAMES

LLAVA_OV = "hf:llava-hf/llava-onevision-qwen2-7b-ov-hf"


@pytest.fixture(scope="module")
def results(imported_dir, tmp_path_factory):
    """Real eval runs on the imported sample release; the random run is relabelled as LLaVA-OV-7B (a name the
    paper publishes) and an OEG run of it is judged, so every section of the page has rows."""
    path = tmp_path_factory.mktemp("html") / "results.duckdb"
    for argv in (["--model", "baseline:random", "--seed", "3"],
                 ["--model", "baseline:always-proactive"],
                 ["--model", "baseline:oracle", "--mode", "reference"],
                 ["--model", "baseline:random", "--mode", "oeg"]):
        assert main(["eval", "--dataset", str(imported_dir), "--results", str(path), *argv]) == 0
    with duckdb.connect(str(path)) as con:
        con.execute("UPDATE runs SET model = ? WHERE model IN ('random', 'oracle')", [LLAVA_OV])
        (oeg_run,) = con.execute("SELECT run_id FROM runs WHERE mode = 'oeg'").fetchone()
        samples = [s for (s,) in con.execute("SELECT sample_id FROM episodes WHERE run_id = ? ORDER BY sample_id",
                                             [oeg_run]).fetchall()]
        con.executemany("INSERT INTO judgments VALUES (?, ?, 'judge-x', 'raw', ?, ?, ?)",
                        [(oeg_run, s, i % 2, int(i % 3 == 0), int(i % 2 or i % 3 == 0)) for i, s in enumerate(samples)])
    return path


def page_data(html: str) -> dict:
    match = re.search(r'<script type="application/json" id="data">(.*?)</script>', html, re.S)
    assert match, "no embedded data blob"
    return json.loads(match.group(1))


@pytest.fixture(scope="module")
def page(results, imported_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("page") / "report.html"
    assert main(["report", "--results", str(results), "--dataset", str(imported_dir), "--html", str(out),
                 "--view", "table1", "--trajectories", "2"]) == 0
    return out


def _records(con, view):
    return json.loads(con.sql(f"SELECT * FROM {view}").df().to_json(orient="records", date_format="iso"))


def test_page_numbers_equal_the_analytics_views(page, results):
    data = page_data(page.read_text())
    with analytics.open_results(results) as con:
        for view in ("reference_gap", "action_distribution", "oeg_table"):
            expected = _records(con, view)
            assert expected, view
            assert data["views"][view] == expected, view
        table1 = _records(con, "table1")
    assert len(data["views"]["table1"]) == len(table1) == 2
    for shown, row in zip(data["views"]["table1"], table1):
        for column, value in row.items():  # every column of the view, unchanged; the page adds only _lo/_hi
            assert shown[column] == value, column
        for column in [c for c in row if c.endswith(("_acc", "_psr")) and row[c] is not None]:
            assert shown[f"{column}_lo"] <= row[column] + 1e-9 <= shown[f"{column}_hi"] + 2e-9, column


def test_published_rows_and_differences(page, results):
    data = page_data(page.read_text())
    paper = published()
    assert data["published"] == paper
    ov = paper["models"]["LLaVA-OV-7B"]
    assert ov["table1"]["avg"] == {"acc": 12.4, "psr": 0.3} and ov["reference"]["mvpn"] == 63.2
    assert ov["oeg"]["imagenet_c"] == {"cc": 2.0, "ps": 18.0}
    with analytics.open_results(results) as con:
        mine = con.execute("SELECT avg_acc, rod_psr FROM table1 WHERE model = ?", [LLAVA_OV]).fetchone()
        ref = dict(con.execute("SELECT source, reference_acc FROM reference_gap WHERE model = ?",
                               [LLAVA_OV]).fetchall())
        oeg = con.execute("SELECT imagenet_c_ps FROM oeg_table WHERE model = ?", [LLAVA_OV]).fetchone()
    by_view = {c["view"]: c for c in data["comparisons"] if c["paper_model"] == "LLaVA-OV-7B"}
    assert by_view.keys() == {"table1", "reference_gap", "oeg_table"}
    assert by_view["table1"]["cells"]["avg_acc"]["diff"] == pytest.approx(mine[0] - 12.4)
    assert by_view["table1"]["cells"]["rod_psr"]["diff"] == pytest.approx(mine[1] - 0.0)
    refs = {k: v for c in data["comparisons"] if c["view"] == "reference_gap" for k, v in c["cells"].items()}
    assert refs["mvpn_reference_acc"]["diff"] == pytest.approx(ref["mvpn"] - 63.2)
    assert by_view["oeg_table"]["cells"]["imagenet_c_ps"]["diff"] == pytest.approx(oeg[0] - 18.0)
    # always-proactive is no published model: no difference row for it
    assert all("always-proactive" not in c.get("run", "") for c in data["comparisons"])


@pytest.mark.parametrize("spec, key", [(LLAVA_OV, "llava-onevision-qwen2-7b-ov-hf"),
                                       ("openai:InternVL3-8B", "internvl3-8b"),
                                       ("hf:/models/llava-1.5-7b-hf/", "llava-1.5-7b-hf")])
def test_model_key(spec, key):
    assert model_key(spec) == key


def test_trajectories_show_the_same_capped_samples_for_every_run_with_thumbnails(page, results):
    traj = page_data(page.read_text())["trajectories"]
    with analytics.open_results(results) as con:
        settings = con.execute("SELECT count(DISTINCT (run, dataset)) FROM episode_results").fetchone()[0]
        per_source = dict(con.execute("SELECT source, count(DISTINCT sample_id) FROM episode_results "
                                      "GROUP BY source").fetchall())
    assert len(traj["runs"]) == settings
    sources = [e["source"] for e in traj["episodes"]]
    assert {s: sources.count(s) for s in set(sources)} == {s: min(n, 2) for s, n in per_source.items()}
    for episode in traj["episodes"]:
        assert len(episode["runs"]) == settings  # every run evaluated every sample here: side by side works
        for run in episode["runs"].values():
            assert run["stop_reason"] and len(run["turns"]) == run["num_turns"]
            for turn in run["turns"]:
                assert isinstance(traj["prompts"][turn["prompt"]], str)
                uri = traj["images"][f"{episode['sample_id']}/{turn['frame']}"]
                assert uri.startswith("data:image/jpeg;base64,")
                with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as image:
                    assert max(image.size) <= 256
    assert traj["total_samples"] == sum(per_source.values())


def test_no_trajectories_and_no_dataset(results, tmp_path):
    out = tmp_path / "r.html"
    assert main(["report", "--results", str(results), "--html", str(out), "--view", "table1",
                 "--trajectories", "0", "--bootstrap", "0"]) == 0
    data = page_data(out.read_text())
    assert data["trajectories"]["episodes"] == [] and data["trajectories"]["images"] == {}
    assert not any(k.endswith("_lo") for k in data["views"]["table1"][0])


def test_bootstrap_is_seeded_and_resamples_within_sources(results):
    with analytics.open_results(results) as con:
        first = table1_intervals(con, resamples=200, seed=1)
        again = table1_intervals(con, resamples=200, seed=1)
        other = table1_intervals(con, resamples=200, seed=2)
        rows = {(r["run"], r["dataset"]): r for r in _records(con, "table1")}
    assert first == again
    for key, intervals in first.items():
        row = rows[key]
        for source in [s for s in SOURCE_NAMES if row[f"{s}_acc"] is not None]:
            acc = intervals[f"{source}_acc"]
            # a source where every episode agrees cannot vary when its own episodes are resampled
            if row[f"{source}_acc"] in (0.0, 100.0):
                assert acc.low == acc.high == row[f"{source}_acc"]
            assert acc.low <= row[f"{source}_acc"] <= acc.high


def test_bootstrap_interval_of_a_larger_source(tmp_path):
    """50 ROD episodes, 20 right (acc 40), suggestions 0..4; 10 COCO episodes all right: the ROD interval is a real
    interval around 40 that moves with the seed, COCO's is [100, 100], and avg's is ROD's shifted by the fixed
    COCO half: (rod + 100) / 2."""
    from proactivebench.eval.results import connect

    path = tmp_path / "r.duckdb"
    con = connect(path)
    con.execute("INSERT INTO runs VALUES ('r', 'm', 'baseline', 'mcqa', false, NULL, 'd', NULL, NULL, NULL, NULL)")
    rows = [("r", f"rod-{i}", "rod", i < 20, 1 + i % 5, i % 5, "x") for i in range(50)]
    rows += [("r", f"coco-{i}", "coco", True, 1, 0, "correct") for i in range(10)]
    con.executemany("INSERT INTO episodes VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    con.close()
    with analytics.open_results(path) as con:
        [first] = table1_intervals(con, resamples=500, seed=1).values()
        [other] = table1_intervals(con, resamples=500, seed=2).values()
    rod = first["rod_acc"]
    assert 20 < rod.low < 40 < rod.high < 60  # binomial sd for n=50, p=0.4 is ~6.9 points
    assert first["coco_acc"].low == first["coco_acc"].high == 100.0
    assert first["avg_acc"].low == pytest.approx((rod.low + 100) / 2)
    assert first["avg_acc"].high == pytest.approx((rod.high + 100) / 2)
    assert first["rod_psr"].low < 2.0 < first["rod_psr"].high
    assert first != other


def test_report_csv_and_json_carry_the_intervals(results, capsys):
    capsys.readouterr()
    assert main(["report", "--results", str(results), "--format", "csv", "--view", "table1", "--seed", "5"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {"avg_acc_lo", "avg_acc_hi", "rod_psr_lo", "rod_psr_hi"} <= set(rows[0])
    header = list(rows[0])
    assert header.index("rod_acc_lo") == header.index("rod_acc") + 1  # beside its metric
    assert main(["report", "--results", str(results), "--format", "json", "--view", "table1", "--seed", "5"]) == 0
    payload = json.loads(capsys.readouterr().out)["table1"]
    assert [float(r["avg_acc_lo"]) for r in rows] == pytest.approx([r["avg_acc_lo"] for r in payload])
    assert main(["report", "--results", str(results), "--format", "json", "--view", "table1",
                 "--bootstrap", "0"]) == 0
    assert "avg_acc_lo" not in json.loads(capsys.readouterr().out)["table1"][0]


def test_html_never_overwrites_a_file_it_did_not_write(results, tmp_path, capsys):
    mine = tmp_path / "notes.html"
    mine.write_text("<html>my notes</html>")
    assert main(["report", "--results", str(results), "--html", str(mine), "--view", "table1"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not overwriting" in err[0] and str(mine) in err[0]
    assert mine.read_text() == "<html>my notes</html>"
    page = tmp_path / "page.html"
    for _ in range(2):  # a page we wrote is replaced
        assert main(["report", "--results", str(results), "--html", str(page), "--view", "table1"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.html", "page.html"]  # no temp file left


def test_html_with_a_dataset_that_is_not_a_folder_is_one_line(results, tmp_path, capsys):
    assert main(["report", "--results", str(results), "--html", str(tmp_path / "r.html"), "--view", "table1",
                 "--dataset", str(tmp_path / "missing")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing" in err[0]
    assert not (tmp_path / "r.html").exists()


def test_generated_at_is_utc_timestamp(page):
    stamp = page_data(page.read_text())["meta"]["generated_at"]
    assert datetime.strptime(stamp, "%Y-%m-%d %H:%M UTC")


# --- a real browser -------------------------------------------------------------------------------------------

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PAPER_ROW = (0xFB, 0xF6, 0xE9)  # the background of the published rows inside Table 1 (template.html, --paper)


def _chromium() -> str:
    import shutil

    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("Debian's chromium is not installed, so the page cannot be checked in a real browser: "
                    "run `apt-get install -y chromium` as root (.ci/run does it)")
    return found


def _browser(tmp_path, *args) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    profile.mkdir()
    return subprocess.run([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=180)


def test_page_in_a_real_browser(page, results, tmp_path):
    shot = tmp_path / "shot.png"
    run = _browser(tmp_path, f"--screenshot={shot}", "--window-size=1280,1600", page.as_uri())
    assert shot.is_file(), f"chromium wrote no screenshot: {run.stderr[-2000:]}"
    with Image.open(shot) as image:
        rgb = image.convert("RGB")
        assert rgb.size == (1280, 1600)
        pixels = list(rgb.getdata())
    white = sum(p == (255, 255, 255) for p in pixels)
    assert white < 0.9 * len(pixels), "the screenshot is (almost) blank"
    assert len(set(pixels)) > 200, "the screenshot has hardly any content"
    assert sum(p == PAPER_ROW for p in pixels) > 1000, "the published rows of Table 1 are not on screen"

    dom = _browser(tmp_path, "--dump-dom", page.as_uri()).stdout  # the DOM after the page's script ran
    table = re.search(r'<table id="table1">.*?</table>', dom, re.S)
    assert table, "Table 1 was not rendered"
    with analytics.open_results(results) as con:
        rows = con.execute("SELECT run, avg_acc FROM table1").fetchall()
    for run, avg_acc in rows:
        row = re.search(rf'<tr><td class="run">{re.escape(run)}</td>(.*?)</tr>', table.group(0), re.S)
        assert row, f"no row for {run}"
        shown = [float(v) for v in re.findall(r'<span class="v">([0-9.]+)</span>', row.group(1))]
        assert len(shown) == 8 and shown[-1] == pytest.approx(avg_acc, abs=0.051)  # 7 sources + avg, one decimal
    assert "LLaVA-OV-7B" in table.group(0) and "Δ vs paper" in table.group(0)
    assert "[object" not in dom and 'id="traj"' in dom and "<img" in dom
