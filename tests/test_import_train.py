"""import-official --train-parquet: the authors' GRPO train shards → `train` episodes, fed to the GRPO reward."""

import json

import datasets
import pyarrow.parquet as pq
import pytest

from proactivebench.builders.official_train import import_train, make_train_row, write_train_shards
from proactivebench.samples.release import synthetic_image
from proactivebench.builders.scenarios import EntryError
from proactivebench.cli import main
from proactivebench.train.grpo import ProactivenessReward, build_train_dataset
from proactivebench.store import count_rows, layout

QD_ABSTAIN, QD_MORE = "I cannot answer this question.", "Make this drawing more complete."
QD_CATEGORIES = ["The eiffel tower.", "Potato.", "Bed.", "Tooth."]
COCO_OPTIONS = ["Move the camera up.", "I cannot tell.", "Move the camera to the left."]
COCO_CATEGORIES = ["Dog.", "Cat.", "Horse.", "Sheep."]
QUESTION = "What is drawn in the image?"


def _rows():
    png = synthetic_image("qd.png")
    jpeg = synthetic_image("coco.jpg")
    return [
        # 0: ambiguous QuickDraw frame whose ground truth is the category.
        make_train_row(QUESTION, [QD_ABSTAIN, QD_MORE, *QD_CATEGORIES], [QD_MORE], "Bed.", png, qwen_conf=0.25),
        # 1: ambiguous frame whose ground truth is the action: no category is right here.
        make_train_row(QUESTION, [QD_ABSTAIN, QD_MORE, *QD_CATEGORIES], [QD_MORE], QD_MORE, png),
        # 2: COCO with two valid moves.
        make_train_row("What is the main object?", [*COCO_OPTIONS, *COCO_CATEGORIES],
                       ["Move the camera up.", "Move the camera to the left."], "Dog.", jpeg),
        # 3: a last QuickDraw frame: the action is shown but is not a valid move any more.
        make_train_row(QUESTION, [QD_ABSTAIN, QD_MORE, *QD_CATEGORIES], [], "Potato.", png),
    ]


@pytest.fixture
def train_shards(tmp_path):
    write_train_shards(tmp_path / "authors", _rows(), num_shards=2)
    return tmp_path / "authors"


def test_import_load_and_reward(train_shards, tmp_path):
    out = tmp_path / "bench"
    assert main(["import-official", "--train-parquet", str(train_shards), "--out", str(out)]) == 0
    assert count_rows(out) == {"quickdraw": {"train": 3}, "coco": {"train": 1}}
    report = json.loads((out / "import_train_report.json").read_text())
    assert report["ground_truth_kinds"] == {"category": 3, "proactive": 1}

    rows = {r["sample_id"]: r for r in datasets.load_dataset(str(out), split="train")}
    assert sorted(rows) == ["coco-train-000002", "quickdraw-train-000000", "quickdraw-train-000001",
                            "quickdraw-train-000003"]
    first = rows["quickdraw-train-000000"]
    assert first["question"] == QUESTION  # kept exactly from the prompt text
    assert first["categories"] == QD_CATEGORIES and first["answer"] == "Bed."
    assert [(o["text"], o["kind"], o["action"]) for o in first["options"]] == [
        (QD_ABSTAIN, "abstain", "stop"), (QD_MORE, "proactive", "details"),
    ]
    assert first["frames"][0].size == (64, 48)  # the embedded image decodes
    meta = json.loads(first["meta"])
    assert meta["prompt_template"] == "reference" and meta["ground_truth_kind"] == "category"
    assert meta["qwen_conf"] == 0.25 and meta["llava_delta"] == [{"key": "Tooth.", "value": pytest.approx(-0.2)}]
    unknown = rows["quickdraw-train-000001"]
    assert unknown["answer"] == "" and json.loads(unknown["meta"])["answer_unknown"] is True
    assert unknown["states"][0]["accepts_answer"] is False

    # The GRPO trainer takes these episodes exactly as it takes a builder's train split.
    examples = build_train_dataset(datasets.load_dataset(str(out), split="train"))
    assert len(examples) == 4  # one state each
    by_id = {e["sample_id"]: e for e in examples}
    reward = ProactivenessReward(proactive_reward=0.75)

    def rewards(sample_id, completions):
        example = by_id[sample_id]
        n = len(completions)
        return reward(completions=completions, episode=[example["episode"]] * n, state=[example["state"]] * n)

    assert "A. I cannot answer this question.\nB. Make this drawing more complete.\nC. The eiffel tower." in (
        by_id["quickdraw-train-000000"]["prompt"][0]["content"]
    )
    # Ground truth (text or letter) → full reward; a listed proactive action → the proactive reward.
    assert rewards("quickdraw-train-000000", ["Bed.", "E", QD_MORE, "B", "A", "Potato.", "zzz"]) == [
        1.0, 1.0, 0.75, 0.75, 0.0, 0.0, 0.0]
    # Ambiguous frame with an action as ground truth: asking is rewarded, no category is.
    assert rewards("quickdraw-train-000001", [QD_MORE, "Bed.", "E"]) == [0.75, 0.0, 0.0]
    assert rewards("coco-train-000002", ["Dog.", "A", "C", "Move the camera to the left.", "B"]) == [
        1.0, 0.75, 0.75, 0.75, 0.0]
    # Shown but no longer valid: no reward for the action.
    assert rewards("quickdraw-train-000003", [QD_MORE, "D"]) == [0.0, 1.0]


def test_missing_ground_truth_column_fails_and_writes_nothing(tmp_path):
    rows = _rows()
    for row in rows:
        del row["ground_truth"]
    from proactivebench.builders.official_train import train_features

    features = train_features()
    del features["ground_truth"]
    write_train_shards(tmp_path / "authors", rows, num_shards=1, features=features)
    out = tmp_path / "bench"
    with pytest.raises(EntryError, match=r"train-00000-of-00001\.parquet: missing column\(s\) ground_truth"):
        import_train(tmp_path / "authors", out)
    assert layout(out) == {}
    assert main(["import-official", "--train-parquet", str(tmp_path / "authors"), "--out", str(out)]) == 2


def test_row_without_image_fails_and_writes_nothing(tmp_path, capsys):
    rows = _rows()
    rows[2]["images"] = []
    write_train_shards(tmp_path / "authors", rows, num_shards=2)
    out = tmp_path / "bench"
    assert main(["import-official", "--train-parquet", str(tmp_path / "authors"), "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error == "error: train-00001-of-00002.parquet:row 0: no image (the images list is empty or holds no bytes)"
    assert layout(out) == {} and not (out / "import_train_report.json").exists()


def test_unknown_ground_truth_is_reported_not_guessed(tmp_path):
    rows = _rows()
    rows[3]["ground_truth"] = "Spoon."
    write_train_shards(tmp_path / "authors", rows, num_shards=1)
    with pytest.raises(EntryError, match=r"row 3: ground_truth 'Spoon\.' is neither a category"):
        import_train(tmp_path / "authors", tmp_path / "bench")
    report = import_train(tmp_path / "authors", tmp_path / "bench", on_error="skip")
    assert report.counts == {"quickdraw": 2, "coco": 1}
    assert report.skipped[0]["where"] == "train-00000-of-00001.parquet:row 3"
    assert "Spoon." in report.skipped[0]["reason"]


def test_the_prompt_listing_wins_over_a_partial_options_column(tmp_path):
    rows = _rows()
    rows[0]["options"] = list(QD_CATEGORIES)  # only the categories: the prompt still lists all six
    rows[2]["options"] = [*COCO_OPTIONS, "Zebra."]  # an option the prompt never showed
    write_train_shards(tmp_path / "authors", rows, num_shards=1)
    with pytest.raises(EntryError, match=r"row 2: options \['Zebra\.'\] are not among those the prompt lists"):
        import_train(tmp_path / "authors", tmp_path / "bench")
    report = import_train(tmp_path / "authors", tmp_path / "bench", on_error="skip")
    assert report.counts == {"quickdraw": 3} and len(report.skipped) == 1
    row = [r for r in datasets.load_dataset(str(tmp_path / "bench"), split="train") if r["source_id"] == 0][0]
    assert [o["text"] for o in row["options"]] == [QD_ABSTAIN, QD_MORE] and row["categories"] == QD_CATEGORIES
    assert json.loads(row["meta"])["options_column"] == QD_CATEGORIES


def test_shards_keep_the_authors_column_layout(train_shards):
    names = pq.read_schema(sorted((train_shards / "data").glob("*.parquet"))[0]).names
    assert names == ["prompt", "ground_truth", "proactive_actions", "options", "qwen_conf", "qwen_delta",
                     "llava_conf", "llava_delta", "images"]


def test_sources_filter_and_a_prompt_without_the_template(tmp_path):
    rows = _rows()
    rows[2]["prompt"] = [{"role": "user", "content": [{"type": "image", "text": None},
                                                      {"type": "text", "text": "Which object is this?"}]}]
    write_train_shards(tmp_path / "authors", rows, num_shards=1)
    report = import_train(tmp_path / "authors", tmp_path / "bench", sources=["coco"])
    assert report.counts == {"coco": 1}
    row = datasets.load_dataset(str(tmp_path / "bench"), split="train")[0]
    # No MCQA text to cut the question from: the whole user text is the question, the options column the list.
    assert row["question"] == "Which object is this?"
    assert [o["text"] for o in row["options"]] == COCO_OPTIONS and row["categories"] == COCO_CATEGORIES
    assert json.loads(row["meta"])["prompt_template"] == "other"
