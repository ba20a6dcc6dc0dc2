"""Typed objects past the schema boundary: OEG's own turn and result types, the baseline's plans kept off the
engine's Episode, a build worker's typed outcome, GRPO's reward copy as the schema's record."""

from __future__ import annotations

import json
from dataclasses import fields

import pytest

from proactivebench.builders import build_runner
from proactivebench.builders.official import DirFrameReader
from proactivebench.builders.raw import BuildConfig, RawSource, WorkItem
from proactivebench.builders.scenarios import Entry
from proactivebench.engine import Episode, EpisodeResult, Turn
from proactivebench.eval.backends import load_backend, single_turn
from proactivebench.eval.runner import OEGEpisode, OEGResult, OEGTurn
from proactivebench.samples.release import golden_entries, write_release
from proactivebench.schema import EpisodeRecord
from proactivebench.train.grpo import episode_record, expand_episode


def test_oeg_turn_writes_the_same_row_shape_as_a_graded_turn(imported_rows):
    assert [f.name for f in fields(OEGTurn)] == [f.name for f in fields(Turn)]
    assert {f.name for f in fields(OEGResult)} == {f.name for f in fields(EpisodeResult)}
    episode = OEGEpisode(imported_rows["coco-000001"])
    turn = episode.step("Move the camera to the left.")
    assert isinstance(turn, OEGTurn) and turn.option_verdict is None and turn.category_verdict is None
    result = episode.result
    assert isinstance(result, OEGResult) and result.correct is None and result.num_turns == 1
    assert result.turns == [turn] and result.stop_reason == "generated"


def test_oracle_proactive_plans_without_writing_onto_the_episode(imported_rows):
    backend = load_backend("baseline:oracle-proactive")
    for sample_id, row in imported_rows.items():
        episode = Episode(row)
        before = set(vars(episode))
        while not episode.done:
            request = single_turn(episode.observe().prompt, context=episode, key=f"{sample_id}/{len(episode.turns)}")
            episode.step(backend.generate([request])[0].text)
        assert episode.correct, sample_id
        assert set(vars(episode)) - before <= {"_observed"}, sample_id  # the engine's own prompt cache only


class OneCOCO(RawSource):
    name = "coco"

    def locate(self, raw_dir):
        return raw_dir

    def items(self, root, config):
        yield from ()

    def to_entry(self, root, item, config):
        if item.payload == "drop":
            raise build_runner.ItemDropped("a rule of the benchmark")
        if item.payload == "bad":
            raise ValueError("broken record")
        return Entry.from_json(golden_entries()["coco"][0], item.key), DirFrameReader(root)


def test_a_build_worker_returns_a_typed_outcome(tmp_path, monkeypatch):
    import proactivebench.builders.sources  # noqa: F401  (the real registry first, then shadow one name)

    raw = write_release(tmp_path / "raw", {"coco": golden_entries()["coco"][:1]}, sizes={"coco": (160, 120)})
    monkeypatch.setitem(build_runner.RAW_SOURCES, "coco", OneCOCO())
    build_runner._init_worker("coco", raw, BuildConfig())
    made = build_runner._build_item(WorkItem("ok", "ok"))
    assert isinstance(made, build_runner.ItemOutcome) and made.reason is None and not made.dropped
    assert made.key == "ok" and made.row["sample_id"].startswith("coco-") and made.images == len(made.row["frames"])
    dropped = build_runner._build_item(WorkItem("d", "drop"))
    assert (dropped.row, dropped.reason, dropped.dropped) == (None, "a rule of the benchmark", True)
    bad = build_runner._build_item(WorkItem("b", "bad"))
    assert (bad.row, bad.reason, bad.dropped) == (None, "broken record", False)


def test_grpo_reward_copy_is_the_schema_record_without_frames(imported_rows):
    row = imported_rows["rod-000000"]
    examples = expand_episode(row)
    record = episode_record(examples[0]["episode"])
    assert isinstance(record, EpisodeRecord) and record.frames == []
    assert record == EpisodeRecord.from_row(row, frames=False)
    assert json.loads(examples[0]["episode"]) == record.to_row()
    with pytest.raises(KeyError):
        EpisodeRecord.from_row({k: v for k, v in row.items() if k != "states"}, frames=False)
