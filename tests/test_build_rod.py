"""ROD raw builder: the sample's archives → occlusion episodes; the missing frame; bad input."""

from __future__ import annotations

import json
import tarfile

import pytest

from build_helpers import (
    assert_frames_decode, assert_no_leftovers, build, episodes, frame_name, option_index, write_sample,
)
from proactivebench.builders.build_runner import BuildError
from proactivebench.sources.rod import MISSING_FRAME


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PROACTIVEBENCH_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def raw(tmp_path):
    return write_sample(tmp_path / "sample", "rod")


def extracted(raw, tmp_path):
    """The archives unpacked as a user would (`tar xzf`), keeping the members' folders."""
    folder = tmp_path / "extracted"
    for archive in sorted(raw.glob("rod_*.tar.gz")):
        with tarfile.open(archive) as tar:
            tar.extractall(folder, filter="data")
    return folder


def test_sample_is_the_native_archives(raw):
    assert sorted(p.name for p in raw.iterdir()) == ["rod_0.tar.gz", "rod_1.tar.gz"]
    with tarfile.open(raw / "rod_0.tar.gz") as tar:
        names = [m.name.rsplit("/", 1)[-1] for m in tar]
    assert "natural_bluebl_greenr-banana-s5.jpg" in names and f"{MISSING_FRAME}.jpg" not in names


def test_episodes_follow_the_scenario(raw, tmp_path):
    report = build("rod", raw, tmp_path / "out")
    assert report.episodes == 4 and not report.skipped
    records = episodes(tmp_path / "out", "rod")
    assert [r.source_id for r in records] == [0, 1, 2, 3]
    for record in records:
        assert_frames_decode(record)
        first = record.states[record.first_state]
        assert frame_name(record, record.first_state).endswith("-s7.jpg")  # central, most occluded
        assert not first.accepts_answer  # no answer at the first turn
        assert all(s.accepts_answer for i, s in enumerate(record.states) if i != record.first_state)
        assert record.frames[record.reference_frame].name.endswith("-s0.jpg")
        assert record.max_turns == 14 and len(record.categories) == 4 and record.answer in record.categories
        left, right = option_index(record, "left"), option_index(record, "right")
        assert [o.kind for o in record.options].count("abstain") == 1
        assert frame_name(record, first.target(left)).endswith("-s6.jpg") or "banana" in record.answer.lower()
        assert frame_name(record, first.target(right)).endswith("-s8.jpg")
        # Walking left 7 times from s7 reaches s0; one more wraps around to s13.
        state = record.first_state
        for _ in range(8):
            state = record.states[state].target(left)
        assert frame_name(record, state).endswith("-s13.jpg")


def test_missing_frame_is_shown_from_its_neighbours(raw, tmp_path):
    build("rod", raw, tmp_path / "out")
    banana = next(r for r in episodes(tmp_path / "out", "rod") if r.meta["tag"] == "natural_bluebl_greenr")
    assert banana.answer == "Banana."
    start = banana.states[banana.first_state]
    left = banana.states[start.target(option_index(banana, "left"))]
    assert banana.frames[left.frame].name.endswith("banana-s5.jpg")  # reached from the right: s6 shows s5
    names = [f.name for f in banana.frames]
    assert not any(n.endswith("-s6.jpg") for n in names)
    assert any(n.endswith("banana-s7.jpg") for n in names)


def test_extracted_folder_builds_the_same_episodes(raw, tmp_path):
    build("rod", raw, tmp_path / "from-tar")
    build("rod", extracted(raw, tmp_path), tmp_path / "from-folder")
    a, b = episodes(tmp_path / "from-tar", "rod"), episodes(tmp_path / "from-folder", "rod")
    assert [(r.question, r.options, r.categories, r.answer) for r in a] == [
        (r.question, r.options, r.categories, r.answer) for r in b
    ]
    assert [f.data for f in a[1].frames] == [f.data for f in b[1].frames]
    assert b[1].meta["image_template"].startswith("ROD/")


def test_same_seed_same_bytes_other_seed_other_questions(raw, tmp_path):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        build("rod", raw, tmp_path / name, seed=seed)
    shard = "data/rod/test-00000-of-00001.parquet"
    assert (tmp_path / "a" / shard).read_bytes() == (tmp_path / "b" / shard).read_bytes()
    assert (tmp_path / "a" / shard).read_bytes() != (tmp_path / "c" / shard).read_bytes()


def test_missing_frame_elsewhere_is_bad_input(raw, tmp_path):
    folder = extracted(raw, tmp_path)
    victim = next(folder.rglob("*-s3.jpg"))
    while "banana" in victim.name:
        victim = next(p for p in folder.rglob("*-s3.jpg") if "banana" not in p.name)
    victim.unlink()
    out = tmp_path / "out"
    with pytest.raises(BuildError, match=r"missing step\(s\) \[3\]") as error:
        build("rod", folder, out)
    assert victim.name.rsplit("-s", 1)[0] in str(error.value)
    assert_no_leftovers(out, "rod")
    report = build("rod", folder, out, on_error="skip")
    assert report.episodes == 3 and len(report.skipped) == 1
    saved = json.loads((out / "build_report.json").read_text())["rod"]["test"]
    assert "missing step(s) [3]" in saved["skipped"][0]["reason"]


def test_truncated_image_is_bad_input(raw, tmp_path):
    folder = extracted(raw, tmp_path)
    victim = sorted(folder.rglob("*-s9.jpg"))[-1]
    victim.write_bytes(victim.read_bytes()[:200])
    out = tmp_path / "out"
    with pytest.raises(BuildError, match=victim.name):
        build("rod", folder, out)
    assert_no_leftovers(out, "rod")
    report = build("rod", folder, out, on_error="skip")
    assert len(report.skipped) == 1 and victim.name in report.skipped[0].reason


def test_no_rod_data_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no ROD data"):
        build("rod", tmp_path, tmp_path / "out")
