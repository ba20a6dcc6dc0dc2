"""Multi-turn GRPO: rollouts are whole episodes through the evaluator's engine.

- The return (reward) of an episode from the engine's verdicts, and its cap.
- `play_episodes` with a scripted policy behind the transformers generation interface: what the model sees at
  turn k (the frame of the state the engine reached, as a user message, fresh or with the history).
- Two real GRPO steps on the CPU with a tiny random-weight LLaVA that mostly answers the proactive letter:
  episodes run several turns, the logged rollouts replay exactly with the engine, the rewards are the
  engine's, the adapter evaluates with `eval` (plain and --history), and a run resumes from a checkpoint.
"""

import json
import re

import pytest

from proactivebench.cli import main
from proactivebench.eval import Episode
from proactivebench.engine import decode_image
from proactivebench.train.grpo_rollout import (
    SHAPING_CAP,
    TurnGenerator,
    collate,
    episode_return,
    play_episodes,
    score_answers,
)
from proactivebench.eval.history import resize_short_edge
from proactivebench.store import iter_rows

MORE = "Make this drawing more complete."


def _play(row, outputs):
    episode = Episode(row)
    for output in outputs:
        if episode.done:
            break
        episode.step(output)
    return episode


# --- the return ---------------------------------------------------------------------------------------------


def test_return_is_the_engine_verdict(imported_rows):
    row = imported_rows["quickdraw-000000"]  # A abstain, B the move, E = Bed. (the answer)
    assert episode_return(_play(row, ["E"]).result).reward == 1.0
    assert episode_return(_play(row, ["B", "E"]).result).reward == 1.0
    assert episode_return(_play(row, ["B", "A"]).result).reward == 0.0
    moved = episode_return(_play(row, ["B", "B", "C"]).result, proactive_reward=0.1)
    assert (moved.valid_moves, moved.correct, moved.reward) == (2, False, pytest.approx(0.2))
    penalised = episode_return(_play(row, ["B", "B", "E"]).result, turn_penalty=0.05)
    assert penalised.correct and penalised.reward == pytest.approx(0.9)


def test_a_correct_episode_always_earns_more_than_a_wrong_one(imported_rows):
    """Every script of up to max_turns answers from {move, abstain, answer, wrong}, every R and P on a grid."""
    import itertools

    row = imported_rows["quickdraw-000000"]
    scripts = [s for n in range(1, row["max_turns"] + 1) for s in itertools.product("BAEC", repeat=n)]
    results = [episode.result for episode in map(lambda s: _play(row, s), scripts) if episode.done]
    assert {r.correct for r in results} == {True, False} and max(r.num_turns for r in results) == row["max_turns"]
    for proactive_reward in (0.0, 0.1, 0.5, 1.0):
        for turn_penalty in (0.0, 0.2, 1.0):
            returns = [episode_return(r, proactive_reward, turn_penalty) for r in results]
            worst_correct = min(r.reward for r in returns if r.correct)
            best_wrong = max(r.reward for r in returns if not r.correct)
            assert worst_correct > best_wrong
            assert all(abs(r.reward - r.correct) <= SHAPING_CAP + 1e-9 for r in returns)
            assert all(r.reward == pytest.approx(r.correct + r.proactive - r.penalty) for r in returns)


# --- rollouts with a scripted policy behind the generation interface ----------------------------------------


class ScriptedPolicy(TurnGenerator):
    """Reads the last user prompt it is shown and answers the letter of `option` when listed, else `fallback`."""

    def __init__(self, processor, option: str, fallback: str):
        super().__init__(processor, generate=None, eos_ids=[processor.tokenizer.convert_tokens_to_ids("<|im_end|>")])
        self.option, self.fallback = option, fallback
        self.seen = []

    def generate(self, encoded):
        answers = []
        for inputs in encoded:
            text = self.tokenizer.decode(inputs["input_ids"][0])
            self.seen.append(text)
            prompt = text.rsplit("<|im_start|>user", 1)[1]
            letters = dict(re.findall(r"^([A-Z])\. (.*)$", prompt, flags=re.M))
            letter = next((k for k, v in letters.items() if v == self.option), self.fallback)
            answers.append(self.tokenizer(letter, add_special_tokens=False)["input_ids"] + list(self.eos_ids))
        return answers


@pytest.fixture(scope="module")
def tiny_processor(tiny_llava_dir):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_llava_dir)


@pytest.mark.parametrize("context", ["fresh", "history"])
def test_turn_k_shows_the_frame_of_the_state_the_engine_reached(imported_rows, tiny_processor, context):
    rows = [imported_rows["quickdraw-000000"], imported_rows["rod-000000"]]
    policy = ScriptedPolicy(tiny_processor, MORE, fallback="A")
    rollouts = play_episodes(rows, policy, context=context, history_size=32)
    quickdraw = rollouts[0]
    assert len(quickdraw.segments) >= 2 and quickdraw.result.stop_reason == "invalid_option"
    image_token = tiny_processor.tokenizer.convert_tokens_to_ids("<image>")
    for rollout in rollouts:
        replay = Episode(rollout.row)
        expected = []
        for k, segment in enumerate(rollout.segments):
            observation = replay.observe()
            frame = decode_image(rollout.row["frames"][observation.frame])
            expected.append(resize_short_edge(frame, 32) if context == "history" else frame)
            assert (segment.state, segment.frame) == (observation.state, observation.frame)
            shown = expected if context == "history" else expected[-1:]
            assert [im.tobytes() for im in segment.images] == [im.tobytes() for im in shown]
            # The new frame arrives in a USER message: one image per user turn, the state's prompt in the last one.
            text = tiny_processor.tokenizer.decode(segment.inputs["input_ids"][0])
            assert text.count("<|im_start|>user") == len(shown) and "<|im_start|>tool" not in text
            assert observation.prompt in text.rsplit("<|im_start|>user", 1)[1]
            image_tokens = int((segment.inputs["input_ids"] == image_token).sum())
            assert image_tokens == 16 * len(shown) and segment.inputs["pixel_values"].shape[0] == len(shown)
            replay.step(segment.output)
        assert (replay.result.correct, replay.result.stop_reason) == (rollout.result.correct, rollout.result.stop_reason)


def test_history_context_carries_the_earlier_answers(imported_rows, tiny_processor):
    policy = ScriptedPolicy(tiny_processor, MORE, fallback="E")
    rollout = play_episodes([imported_rows["quickdraw-000000"]], policy, context="history", history_size=32)[0]
    last = tiny_processor.tokenizer.decode(rollout.segments[-1].inputs["input_ids"][0])
    assert last.count("<|im_start|>assistant\nB<|im_end|>") == len(rollout.segments) - 1


@pytest.mark.parametrize("context", ["fresh", "history"])
def test_each_answer_is_scored_in_the_context_it_was_sampled_in(imported_rows, tiny_llava_dir, tiny_processor, context):
    """The trainer's log-probs (batched, left-padded, TRL's fused head) equal a plain forward pass per turn."""
    import torch
    from transformers import LlavaForConditionalGeneration
    from trl.trainer.utils import add_fused_lm_head

    rows = [imported_rows["quickdraw-000000"], imported_rows["rod-000000"]]
    rollouts = play_episodes(rows, ScriptedPolicy(tiny_processor, MORE, fallback="A"), context=context, history_size=32)
    model = LlavaForConditionalGeneration.from_pretrained(tiny_llava_dir).eval()
    pad = tiny_processor.tokenizer.pad_token_id
    width = max(len(r.completion_ids) for r in rollouts) + 1
    with torch.no_grad():
        expected = torch.zeros(len(rollouts), width)
        for row, rollout in enumerate(rollouts):
            at = 0
            for segment in rollout.segments:
                n = len(segment.answer_ids)
                logits = model(**collate([segment.inputs], pad, [segment.answer_ids])).logits[0, -n - 1:-1]
                expected[row, at:at + n] = logits.log_softmax(-1)[torch.arange(n), torch.tensor(segment.answer_ids)]
                at += n
        add_fused_lm_head(model, outputs=("log_probs", "entropy"))
        got, entropies = score_answers(model, [r.segments for r in rollouts], width, pad, chunk=3, entropy=True)
    assert max(len(r.segments) for r in rollouts) >= 2
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    assert (expected != 0).sum() == sum(len(r.completion_ids) for r in rollouts)
    assert bool((entropies[expected != 0] > 0).all())


# --- two real GRPO steps with a tiny model that favours the proactive letter --------------------------------


@pytest.fixture(scope="module")
def letter_model(tmp_path_factory):
    from proactivebench.samples.tiny_policies import build_letter_policy

    return build_letter_policy(tmp_path_factory.mktemp("letter-policy"), letter="B")


@pytest.fixture(scope="module")
def quickdraw_bench(tmp_path_factory):
    from proactivebench.builders.build_runner import build_source
    from proactivebench.samples.native import write_sample_data

    root = tmp_path_factory.mktemp("mt-grpo")
    raw = write_sample_data(root / "raw", ["quickdraw"], per_source=1, progress=False)
    for split in ("train", "test"):
        build_source("quickdraw", raw["quickdraw"], root / "bench", split=split, progress=False)
    return root / "bench"


def _train(bench, model, out, *extra):
    return main([
        "train-grpo", "--multi-turn", "--dataset", str(bench), "--model", f"hf:{model}", "--output-dir", str(out),
        "--num-generations", "4", "--batch-size", "4", "--max-completion-length", "4", "--proactive-reward", "0.1",
        "--turn-penalty", "0.01", *extra,
    ])


@pytest.fixture(scope="module")
def trained(quickdraw_bench, letter_model, tmp_path_factory):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("mt-grpo") / "adapter"
    log = out.parent / "rollouts.jsonl"
    try:
        assert _train(quickdraw_bench, letter_model, out, "--max-steps", "2", "--save-steps", "1",
                      "--rollout-log", str(log)) == 0
    finally:
        torch.set_num_threads(threads)
    return out, log


def _rollouts(log):
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_rollouts_run_several_turns_and_replay_exactly_with_the_engine(trained, quickdraw_bench):
    """Every logged rollout, replayed on its row's state graph: same states, frames, end and reward."""
    _, log = trained
    rows = {row["sample_id"]: row for row in iter_rows(quickdraw_bench, split="train")}
    rollouts = _rollouts(log)
    assert len(rollouts) == 8 and {r["step"] for r in rollouts} == {1, 2}
    assert max(len(r["turns"]) for r in rollouts) >= 2
    for rollout in rollouts:
        assert set(rollout) == {"step", "sample_id", "turns", "reward", "correct", "stop_reason"}
        episode = Episode(rows[rollout["sample_id"]])
        for turn in rollout["turns"]:
            observation = episode.observe()
            assert (turn["state"], turn["frame"]) == (observation.state, observation.frame)
            episode.step(turn["output"])
        assert episode.done
        result = episode.result
        assert (result.correct, result.stop_reason) == (rollout["correct"], rollout["stop_reason"])
        assert rollout["reward"] == pytest.approx(episode_return(result, 0.1, 0.01).reward)


def test_trainer_logs_the_rewards_and_mean_turns(trained):
    out, log = trained
    steps = [json.loads(line) for line in (out / "reward_log.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps] == [1, 2]
    rollouts = _rollouts(log)
    for step in steps:
        mine = [r for r in rollouts if r["step"] == step["step"]]
        assert step["episode/turns"] == pytest.approx(sum(len(r["turns"]) for r in mine) / len(mine))
        assert step["reward"] == pytest.approx(sum(r["reward"] for r in mine) / len(mine))
        assert step["episode/correct"] == pytest.approx(sum(r["correct"] for r in mine) / len(mine))
        stops = sum(v for k, v in step.items() if k.startswith("episode/stop/"))
        assert stops == pytest.approx(1.0)


def test_adapter_has_the_lora_defaults_and_evaluates(trained, letter_model, quickdraw_bench, tmp_path):
    import duckdb

    out, _ = trained
    config = json.loads((out / "adapter_config.json").read_text())
    assert (config["r"], config["lora_alpha"], config["lora_dropout"]) == (16, 16, 0.1)
    assert set(config["target_modules"]) == {"q_proj", "k_proj"}
    record = json.loads((out / "proactivebench_grpo.json").read_text())
    assert record["steps"] == 2 and record["multi_turn"]["context"] == "fresh"
    for mode in ([], ["--history"]):
        results = tmp_path / f"results{len(mode)}.duckdb"
        assert main([
            "eval", "--dataset", str(quickdraw_bench), "--model", f"hf:{letter_model}+{out}", "--results",
            str(results), "--limit", "1", "--max-new-tokens", "4", "--no-progress", *mode,
        ]) == 0
        with duckdb.connect(str(results), read_only=True) as db:
            assert db.execute("select model from runs").fetchone()[0] == f"{letter_model}+{out}"
            assert db.execute("select count(*) from episodes").fetchone()[0] == 1


def test_resumes_from_a_checkpoint(trained, quickdraw_bench, letter_model):
    out, log = trained
    before = len(_rollouts(log))
    assert _train(quickdraw_bench, letter_model, out, "--max-steps", "3", "--context", "history",
                  "--resume-from-checkpoint", str(out / "checkpoint-2"), "--rollout-log", str(log)) == 0
    record = json.loads((out / "proactivebench_grpo.json").read_text())
    assert record["steps"] == 3
    added = _rollouts(log)[before:]
    assert len(added) == 4 and {r["step"] for r in added} == {3}


def test_flags_that_need_multi_turn_and_an_existing_log(quickdraw_bench, letter_model, tmp_path, capsys):
    base = ["train-grpo", "--dataset", str(quickdraw_bench), "--model", f"hf:{letter_model}",
            "--output-dir", str(tmp_path / "out")]
    assert main([*base, "--context", "history"]) == 2
    assert "only apply with --multi-turn" in capsys.readouterr().err
    log = tmp_path / "taken.jsonl"
    log.write_text("{}\n")
    assert main([*base, "--multi-turn", "--rollout-log", str(log)]) == 2
    assert "already exists" in capsys.readouterr().err and log.read_text() == "{}\n"
    assert main([*base, "--multi-turn", "--turn-penalty", "-1"]) == 2
