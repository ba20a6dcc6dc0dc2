"""import-official --train-parquet: the authors' GRPO train shards → `train` episodes, fed to the GRPO reward."""

import json

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from proactivebench.builders.official_train import import_train, make_train_row, train_features, write_train_shards
from proactivebench.builders.sample_release import synthetic_image
from proactivebench.builders.scenarios import EntryError
from proactivebench.cli import main
from proactivebench.eval.grpo import ProactivenessReward, build_train_dataset
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
    schema = pq.read_schema(sorted((train_shards / "data").glob("*.parquet"))[0])
    assert schema.names == ["prompt", "ground_truth", "proactive_actions", "options", "qwen_conf", "qwen_delta",
                            "llava_conf", "llava_delta", "images"]
    # The card's `sequence` of {key, value}, as `datasets` stores it: a struct of two lists.
    for name in ("qwen_delta", "llava_delta"):
        delta = schema.field(name).type
        assert pa.types.is_struct(delta) and [delta.field(i).name for i in range(2)] == ["key", "value"]
        assert pa.types.is_list(delta.field("key").type) and pa.types.is_list(delta.field("value").type)


# The features of the authors' card (tdemin16/ProactiveBench, dataset_info), in the card's own YAML.
CARD_FEATURES = """
- name: prompt
  list:
  - name: content
    list:
    - name: type
      dtype: string
    - name: text
      dtype: string
  - name: role
    dtype: string
- name: ground_truth
  dtype: string
- name: proactive_actions
  list: string
- name: options
  list: string
- name: qwen_conf
  dtype: float32
- name: qwen_delta
  sequence:
  - name: key
    dtype: string
  - name: value
    dtype: float32
- name: llava_conf
  dtype: float32
- name: llava_delta
  sequence:
  - name: key
    dtype: string
  - name: value
    dtype: float32
- name: images
  list: image
"""


def test_card_features_import_through_load_dataset_and_the_reward(tmp_path):
    """Shards that `datasets` writes from the card's own Features (a struct-of-lists delta) import, load and
    reward exactly as the rows say; the deltas land in `meta` as [{key, value}] in their order."""
    import yaml
    from PIL import Image

    features = datasets.Features._from_yaml_list(yaml.safe_load(CARD_FEATURES))
    assert features == train_features()
    assert features["qwen_delta"] == {"key": datasets.List(datasets.Value("string")),
                                      "value": datasets.List(datasets.Value("float32"))}
    rows = _rows()
    rows[0]["images"] = [Image.new("RGB", (40, 30), (200, 30, 30))]  # a PIL image: `datasets` encodes it
    rows[0]["qwen_delta"] = {"key": ["Bed.", "Potato.", "Bed."], "value": [0.5, -0.25, 0.125]}
    rows[1]["llava_delta"] = {"key": [], "value": []}
    write_train_shards(tmp_path / "authors", rows, num_shards=2, features=features)
    shard = sorted((tmp_path / "authors" / "data").glob("*.parquet"))[0]
    assert str(pq.read_schema(shard).field("qwen_delta").type) == (
        "struct<key: list<element: string>, value: list<element: float>>")

    out = tmp_path / "bench"
    assert main(["import-official", "--train-parquet", str(tmp_path / "authors"), "--out", str(out)]) == 0
    loaded = {r["sample_id"]: r for r in datasets.load_dataset(str(out), split="train")}
    meta = json.loads(loaded["quickdraw-train-000000"]["meta"])
    assert meta["qwen_delta"] == [{"key": "Bed.", "value": 0.5}, {"key": "Potato.", "value": -0.25},
                                  {"key": "Bed.", "value": 0.125}]  # order and the repeated key kept
    assert json.loads(loaded["quickdraw-train-000001"]["meta"])["llava_delta"] == []
    assert loaded["quickdraw-train-000000"]["frames"][0].size == (40, 30)

    examples = {e["sample_id"]: e for e in build_train_dataset(datasets.load_dataset(str(out), split="train"))}
    reward = ProactivenessReward(proactive_reward=0.5)
    example = examples["quickdraw-train-000000"]
    completions = ["Bed.", "B", "Potato.", "A"]
    assert reward(completions=completions, episode=[example["episode"]] * 4, state=[example["state"]] * 4) == [
        1.0, 0.5, 0.0, 0.0]


def test_a_list_of_key_value_structs_is_still_accepted(tmp_path):
    features = train_features()
    for name in ("qwen_delta", "llava_delta"):
        features[name] = datasets.List({"key": datasets.Value("string"), "value": datasets.Value("float32")})
    rows = _rows()
    for row in rows:
        for name in ("qwen_delta", "llava_delta"):
            row[name] = [{"key": k, "value": v} for k, v in zip(row[name]["key"], row[name]["value"])]
    write_train_shards(tmp_path / "authors", rows, num_shards=1, features=features)
    import_train(tmp_path / "authors", tmp_path / "bench")
    row = [r for r in datasets.load_dataset(str(tmp_path / "bench"), split="train") if r["source_id"] == 0][0]
    assert json.loads(row["meta"])["llava_delta"] == [{"key": "Tooth.", "value": pytest.approx(-0.2)}]


def test_a_delta_whose_keys_and_values_differ_in_length_names_the_row(tmp_path):
    rows = _rows()
    rows[2]["qwen_delta"] = {"key": ["Dog.", "Cat."], "value": [0.5]}
    write_train_shards(tmp_path / "authors", rows, num_shards=1)
    with pytest.raises(EntryError, match=r"train-00000-of-00001\.parquet:row 2: column 'qwen_delta' has 2 key\(s\) "
                       r"but 1 value\(s\)"):
        import_train(tmp_path / "authors", tmp_path / "bench")
    report = import_train(tmp_path / "authors", tmp_path / "bench", on_error="skip")
    assert report.counts == {"quickdraw": 3} and report.skipped[0]["where"] == "train-00000-of-00001.parquet:row 2"


def test_a_delta_of_another_type_is_refused_naming_shard_and_column(tmp_path):
    features = train_features()
    features["qwen_delta"] = datasets.List(datasets.Value("string"))
    rows = _rows()
    for row in rows:
        row["qwen_delta"] = ["x"]
    write_train_shards(tmp_path / "authors", rows, num_shards=1, features=features)
    with pytest.raises(EntryError, match=r"train-00000-of-00001\.parquet: column 'qwen_delta' is list<element: "
                       r"string>, expected sequence of \{key, value\}"):
        import_train(tmp_path / "authors", tmp_path / "bench")


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
