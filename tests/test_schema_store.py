"""Schema invariants (rejected with the sample and field named) and the hub-layout store."""

import copy

import datasets
import pyarrow.parquet as pq
import pytest

from proactivebench.schema import FEATURES, EpisodeRecord, EpisodeValidationError, Move
from proactivebench.store import StagedOutput, count_rows, iter_rows, layout, read_card_metadata, write_split


@pytest.fixture
def record(imported_rows):
    return EpisodeRecord.from_row(imported_rows["changeit-000000"])


def test_round_trip(record, imported_rows):
    assert record.validate().to_row()["states"] == imported_rows["changeit-000000"]["states"]


@pytest.mark.parametrize(
    "mutate,field",
    [
        (lambda r: r.states[0].moves.append(Move(1, 99)), "states[0].moves"),
        (lambda r: setattr(r, "first_state", 42), "first_state"),
        (lambda r: setattr(r.states[1], "frame", 500), "states[1].frame"),
        (lambda r: r.states[0].moves.__setitem__(0, Move(2, 1)), "states[0].moves[0].option"),
        (lambda r: setattr(r, "answer", "Kiwi."), "answer"),
        (lambda r: setattr(r, "categories", r.categories[:3]), "categories"),
        (lambda r: setattr(r, "reference_frame", -1), "reference_frame"),
        (lambda r: [setattr(s, "accepts_answer", False) for s in r.states], "states"),
        (lambda r: setattr(r, "max_turns", 0), "max_turns"),
        (lambda r: setattr(r, "source", "pascal"), "source"),
    ],
)
def test_invalid_rows_are_rejected_naming_sample_and_field(record, mutate, field):
    broken = copy.deepcopy(record)
    mutate(broken)
    with pytest.raises(EpisodeValidationError) as error:
        broken.validate()
    assert "'changeit-000000'" in str(error.value) and f"'{field}" in str(error.value)


def test_accepting_state_must_be_reachable_within_the_budget(record):
    # ROD-like: an answer only after one move; a budget of one turn makes the episode unanswerable.
    broken = copy.deepcopy(record)
    broken.states[0].accepts_answer = False
    broken.max_turns = 1
    with pytest.raises(EpisodeValidationError, match="reachable"):
        broken.validate()


def test_write_split_shards_row_groups_and_card(imported_rows, tmp_path):
    rows = [r for r in imported_rows.values() if r["source"] == "coco"]
    result = write_split(tmp_path, "coco", "test", rows, max_shard_bytes=1, row_group_rows=1)
    assert result.rows == 4 and len(result.files) == 4  # a tiny budget forces one shard per row
    assert [p.name for p in result.files] == [f"test-0000{i}-of-00004.parquet" for i in range(4)]
    for path in result.files:
        assert pq.ParquetFile(path).schema_arrow.equals(FEATURES.arrow_schema, check_metadata=False)
    configs = {c["config_name"]: c for c in read_card_metadata(tmp_path)["configs"]}
    assert set(configs) == {"default", "coco"} and configs["default"]["default"] is True
    loaded = datasets.load_dataset(str(tmp_path), "coco", split="test")
    assert sorted(loaded["sample_id"]) == sorted(r["sample_id"] for r in rows)
    assert loaded.features == FEATURES


def test_write_split_keeps_other_splits_and_failed_write_keeps_old(imported_rows, tmp_path):
    rows = [r for r in imported_rows.values() if r["source"] == "rod"]
    write_split(tmp_path, "rod", "test", rows)
    write_split(tmp_path, "rod", "train", rows[:1])
    assert count_rows(tmp_path)["rod"] == {"test": 2, "train": 1}

    def exploding():
        yield rows[0]
        raise RuntimeError("builder crashed")

    before = layout(tmp_path)
    with pytest.raises(RuntimeError):
        write_split(tmp_path, "rod", "test", exploding())
    assert layout(tmp_path) == before and count_rows(tmp_path)["rod"] == {"test": 2, "train": 1}
    assert not list((tmp_path / "data").glob(".staging*"))


def test_staged_output_is_all_or_nothing(imported_rows, tmp_path):
    rows = list(imported_rows.values())
    with pytest.raises(ValueError):
        with StagedOutput(tmp_path) as staged:
            staged.write_split("rod", "test", [r for r in rows if r["source"] == "rod"])
            raise ValueError("a later source failed")
    assert layout(tmp_path) == {}
    with StagedOutput(tmp_path) as staged:
        staged.write_split("rod", "test", [r for r in rows if r["source"] == "rod"])
    assert count_rows(tmp_path) == {"rod": {"test": 2}}
    assert [r["sample_id"] for r in iter_rows(tmp_path)] == ["rod-000000", "rod-000001"]


def test_streaming_load(imported_dir):
    streamed = datasets.load_dataset(str(imported_dir), "quickdraw", split="test", streaming=True)
    assert [r["sample_id"] for r in streamed] == ["quickdraw-000000"]


def test_load_sees_a_folder_rebuilt_in_place(imported_rows, tmp_path):
    from proactivebench.store import load

    rows = [r for r in imported_rows.values() if r["source"] == "coco" and r["sample_id"] != "coco-000003"]
    write_split(tmp_path, "coco", "test", rows)
    assert len(load(tmp_path, "coco")) == 3
    write_split(tmp_path, "coco", "test", rows[:1])  # same folder, same card patterns, new rows
    assert load(tmp_path, "coco")["sample_id"] == [rows[0]["sample_id"]]
    assert len(load(tmp_path)) == 1
