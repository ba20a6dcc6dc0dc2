"""QuickDraw raw builder on its native-layout sample: graph rules, rendering, split disjointness, bad input."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from proactivebench.builders import build_runner as runner
from proactivebench.sources.quickdraw import QuickDrawSpec
from proactivebench.builders.sources import quickdraw
from proactivebench.store import iter_rows, split_files

PER_SOURCE = 2


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("qd") / "quickdraw"
    quickdraw.QuickDrawSource().write_sample(folder, PER_SOURCE, seed=0)
    return folder


@pytest.fixture(scope="module")
def built(raw, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("qd-out") / "bench"
    runner.build_source("quickdraw", raw, out, split="test", progress=False)
    runner.build_source("quickdraw", raw, out, split="train", progress=False)
    return out


def rows(out: Path, split: str = "test") -> list[dict]:
    return list(iter_rows(out, ["quickdraw"], split=split))


def ink(frame: dict) -> int:
    return int((np.asarray(Image.open(io.BytesIO(frame["bytes"])).convert("L")) < 128).sum())


def file_records(raw: Path, word: str) -> list[dict]:
    return [json.loads(line) for line in (raw / f"{word}.ndjson").read_text().splitlines()]


def test_sample_is_native_ndjson(raw):
    files = sorted(p.name for p in raw.iterdir())
    assert files == sorted(f"{w}.ndjson" for w in quickdraw.SAMPLE_WORDS)
    record = file_records(raw, "cat")[0]
    assert list(record) == ["word", "countrycode", "timestamp", "recognized", "key_id", "drawing"]
    assert record["key_id"].isdigit() and record["timestamp"].endswith(" UTC")
    for xs, ys in record["drawing"]:  # simplified: integer points in 0..255, aligned to the top left
        assert len(xs) == len(ys) and all(isinstance(v, int) and 0 <= v <= 255 for v in xs + ys)
    points = [v for stroke in record["drawing"] for axis in stroke for v in axis]
    assert min(points) == 0 and max(points) == 255


def test_graph_follows_the_details_rules(built):
    episodes = rows(built)
    assert len(episodes) == quickdraw.TEST_PER_CLASS * len(quickdraw.SAMPLE_WORDS)
    for row in episodes:
        meta = json.loads(row["meta"])
        states, n = row["states"], meta["num_images"]
        proactive = [i for i, o in enumerate(row["options"]) if o["kind"] == "proactive"]
        assert len(proactive) == 1 and row["options"][proactive[0]]["action"] == "details"
        assert [o["kind"] for o in row["options"]].count("abstain") == 1
        assert row["max_turns"] == n == len(states) == len(row["frames"]) >= quickdraw.MIN_STROKES
        assert row["first_state"] == 0 and row["hint"] == QuickDrawSpec.hint_text
        index = row["first_state"]
        for turn in range(n):
            state = states[index]
            assert state["accepts_answer"] and sorted(state["shown"]) == [0, 1]
            if turn == n - 1:  # the last drawing still shows the option, but it leads nowhere
                assert state["moves"] == []
            else:
                assert state["moves"] == [{"option": proactive[0], "to": index + 1}]
                index += 1
        # frame k shows the first strokes_per_frame[k] strokes; the last one is the complete drawing
        assert meta["strokes_per_frame"][-1] == meta["num_strokes"]
        assert row["reference_frame"] == states[-1]["frame"] == n - 1
        amounts = [ink(row["frames"][s["frame"]]) for s in states]
        assert amounts[0] > 0 and amounts == sorted(amounts) and amounts[0] < amounts[-1]
        assert all(f["path"].startswith(f"quickdraw/{meta['word']}/{meta['key_id']}/") for f in row["frames"])
        assert row["answer"] in row["categories"] and len(set(row["categories"])) == 4
        assert row["answer"] == quickdraw.sentence(meta["word"])
        assert row["oeg_answers"] == ["Add more details to the drawing", row["answer"].rstrip(".")]


def test_rendering_matches_the_strokes(built, raw):
    row = rows(built)[0]
    meta = json.loads(row["meta"])
    record = file_records(raw, meta["word"])[meta["line"] - 1]
    assert record["key_id"] == meta["key_id"] == str(row["source_id"])
    expected = quickdraw.render(
        [(tuple(xs), tuple(ys)) for xs, ys in record["drawing"]], len(record["drawing"])
    )
    assert row["frames"][row["reference_frame"]]["bytes"] == expected
    image = Image.open(io.BytesIO(expected))
    assert image.size == (quickdraw.CANVAS, quickdraw.CANVAS) and image.format == "PNG"


def test_splits_are_disjoint_and_follow_file_order(built, raw):
    test, train = rows(built, "test"), rows(built, "train")
    assert len(train) == PER_SOURCE * len(quickdraw.SAMPLE_WORDS)
    test_ids, train_ids = {r["source_id"] for r in test}, {r["source_id"] for r in train}
    assert len(test_ids) == len(test) and not test_ids & train_ids
    for word in quickdraw.SAMPLE_WORDS:
        eligible = [
            int(r["key_id"]) for r in file_records(raw, word) if r["recognized"] and len(r["drawing"]) >= 2
        ]
        ours = {
            name: [r["source_id"] for r in split_rows if json.loads(r["meta"])["word"] == word]
            for name, split_rows in (("test", test), ("train", train))
        }
        assert ours["test"] == eligible[: quickdraw.TEST_PER_CLASS]
        assert ours["train"] == eligible[quickdraw.TEST_PER_CLASS: quickdraw.TEST_PER_CLASS + PER_SOURCE]
    # the sample's unrecognized and one-stroke drawings are never used
    unused = {int(r["key_id"]) for w in quickdraw.SAMPLE_WORDS for r in file_records(raw, w)
              if not r["recognized"] or len(r["drawing"]) < 2}
    assert unused and not unused & (test_ids | train_ids)


def test_deterministic_bytes_and_seed(raw, tmp_path):
    for name in ("a", "b"):
        runner.build_source("quickdraw", raw, tmp_path / name, seed=3, progress=False)
    runner.build_source("quickdraw", raw, tmp_path / "p", seed=3, num_proc=2, progress=False)
    first = [p.read_bytes() for p in split_files(tmp_path / "a", "quickdraw", "test")]
    assert first and first == [p.read_bytes() for p in split_files(tmp_path / "b", "quickdraw", "test")]
    assert first == [p.read_bytes() for p in split_files(tmp_path / "p", "quickdraw", "test")]
    runner.build_source("quickdraw", raw, tmp_path / "c", seed=4, progress=False)
    a, c = rows(tmp_path / "a"), rows(tmp_path / "c")
    assert [r["source_id"] for r in a] == [r["source_id"] for r in c]  # same drawings
    assert [(r["question"], r["categories"]) for r in a] != [(r["question"], r["categories"]) for r in c]


def test_console_names_and_bucket_folder(raw, built, tmp_path):
    folder = tmp_path / "download" / "full" / "simplified"
    folder.mkdir(parents=True)
    for path in raw.iterdir():
        shutil.copy(path, folder / f"full_simplified_{path.name}")
    out = tmp_path / "out"
    report = runner.build_source("quickdraw", tmp_path / "download", out, progress=False)
    assert report.root == str(folder.resolve())
    assert [r["source_id"] for r in rows(out)] == [r["source_id"] for r in rows(built)]


def test_too_few_categories_and_no_files(raw, tmp_path):
    (tmp_path / "few").mkdir()
    for path in sorted(raw.iterdir())[:3]:
        shutil.copy(path, tmp_path / "few" / path.name)
    with pytest.raises(ValueError, match="3 category file"):
        runner.build_source("quickdraw", tmp_path / "few", tmp_path / "out", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"full_simplified_<word>\.ndjson"):
        runner.build_source("quickdraw", tmp_path / "empty", tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


@pytest.fixture
def broken(raw, tmp_path) -> Path:
    """The sample with a malformed ndjson line in the test stretch of house.ndjson."""
    folder = tmp_path / "broken"
    shutil.copytree(raw, folder)
    lines = (folder / "house.ndjson").read_text().splitlines(keepends=True)
    lines.insert(1, '{"word":"house","key_id":"123","drawing":[[[1,2],[3\n')
    (folder / "house.ndjson").write_text("".join(lines))
    return folder


def test_malformed_line_fails_naming_the_file(broken, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(runner.BuildError, match=r"house\.ndjson:2: malformed ndjson line"):
        runner.build_source("quickdraw", broken, out, progress=False)
    assert not out.exists() or not any(out.rglob("*"))  # nothing half-written


def test_malformed_line_is_skipped_and_reported(broken, built, tmp_path):
    out = tmp_path / "out"
    report = runner.build_source("quickdraw", broken, out, on_error="skip", progress=False)
    assert [s.key for s in report.skipped] == ["house.ndjson:2"]
    assert "house.ndjson:2: malformed ndjson line" in report.skipped[0].reason
    saved = json.loads((out / runner.REPORT_NAME).read_text())
    assert saved["quickdraw"]["test"]["skipped"][0]["key"] == "house.ndjson:2"
    # the bad line takes no slot: the same drawings as from the clean files
    assert [r["source_id"] for r in rows(out)] == [r["source_id"] for r in rows(built)]
    # the train build does not report a line that lies in the test stretch
    assert runner.build_source("quickdraw", broken, out, split="train", progress=False).skipped == []


def test_option_pools_parse_like_the_reference():
    """[paper] 13 proactive options; the reference asserts on two DETAILS keys in an option
    (docs/protocol.md §10.9)."""
    from proactivebench.actions import is_abstain, parse_action

    assert len(set(quickdraw.PROACTIVE)) == 13
    for text in quickdraw.PROACTIVE:
        assert sum(key in text.lower() for key in ("details", "quickdraw", "drawing", "sketch")) == 1, text
        assert not is_abstain(text) and parse_action(text, QuickDrawSpec.action_space) == "details"
    assert all(is_abstain(text) for text in quickdraw.ABSTAIN)
