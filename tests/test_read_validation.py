"""Issue 17 items 2 and 3: `eval`, `curate first-turn`, `curate filter` and `publish` check the folder and every
row before any work, and refuse in one line naming the file, the sample and the field; nothing changes on disk."""

from __future__ import annotations

import copy

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from proactivebench.cli import main
from proactivebench.curation.predictions import PREDICTION_SCHEMA
from proactivebench.store import CARD_FRONT_MATTER, write_split

TARGET = "mvpn-000005"  # 3 frames, 2 options; states 0 -(0)-> 1 -(0)-> 2, every state accepts; max_turns 3
COCO_POOL = {"test": ["coco-000000", "coco-000001", "coco-000002"], "excluded": ["coco-000003"]}


def write_bench(folder, rows, target):
    """mvpn/test = [target] (possibly broken), coco/test + coco/excluded as imported."""
    write_split(folder, "mvpn", "test", [target])
    for split, ids in COCO_POOL.items():
        write_split(folder, "coco", split, [rows[i] for i in ids])
    return folder


@pytest.fixture
def predictions(imported_rows, tmp_path_factory):
    """Valid first-turn predictions for every pool sample, so `curate filter` has nothing else to object to."""
    folder = tmp_path_factory.mktemp("inputs") / "preds"
    folder.mkdir()
    ids = [TARGET, *COCO_POOL["test"], *COCO_POOL["excluded"]]
    rows = [{"model": "m", "sample_id": i, "source": i.split("-")[0], "output": "A.", "verdict": "wrong", "correct": False}
            for i in ids]
    pq.write_table(pa.Table.from_pylist(rows, schema=PREDICTION_SCHEMA), folder / "m.parquet")
    return folder


def snapshot(root):
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if "hf-datasets-cache" not in p.parts
    }


def commands(dataset, predictions, work):
    return {
        "eval": ["eval", "--dataset", str(dataset), "--model", "baseline:oracle", "--results", str(work / "r.duckdb"),
                 "--no-progress"],
        "first-turn": ["curate", "first-turn", "--dataset", str(dataset), "--model", "baseline:oracle",
                       "--out", str(work / "first")],
        "filter": ["curate", "filter", "--dataset", str(dataset), "--predictions", str(predictions),
                   "--out", str(work / "filtered")],
        "publish": ["publish", "--dataset", str(dataset)],
    }


def refused_by_all(tmp_path, dataset, predictions, capsys, *parts, only=None):
    """Every command exits 2 with one line holding every `part`, no traceback, and the tree unchanged."""
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    for name, argv in commands(dataset, predictions, work).items():
        if only and name not in only:
            continue
        before = snapshot(tmp_path)
        code = main(argv)
        out, err = capsys.readouterr()
        # `datasets`' own progress bar may come first (a frame's bytes are checked once the split is loaded).
        lines = [line for line in err.splitlines() if line.strip() and "examples/s" not in line]
        assert code == 2, (name, out, err)
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, err)
        assert "Traceback" not in out + err
        for part in parts:
            assert part in lines[0], (name, part, lines[0])
        assert snapshot(tmp_path) == before, name  # nothing written, moved or deleted


# --- item 2: invalid rows ------------------------------------------------------------------------------------------


def _move_to_missing_state(row):
    row["states"][0]["moves"][0]["to"] = 7
    return "states[0].moves[0].to"


def _frame_out_of_range(row):
    row["states"][1]["frame"] = 9
    return "states[1].frame"


def _no_answer_within_max_turns(row):
    row["states"][0]["accepts_answer"] = row["states"][1]["accepts_answer"] = False
    row["max_turns"] = 2  # the accepting state 2 is two moves (three turns) away
    return "'states'"


def _cycle_without_answer(row):
    row["states"][0]["accepts_answer"] = row["states"][1]["accepts_answer"] = False
    row["states"][1]["moves"][0]["to"] = 0  # 0 -> 1 -> 0 -> ...; state 2 (accepting) is never reached
    row["max_turns"] = 20
    return "'states'"


def _first_state_out_of_range(row):
    row["first_state"] = -1
    return "first_state"


def _empty_states(row):
    row["states"] = []
    return "'states'"


def _answer_not_a_category(row):
    row["answer"] = "Banana."
    return "answer"


def _shown_option_out_of_range(row):
    row["states"][0]["shown"] = [0, 5]
    return "states[0].shown[1]"


def _negative_option(row):
    row["states"][0]["moves"][0]["option"] = -1
    return "states[0].moves[0].option"


def _max_turns_below_one(row):
    row["max_turns"] = 0
    return "max_turns"


ROW_CASES = [
    _move_to_missing_state, _frame_out_of_range, _no_answer_within_max_turns, _cycle_without_answer,
    _first_state_out_of_range, _empty_states, _answer_not_a_category, _shown_option_out_of_range, _negative_option,
    _max_turns_below_one,
]


@pytest.mark.parametrize("breaks", ROW_CASES, ids=lambda f: f.__name__.strip("_"))
def test_an_invalid_row_is_refused_before_any_work(breaks, imported_rows, predictions, tmp_path, capsys):
    row = copy.deepcopy(imported_rows[TARGET])
    field = breaks(row)
    dataset = write_bench(tmp_path / "bench", imported_rows, row)
    shard = dataset / "data" / "mvpn" / "test-00000-of-00001.parquet"
    refused_by_all(tmp_path, dataset, predictions, capsys, str(shard), f"sample {TARGET!r}", field)


@pytest.mark.parametrize("payload", [b"<html>not an image</html>", b""], ids=["garbage", "empty"])
def test_a_frame_that_is_not_an_image_is_refused_before_any_work(payload, imported_rows, predictions, tmp_path,
                                                                  capsys):
    """A baseline never decodes a frame, so without the check eval, first-turn and filter scored such an episode."""
    row = copy.deepcopy(imported_rows[TARGET])
    row["frames"][1] = {"bytes": payload, "path": None}
    dataset = write_bench(tmp_path / "bench", imported_rows, row)
    shard = dataset / "data" / "mvpn" / "test-00000-of-00001.parquet"
    refused_by_all(tmp_path, dataset, predictions, capsys, str(shard), f"sample {TARGET!r}", "'frames' [1]",
                   only={"eval", "first-turn", "filter"})
    assert main(commands(dataset, predictions, tmp_path / "work")["publish"]) == 2  # it decodes every frame itself
    assert f"sample {TARGET!r} frame 1 does not decode" in capsys.readouterr().err


def test_a_duplicate_sample_id_is_refused(imported_rows, predictions, tmp_path, capsys):
    """Today eval counts the twin twice. Within a split every command refuses; across test and excluded (one pool,
    the `full` split) the commands that read the pool do."""
    dataset = write_bench(tmp_path / "bench", imported_rows, imported_rows[TARGET])
    test = [imported_rows[i] for i in COCO_POOL["test"]]
    write_split(dataset, "coco", "test", [*test, test[0]])
    refused_by_all(tmp_path, dataset, predictions, capsys, "data/coco/test-00000-of-00001.parquet",
                   "sample 'coco-000000'", "'sample_id'", "twice in that file")
    write_split(dataset, "coco", "test", test)
    write_split(dataset, "coco", "excluded", [imported_rows["coco-000003"], test[0]])
    refused_by_all(tmp_path, dataset, predictions, capsys, "data/coco/excluded-00000-of-00001.parquet",
                   "sample 'coco-000000'", "'sample_id'", "also in", "data/coco/test-00000-of-00001.parquet",
                   only={"first-turn", "filter", "publish"})


def test_a_valid_folder_passes_every_command(imported_rows, predictions, tmp_path, capsys):
    """The checks refuse what they should only: the same fixture, unbroken, runs through every command."""
    dataset = write_bench(tmp_path / "bench", imported_rows, imported_rows[TARGET])
    for name, argv in commands(dataset, predictions, tmp_path).items():
        assert main(argv) == 0, (name, capsys.readouterr().err)


# --- item 3: missing or damaged data ---------------------------------------------------------------------------------


@pytest.fixture
def bench(imported_rows, tmp_path):
    return write_bench(tmp_path / "bench", imported_rows, imported_rows[TARGET])


def test_a_source_whose_shards_are_gone_is_refused(bench, predictions, tmp_path, capsys):
    for path in (bench / "data" / "coco").iterdir():
        path.unlink()
    (bench / "data" / "coco").rmdir()  # the card still lists coco
    refused_by_all(tmp_path, bench, predictions, capsys, "source 'coco'", str(bench / "README.md"))


def test_a_file_the_card_names_is_missing(bench, predictions, tmp_path, capsys):
    readme = bench / "README.md"
    text = readme.read_text()
    meta = yaml.safe_load(CARD_FRONT_MATTER.match(text).group(0).strip("-\n"))
    named = "data/coco/test-00000-of-00001.parquet"
    for config in meta["configs"]:
        if config["config_name"] == "coco":
            for entry in config["data_files"]:
                if entry["split"] == "test":
                    entry["path"] = named  # a card that names its files, as the Hub's own cards do
    readme.write_text(f"---\n{yaml.safe_dump(meta, sort_keys=False)}---\n" + CARD_FRONT_MATTER.sub("", text))
    (bench / named).unlink()
    refused_by_all(tmp_path, bench, predictions, capsys, str(bench / named), "missing")


def test_a_truncated_shard_is_refused(bench, predictions, tmp_path, capsys):
    shard = bench / "data" / "coco" / "test-00000-of-00001.parquet"
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    refused_by_all(tmp_path, bench, predictions, capsys, str(shard), "not a readable parquet file")


def test_a_corrupt_shard_is_refused(bench, predictions, tmp_path, capsys):
    shard = bench / "data" / "coco" / "test-00000-of-00001.parquet"
    data = bytearray(shard.read_bytes())
    data[4:68] = b"\xff" * 64  # the first column chunk (sample_id) right after the magic bytes
    shard.write_bytes(bytes(data))
    refused_by_all(tmp_path, bench, predictions, capsys, str(shard), "not a readable parquet file")


def test_one_missing_shard_of_ten(imported_rows, predictions, tmp_path, capsys):
    """Ten one-row shards, one gone: today 9 of 10 would be scored. The card counts say 10."""
    dataset = tmp_path / "bench"
    rows = []
    for i in range(10):
        row = copy.deepcopy(imported_rows["coco-000000"])
        row["sample_id"], row["source_id"] = f"coco-{i:06d}", i
        rows.append(row)
    write_split(dataset, "coco", "test", rows, max_shard_bytes=1, row_group_rows=1)
    assert main(["publish", "--dataset", str(dataset)]) == 0  # renders dataset_info: test has 10 rows
    capsys.readouterr()
    missing = dataset / "data" / "coco" / "test-00003-of-00010.parquet"
    missing.unlink()
    readme = str(dataset / "README.md")
    refused_by_all(tmp_path, dataset, predictions, capsys, readme, "says 10 rows, the shards hold 9",
                   only={"eval", "first-turn", "filter"})
    # publish re-renders the counts; the incomplete shard set still names the missing file.
    refused_by_all(tmp_path, dataset, predictions, capsys, str(missing), "missing", only={"publish"})


def test_card_counts_that_disagree_with_the_rows_are_refused_by_eval(bench, predictions, tmp_path, capsys):
    assert main(["publish", "--dataset", str(bench)]) == 0
    capsys.readouterr()
    readme = bench / "README.md"
    readme.write_text(readme.read_text().replace("num_examples: 3\n", "num_examples: 30\n", 1))
    refused_by_all(tmp_path, bench, predictions, capsys, str(readme), "says 30 rows, the shards hold 3", only={"eval"})


def test_frame_check_names_the_right_sample_and_frame_across_chunks_and_slices():
    """The frames are checked chunk by chunk (never concatenated past 2 GiB): a row and frame index must still be
    the table's, also when a chunk is a slice of a larger array."""
    from proactivebench.integrity import DatasetError, check_frame_bytes

    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 20
    frame_type = pa.list_(pa.struct([("bytes", pa.binary()), ("path", pa.string())]))

    def chunk(rows):
        return pa.array([[{"bytes": b, "path": None} for b in frames] for frames in rows], frame_type)

    big = chunk([[png], [png, png], [png, b"GIF89a....", b"nope"], [png]])
    frames = pa.chunked_array([chunk([[png, png], [png]]), big.slice(1, 3)])
    ids = pa.chunked_array([pa.array(["s0", "s1"]), pa.array(["s2", "s3", "s4"])])
    table = pa.table({"sample_id": ids, "frames": frames})
    with pytest.raises(DatasetError, match=r"^here: sample 's3': field 'frames' \[2\]: bytes that are not an image"):
        check_frame_bytes(table, "here")
    located = []
    with pytest.raises(DatasetError):
        check_frame_bytes(table, lambda row: located.append(row) or "f")
    assert located == [3]
    check_frame_bytes(table.slice(0, 3), "fine")  # s0..s2 hold images only
