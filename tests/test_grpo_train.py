"""Two GRPO steps on the CPU with the tiny random-weight LLaVA, the adapter saved, then evaluated as hf:<base>+<adapter>."""

import json

import pytest

from proactivebench.cli import main
from proactivebench.eval.grpo import reachable_states
from proactivebench.store import iter_rows, write_split


@pytest.fixture(scope="module")
def train_bench(imported_dir, tmp_path_factory):
    """QuickDraw and COCO episodes of the sample release as both a train and a test split."""
    bench = tmp_path_factory.mktemp("grpo") / "bench"
    for source in ("quickdraw", "coco"):
        rows = list(iter_rows(imported_dir, [source], "test"))
        write_split(bench, source, "test", rows)
        write_split(bench, source, "train", rows)
    return bench


@pytest.fixture(scope="module")
def trained(train_bench, tiny_llava_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("grpo") / "adapter"
    code = main([
        "train-grpo", "--dataset", str(train_bench), "--model", f"hf:{tiny_llava_dir}", "--output-dir", str(out),
        "--max-steps", "2", "--num-generations", "2", "--batch-size", "2", "--max-completion-length", "8",
        "--proactive-reward", "0.75",
    ])
    assert code == 0
    return out


def test_adapter_saved_with_the_paper_lora_settings(trained, tiny_llava_dir, train_bench):
    config = json.loads((trained / "adapter_config.json").read_text())
    assert (trained / "adapter_model.safetensors").stat().st_size > 0
    assert (config["r"], config["lora_alpha"], config["lora_dropout"]) == (16, 16, 0.1)
    assert set(config["target_modules"]) == {"q_proj", "k_proj"}
    assert config["base_model_name_or_path"] == str(tiny_llava_dir)
    settings = json.loads((trained / "proactivebench_grpo.json").read_text())
    assert settings["steps"] == 2
    # One example per state reachable within the budget: quickdraw 3; COCO up_left 9, zoom 4, right 3.
    reachable = {
        row["sample_id"]: len(reachable_states(row["states"], row["first_state"], row["max_turns"]))
        for row in iter_rows(train_bench, split="train")
    }
    assert reachable == {"quickdraw-000000": 3, "coco-000000": 9, "coco-000001": 4, "coco-000002": 3}
    assert settings["examples"] == sum(reachable.values()) == 19
    assert settings["settings"]["proactive_reward"] == 0.75 and settings["settings"]["learning_rate"] == 2e-5


def test_reward_logged_every_step(trained):
    lines = [json.loads(line) for line in (trained / "reward_log.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2]
    for line in lines:
        parts = [line[k] for k in ("proactive/any_option", "answer/any", "unparsed")]
        assert 0.0 <= line["reward"] <= 1.0
        assert all(0.0 <= p <= 1.0 for p in parts) and sum(parts) <= 1.0 + 1e-6


def test_saved_adapter_evaluates(trained, train_bench, tiny_llava_dir):
    """The adapter loads on its base through the hf backend and plays whole episodes."""
    import datasets

    from proactivebench.eval import Episode
    from proactivebench.eval.backends import load_backend
    from proactivebench.eval.backends.base import single_turn

    backend = load_backend(f"hf:{tiny_llava_dir}+{trained}", max_new_tokens=8)
    try:
        results = []
        for row in datasets.load_dataset(str(train_bench), "quickdraw", split="test"):
            episode = Episode(row)
            while not episode.done:
                observation = episode.observe()
                generation = backend.generate([single_turn(observation.prompt, [observation.image])])[0]
                assert generation.error == ""
                episode.step(generation.text)
            results.append(episode.result)
    finally:
        backend.close()
    assert len(results) == 1 and results[0].num_turns >= 1 and results[0].stop_reason
