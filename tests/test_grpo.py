"""The GRPO reward (through the evaluator's parser and state graph) and the episode → single-turn expansion."""

import json

import datasets
import pytest

from proactivebench.cli import main
from proactivebench.eval import Episode
from proactivebench.graph import StateGraph
from proactivebench.schema import states_from_rows
from proactivebench.train.grpo import (
    ProactivenessReward,
    build_train_dataset,
    episode_record,
    expand_episode,
    parse_model_spec,
    score,
    shares,
)

QD = "quickdraw-000000"  # options [abstain, "Make this drawing more complete."], categories as below, answer Bed.
MORE = "Make this drawing more complete."


@pytest.fixture(scope="module")
def examples(imported_rows):
    """{sample_id: [example per reachable state]} for the imported sample release."""
    return {sample_id: expand_episode(row) for sample_id, row in imported_rows.items()}


def _reward(examples, sample_id, state_position, completions, proactive_reward=0.5, logged=None):
    example = examples[sample_id][state_position]
    n = len(completions)
    log_metric = (lambda name, value: logged.__setitem__(name, value)) if logged is not None else None
    return ProactivenessReward(proactive_reward)(
        prompts=[example["prompt"]] * n, completions=completions, episode=[example["episode"]] * n,
        state=[example["state"]] * n, log_metric=log_metric,
    )


def test_reward_on_hand_written_completions(examples):
    # QuickDraw first state: A abstain, B the valid move, C..F the categories (E = Bed., the answer).
    completions = {
        "correct category": ("Bed.", 1.0),
        "correct letter": ("E", 1.0),
        "correct letter with text": ("E. Bed.", 1.0),
        "valid move (letter)": ("B", 0.5),
        "valid move (text)": (MORE, 0.5),
        "abstain": ("A", 0.0),
        "abstain text": ("I cannot answer this question.", 0.0),
        "wrong category": ("Potato.", 0.0),
        "garbage": ("the drawing looks like a bed, maybe", 0.0),
        "out of range letter": ("G", 0.0),
        "no trailing period (paper parser)": ("Bed", 0.0),
    }
    got = _reward(examples, QD, 0, [c for c, _ in completions.values()])
    assert dict(zip(completions, got)) == {k: r for k, (_, r) in completions.items()}


def test_shown_but_invalid_move_and_the_last_state(examples):
    last = examples[QD][-1]
    assert last["state"] == 2  # the last drawing still shows the option, without a move (docs/protocol.md §4.5)
    assert _reward(examples, QD, 2, ["B", MORE, "E"]) == [0.0, 0.0, 1.0]
    assert score(episode_record(last["episode"]), 2, "B").kind == "invalid_option"


def test_a_state_that_accepts_no_answer(examples):
    # ROD's start state: moving is rewarded, even the right category is not (it is "premature").
    rod = examples["rod-000000"]
    assert rod[0]["state"] == json.loads(rod[0]["episode"])["first_state"]
    assert _reward(examples, "rod-000000", 0, ["Banana.", "A", "B", "C"]) == [0.0, 0.5, 0.5, 0.0]
    assert score(episode_record(rod[0]["episode"]), rod[0]["state"], "Banana.").kind == "premature_answer"
    # One move later the category is accepted.
    assert _reward(examples, "rod-000000", 1, ["Banana."]) == [1.0]


@pytest.mark.parametrize("proactive_reward", [0.5, 0.75, 1.0])
def test_proactive_reward_is_the_flag(examples, proactive_reward):
    assert _reward(examples, QD, 0, ["B", "E"], proactive_reward) == [proactive_reward, 1.0]


def test_conversational_completions_and_logged_shares(examples):
    logged = {}
    completions = [[{"role": "assistant", "content": c}] for c in ["B", "B", "E", "Potato.", "A", "zz"]]
    assert _reward(examples, QD, 0, completions, logged=logged) == [0.5, 0.5, 1.0, 0.0, 0.0, 0.0]
    assert logged == {
        "proactive/valid_move": pytest.approx(2 / 6), "proactive/any_option": pytest.approx(2 / 6),
        "answer/any": pytest.approx(2 / 6), "answer/correct": pytest.approx(1 / 6),
        "abstain": pytest.approx(1 / 6), "unparsed": pytest.approx(1 / 6),
    }


def test_blind_proactiveness_shows_in_the_shares(examples):
    example = examples[QD][0]
    outcomes = ProactivenessReward(1.0).outcomes(["B"] * 8, [example["episode"]] * 8, [0] * 8)
    assert shares(outcomes)["proactive/valid_move"] == 1.0 and shares(outcomes)["answer/any"] == 0.0


def test_reward_agrees_with_the_evaluator_over_every_example(examples, imported_rows):
    """For each state and a spread of answers, the reward is what a full Episode run from there says."""
    for sample_id, per_state in examples.items():
        for example in per_state:
            episode = episode_record(example["episode"])
            n_choices = len(episode.states[example["state"]].shown) + 4
            for completion in [chr(65 + i) for i in range(n_choices)] + [episode.answer, "xyz"]:
                ep = Episode({**imported_rows[sample_id], "first_state": example["state"]})
                turn = ep.step(completion)
                expected = 1.0 if ep.correct else (0.5 if turn.option_verdict == "correct" else 0.0)
                assert score(episode, example["state"], completion).reward == expected, (sample_id, completion)


def test_expansion_one_example_per_reachable_state(examples, imported_rows):
    assert [e["state"] for e in examples[QD]] == [0, 1, 2]
    row = imported_rows[QD]
    for example in examples[QD]:
        observation = Episode({**row, "first_state": example["state"]}).observe()
        assert example["prompt"] == [{"role": "user", "content": observation.prompt}]
        assert example["image"] == row["frames"][observation.frame]
    # COCO zoom: 3 zooms allowed within 4 turns → 4 states; a budget of one turn keeps only the start.
    assert len(examples["coco-000001"]) == 4
    rod = imported_rows["rod-000000"]
    assert StateGraph(states_from_rows(rod["states"])).reachable(rod["first_state"], 1) == [rod["first_state"]]


def test_build_train_dataset_has_trl_columns(imported_dir):
    episodes = datasets.load_dataset(str(imported_dir), "quickdraw", split="test")
    train = build_train_dataset(episodes, hint=True)
    assert train.column_names == ["prompt", "image", "episode", "state", "sample_id"]
    assert len(train) == 3
    assert train[0]["image"].size == (64, 48)  # decoded PIL, as TRL's `image` column wants
    assert "Hint: Adding more details to the quickdraw could help with classification." in train[0]["prompt"][0]["content"]


def test_model_spec_and_bad_flags(imported_dir, tmp_path, capsys):
    assert parse_model_spec("hf:some/model") == "some/model"
    with pytest.raises(ValueError, match="hf:<id or dir>"):
        parse_model_spec("openai:gpt")
    base = ["train-grpo", "--dataset", str(imported_dir), "--model", "hf:x", "--output-dir", str(tmp_path / "o")]
    assert main(base + ["--proactive-reward", "1.5"]) == 2
    assert "--proactive-reward must lie in [0, 1]" in capsys.readouterr().err
    assert main(base + ["--batch-size", "6"]) == 2
    assert "must be a multiple of --num-generations" in capsys.readouterr().err
    # The sample release has no train split.
    assert main(base) == 2
    assert "no 'train' split" in capsys.readouterr().err.splitlines()[-1]


def test_reward_log_callback_writes_jsonl_and_warns_on_blind_proactiveness(tmp_path, caplog):
    from types import SimpleNamespace

    from proactivebench.train.grpo import REWARD_LOG, reward_log_callback

    callback = reward_log_callback(tmp_path)
    state = SimpleNamespace(global_step=7, is_world_process_zero=True)
    blind = {"reward": 1.0, "proactive/valid_move": 1.0, "answer/any": 0.0, "answer/correct": 0.0, "loss": 0.1}
    with caplog.at_level("INFO", logger="proactivebench.train.grpo"):
        callback.on_log(None, state, None, logs=blind)
        callback.on_log(None, state, None, logs={"train_runtime": 3.0})  # not a training step's log: ignored
    lines = [json.loads(line) for line in (tmp_path / REWARD_LOG).read_text().splitlines()]
    assert lines == [{"step": 7, **blind}]
    assert "step 7: reward 1.000, valid moves 100%, answers 0%" in caplog.text
    assert "blind proactiveness" in caplog.text


def test_load_episodes_sees_a_rebuilt_folder(imported_dir, tmp_path):
    """Two folders of the same name, and one rewritten: each load reads the shards as they are now."""
    from proactivebench.store import iter_rows, load_episodes, write_split

    rows = list(iter_rows(imported_dir, ["coco"], "test")) + list(iter_rows(imported_dir, ["coco"], "excluded"))
    first, second = tmp_path / "a" / "bench", tmp_path / "b" / "bench"
    write_split(first, "coco", "train", rows[:1])
    write_split(second, "coco", "train", rows)
    assert (len(load_episodes(first, "train")), len(load_episodes(second, "train"))) == (1, 4)
    write_split(first, "coco", "train", rows[:3])
    assert len(load_episodes(first, "train")) == 3
    assert len(load_episodes(second, "train", sources=["coco"])) == 4
    with pytest.raises(ValueError, match="no 'train' split for quickdraw"):
        load_episodes(second, "train", sources=["quickdraw"])


def test_help_names_the_paper_defaults(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train-grpo", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "--proactive-reward" in text and "LoRA r 16, alpha 16, dropout 0.1 on q_proj and k_proj" in text
    assert "accelerate launch" in text and "hf:BASE+OUT" in text
