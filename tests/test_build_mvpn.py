"""MVP-N raw builder: the sample's data/ layout → viewpoint episodes; class names, look-alikes; bad input."""

from __future__ import annotations

import pytest

from build_helpers import assert_frames_decode, assert_no_leftovers, build, episodes, frame_name, write_sample
from proactivebench.builders.build_runner import BuildError
from proactivebench.builders.sources.mvpn import ROTATE_OPTIONS


@pytest.fixture
def raw(tmp_path):
    return write_sample(tmp_path / "sample", "mvpn", per_source=5)


def test_episodes_follow_the_scenario(raw, tmp_path):
    report = build("mvpn", raw, tmp_path / "out")
    assert report.episodes == 5 and not report.skipped and not report.dropped
    for record in episodes(tmp_path / "out", "mvpn"):
        assert_frames_decode(record)
        views = record.meta["view_files"]
        assert [v[-6:] for v in views] == ["_0.png"] * (len(views) - 1) + ["_1.png"]  # informative view last
        assert record.max_turns == len(views) == len(record.states) == 4
        rotate = next(i for i, o in enumerate(record.options) if o.kind == "proactive")
        assert record.options[rotate].text in ROTATE_OPTIONS and record.options[rotate].action == "rotate"
        state = record.first_state
        for turn in range(record.max_turns):
            informative = turn == record.max_turns - 1
            assert frame_name(record, state).endswith(f"_{int(informative)}.png")
            assert record.states[state].accepts_answer
            if informative:  # the last view shows the option but has no move
                assert rotate in record.states[state].shown and not record.states[state].moves
            else:
                state = record.states[state].target(rotate)
        assert record.frames[record.reference_frame].name == frame_name(record, state)
        # Hard negatives: the look-alike group 0010..0014.
        assert sorted(record.categories) == sorted(set(record.categories))
        assert all(c.startswith("Product 001") for c in record.categories) and record.answer in record.categories


def test_class_names_and_groups_from_a_mapping_file(raw, tmp_path):
    (raw / "classes.csv").write_text(
        "class,name,group\n0010,Shampoo A,g1\n0011,Shampoo B,g1\n0012,Lotion,g2\n0013,Soap,g2\n0014,Gel,g2\n"
        "0015,Soap bar,g2\n0016,Hand soap,g2\n"
    )
    build("mvpn", raw, tmp_path / "out")
    soap = next(r for r in episodes(tmp_path / "out", "mvpn") if r.answer == "Soap.")
    assert len(set(soap.categories)) == 4
    assert set(soap.categories) - {"Soap."} <= {"Lotion.", "Gel.", "Soap bar.", "Hand soap."}


def test_set_without_informative_view_is_dropped(raw, tmp_path):
    folder = next((raw / "data" / "test" / "0012").iterdir())
    for view in folder.iterdir():
        if view.stem.endswith("_1"):
            view.rename(view.with_name(view.stem[:-2] + "_0.png"))
    report = build("mvpn", raw, tmp_path / "out")
    assert report.episodes == 4 and [d.key for d in report.dropped] == [f"test/0012/{folder.name}"]


def test_bad_file_name_and_truncated_view_are_bad_input(raw, tmp_path):
    folder = next((raw / "data" / "test" / "0011").iterdir())
    view = sorted(folder.iterdir())[0]
    view.rename(folder / "front.png")
    out = tmp_path / "out"
    with pytest.raises(BuildError, match=r"front\.png: name does not end in _0 or _1"):
        build("mvpn", raw, out)
    assert_no_leftovers(out, "mvpn")
    informative = next(p for p in (raw / "data" / "test" / "0013").rglob("*_1.png"))
    informative.write_bytes(informative.read_bytes()[:100])
    report = build("mvpn", raw, out, on_error="skip")
    assert report.episodes == 3 and {s.key.split("/")[1] for s in report.skipped} == {"0011", "0013"}
    assert "does not decode" in next(s.reason for s in report.skipped if "0013" in s.key)
