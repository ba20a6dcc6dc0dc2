"""`curate filter`: the 25% rule over prediction files written here, checked against a count in plain Python."""

import json
import random
import shutil
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from proactivebench.cli import main
from proactivebench.curation.filter import REPORT_NAME, FilterError, filter_dataset
from proactivebench.curation.predictions import PREDICTION_SCHEMA
from proactivebench.store import count_rows, iter_rows, read_card_metadata, write_split


def write_predictions(folder, model, verdicts, sources):
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        {"model": model, "sample_id": sid, "source": sources[sid], "output": "A.",
         "verdict": "correct" if ok else "wrong", "correct": ok}
        for sid, ok in verdicts.items()
    ]
    path = folder / f"{model}.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=PREDICTION_SCHEMA), path)
    return path


@pytest.fixture
def bench(imported_dir, imported_rows, tmp_path):
    """The imported sample dataset plus a `train` split, which the filter must leave alone."""
    folder = tmp_path / "bench"
    shutil.copytree(imported_dir, folder)
    write_split(folder, "quickdraw", "train", [r for r in imported_rows.values() if r["source"] == "quickdraw"])
    return folder


@pytest.fixture
def sources(imported_rows):
    return {sid: row["source"] for sid, row in imported_rows.items()}


def roster_verdicts(sources, models=8, seed=3):
    """Random verdicts, plus two samples pinned on the threshold: exactly 2/8 (excluded) and 1/8 (kept)."""
    rng = random.Random(seed)
    ids = sorted(sources)
    verdicts = {f"m{m}": {sid: rng.random() < 0.2 for sid in ids} for m in range(models)}
    on_edge, below = ids[0], ids[1]
    for m in range(models):
        verdicts[f"m{m}"][on_edge] = m < 2
        verdicts[f"m{m}"][below] = m < 1
    return verdicts, on_edge, below


def test_filter_matches_an_independent_count(bench, imported_rows, sources, tmp_path, capsys):
    verdicts, on_edge, below = roster_verdicts(sources)
    for model, v in verdicts.items():
        write_predictions(tmp_path / "preds", model, v, sources)
    out = tmp_path / "filtered"

    assert main(["curate", "filter", "--dataset", str(bench), "--predictions", str(tmp_path / "preds"),
                 "--out", str(out)]) == 0

    # Independent count: plain Python over the files the test wrote.
    solved = Counter()
    for path in (tmp_path / "preds").glob("*.parquet"):
        for row in pq.read_table(path).to_pylist():
            solved[row["sample_id"]] += row["correct"]
    expected_rate = {sid: solved[sid] / len(verdicts) for sid in sources}
    expected_test = {sid for sid, r in expected_rate.items() if r < 0.25}
    assert on_edge not in expected_test and below in expected_test

    test_rows = list(iter_rows(out, split="test"))
    excluded_rows = list(iter_rows(out, split="excluded"))
    assert {r["sample_id"] for r in test_rows} == expected_test
    assert {r["sample_id"] for r in excluded_rows} == set(sources) - expected_test
    for row in test_rows + excluded_rows:
        assert row["first_turn_solve_rate"] == pytest.approx(expected_rate[row["sample_id"]], abs=1e-6)
        original = imported_rows[row["sample_id"]]
        assert [f["bytes"] for f in row["frames"]] == [f["bytes"] for f in original["frames"]]  # byte for byte
        assert row["states"] == original["states"] and row["question"] == original["question"]

    # train is copied untouched (no rate), and the card knows every split.
    train = list(iter_rows(out, ["quickdraw"], split="train"))
    assert len(train) == 1 and train[0]["first_turn_solve_rate"] is None
    assert {c["config_name"] for c in read_card_metadata(out)["configs"]} >= {"default", "full", "coco"}

    # Per-source counts before and after: printed and saved.
    report = json.loads((out / REPORT_NAME).read_text())
    before = Counter(sources.values())
    after = Counter(sources[sid] for sid in expected_test)
    assert report["num_models"] == 8 and report["threshold"] == 0.25
    for source, n in before.items():
        assert report["counts"][source] == {"before": n, "after": after[source], "excluded": n - after[source]}
    assert report["total"] == {"before": 11, "after": len(expected_test), "excluded": 11 - len(expected_test)}
    printed = capsys.readouterr().out
    assert "before" in printed and f"{'total':>11}  {11:>7}  {len(expected_test):>7}" in printed
    assert count_rows(out)["coco"].get("test", 0) == after["coco"]


def test_threshold_is_configurable(bench, sources, tmp_path):
    verdicts, on_edge, _ = roster_verdicts(sources)
    for model, v in verdicts.items():
        write_predictions(tmp_path / "preds", model, v, sources)
    report = filter_dataset(bench, tmp_path / "preds", tmp_path / "out", threshold=0.3)
    assert report.solve_rate[on_edge] == 0.25
    assert on_edge in {r["sample_id"] for r in iter_rows(tmp_path / "out", split="test")}  # 0.25 < 0.3: kept


def test_refuses_predictions_that_miss_samples(bench, sources, tmp_path, capsys):
    verdicts, _, _ = roster_verdicts(sources, models=3)
    missing = sorted(sources)[-1]
    del verdicts["m1"][missing]
    for model, v in verdicts.items():
        write_predictions(tmp_path / "preds", model, v, sources)
    code = main(["curate", "filter", "--dataset", str(bench), "--predictions", str(tmp_path / "preds"),
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0
    assert "do not cover the same samples" in err and "'m1' lacks 1" in err and missing in err
    assert not (tmp_path / "out").exists()


def test_refuses_duplicate_prediction_rows(bench, sources, tmp_path):
    verdicts, _, _ = roster_verdicts(sources, models=2)
    write_predictions(tmp_path / "preds", "m0", verdicts["m0"], sources)
    path = write_predictions(tmp_path / "preds", "m1", verdicts["m1"], sources)
    table = pq.read_table(path)
    pq.write_table(pa.concat_tables([table, table.slice(4, 1)]), path)  # one row twice
    with pytest.raises(FilterError, match=r"duplicate predictions: model 'm1' has 2 rows for sample .* in m1\.parquet"):
        filter_dataset(bench, tmp_path / "preds", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_refuses_unknown_samples_and_bad_files(bench, sources, tmp_path):
    verdicts, _, _ = roster_verdicts(sources, models=1)
    write_predictions(tmp_path / "preds", "m0", {**verdicts["m0"], "coco-999999": True}, {**sources, "coco-999999": "coco"})
    with pytest.raises(FilterError, match="1 sample.*not in .*coco-999999"):
        filter_dataset(bench, tmp_path / "preds", tmp_path / "out")
    (tmp_path / "preds" / "m0.parquet").write_bytes(b"not parquet")
    with pytest.raises(FilterError, match="m0.parquet: not a readable parquet file"):
        filter_dataset(bench, tmp_path / "preds", tmp_path / "out")
    with pytest.raises(FilterError, match=r"threshold must be in \(0, 1\]"):
        filter_dataset(bench, tmp_path / "preds", tmp_path / "out", threshold=0)


def test_out_is_replaced_only_when_asked(bench, sources, tmp_path):
    verdicts, _, _ = roster_verdicts(sources, models=2)
    for model, v in verdicts.items():
        write_predictions(tmp_path / "preds", model, v, sources)
    filter_dataset(bench, tmp_path / "preds", tmp_path / "out")
    with pytest.raises(FilterError, match="exists and is not empty"):
        filter_dataset(bench, tmp_path / "preds", tmp_path / "out")
    with pytest.raises(ValueError, match="is inside the --dataset folder"):
        filter_dataset(bench, tmp_path / "preds", bench / "sub")
    report = filter_dataset(bench, tmp_path / "preds", tmp_path / "out", threshold=1.0, overwrite=True)
    assert sum(report.after.values()) == 11 - sum(1 for sid in sources if all(v[sid] for v in verdicts.values()))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no scratch left behind


def test_refuses_while_a_first_turn_run_is_unfinished(bench, imported_dir, sources, tmp_path):
    from proactivebench.curation.first_turn import first_turn

    verdicts, _, _ = roster_verdicts(sources, models=2)
    for model, v in verdicts.items():
        write_predictions(tmp_path / "preds", model, v, sources)
    parts = tmp_path / "preds" / ".baseline--oracle.parts"
    first_turn(imported_dir, "baseline:oracle", tmp_path / "scratch")  # a finished file, moved in as a part
    parts.mkdir()
    (tmp_path / "scratch" / "baseline--oracle.parquet").rename(parts / "part-0.parquet")
    with pytest.raises(FilterError, match=r"unfinished first-turn run\(s\) .baseline--oracle.parts"):
        filter_dataset(bench, tmp_path / "preds", tmp_path / "out")
