"""VSOD raw builder: the sample's OcclusionDataSet-MM20 layout → temporal-occlusion episodes; bad input."""

from __future__ import annotations

import pytest

from build_helpers import (
    assert_frames_decode, assert_no_leftovers, build, episodes, frame_name, option_index, write_sample,
)
from proactivebench.builders.build_runner import BuildError
from proactivebench.builders.scenarios import EntryError
from proactivebench.sources.spec import VIDEO_PRE_PROMPT
from proactivebench.builders.sources.vsod import QUESTIONS, TOP, voc_xml


@pytest.fixture
def raw(tmp_path):
    return write_sample(tmp_path / "sample", "vsod")


def test_sample_is_the_native_layout(raw):
    top = raw / TOP
    frames = sorted(p.relative_to(top).as_posix() for p in (top / "Data" / "test" / "0001").iterdir())
    assert frames[:2] == ["Data/test/0001/0000.jpg", "Data/test/0001/0001.jpg"]
    assert (top / "Annotations" / "test" / "0001" / "0003.xml").read_text().count("<object>") == 1
    assert "<object>" not in (top / "Annotations" / "test" / "0001" / "0000.xml").read_text()


def test_episodes_follow_the_scenario(raw, tmp_path):
    report = build("vsod", raw, tmp_path / "out")
    assert report.episodes == 4 and not report.skipped and not report.dropped
    for record in episodes(tmp_path / "out", "vsod"):
        assert_frames_decode(record)
        assert record.pre_prompt == VIDEO_PRE_PROMPT and record.max_turns == 8
        assert record.question in QUESTIONS[record.meta["question_type"]]
        # Starts on the first fully covered frame; the reference is the nearest clear one.
        assert frame_name(record, record.first_state).endswith("/0003.jpg")
        assert record.frames[record.reference_frame].name.endswith("/0000.jpg")
        assert record.meta["occluder_cover"] == 1.0 and record.meta["strong_occlusions"] is True
        assert all(s.accepts_answer for s in record.states)
        rewind, wait = option_index(record, "rewind"), option_index(record, "forward")
        start = record.states[record.first_state]
        assert frame_name(record, start.target(wait)).endswith("/0004.jpg")
        state = record.first_state
        for _ in range(4):
            state = record.states[state].target(rewind)
        assert frame_name(record, state).endswith("/0007.jpg")  # rewinding past the first frame wraps around
        assert len(record.categories) == 4 and record.answer in record.categories
        assert record.oeg_answers[-1] == record.answer.rstrip(".")


def test_weak_or_unlabelled_videos_are_dropped_and_reported(raw, tmp_path):
    annotations = raw / TOP / "Annotations" / "test" / "0002"
    for xml in annotations.iterdir():  # shrink every occluder box to a sliver: a weak occlusion
        if "<object>" in xml.read_text():
            xml.write_text(voc_xml(xml.stem + ".jpg", "0002", (128, 72), [(0, 0, 20, 72)]))
    labels = raw / TOP / "labels.csv"
    labels.write_text("\n".join(l for l in labels.read_text().splitlines() if not l.startswith("test/0003")) + "\n")
    report = build("vsod", raw, tmp_path / "out")
    assert report.episodes == 2 and not report.skipped
    reasons = {d.key: d.reason for d in report.dropped}
    assert "weak occlusion" in reasons["test/0002"] and "no label" in reasons["test/0003"]


def test_missing_frame_is_bad_input(raw, tmp_path):
    victim = raw / TOP / "Data" / "test" / "0002" / "0005.jpg"
    victim.unlink()
    out = tmp_path / "out"
    with pytest.raises(BuildError, match=r"0002: missing frame\(s\) \[5\]"):
        build("vsod", raw, out)
    assert_no_leftovers(out, "vsod")
    report = build("vsod", raw, out, on_error="skip")
    assert report.episodes == 3 and [s.key for s in report.skipped] == ["test/0002"]


def test_missing_or_malformed_annotation_is_bad_input(raw, tmp_path):
    (raw / TOP / "Annotations" / "test" / "0001" / "0006.xml").unlink()
    (raw / TOP / "Annotations" / "test" / "0004" / "0002.xml").write_text("<annotation><size>")
    with pytest.raises(BuildError, match=r"0006\.xml: missing annotation"):
        build("vsod", raw, tmp_path / "out")
    report = build("vsod", raw, tmp_path / "out", on_error="skip")
    reasons = {s.key: s.reason for s in report.skipped}
    assert "0002.xml: malformed annotation XML" in reasons["test/0004"] and report.episodes == 2


def test_truncated_frame_is_bad_input(raw, tmp_path):
    victim = raw / TOP / "Data" / "test" / "0003" / "0002.jpg"
    victim.write_bytes(victim.read_bytes()[:150])
    with pytest.raises(BuildError, match="0003/0002.jpg"):
        build("vsod", raw, tmp_path / "out")
    assert_no_leftovers(tmp_path / "out", "vsod")


def test_malformed_labels_line_names_the_line(raw, tmp_path):
    labels = raw / TOP / "labels.csv"
    labels.write_text(labels.read_text() + "test/0009,speaker\n")
    with pytest.raises(EntryError, match=r"labels\.csv:6: expected 3 non-empty fields"):
        build("vsod", raw, tmp_path / "out")
    assert_no_leftovers(tmp_path / "out", "vsod")


def test_top_folder_itself_is_accepted(raw, tmp_path):
    report = build("vsod", raw / TOP, tmp_path / "out", limit=1)
    assert report.episodes == 1 and report.root == str(raw / TOP)
