"""Two GRPO steps on the CPU with the tiny random-weight LLaVA on the sample data's train split, the adapter
saved, then evaluated by `proactivebench eval --model hf:<base>+<adapter>`."""

import json

import pytest

from proactivebench.cli import main
from proactivebench.graph import StateGraph
from proactivebench.schema import states_from_rows
from proactivebench.store import iter_rows


@pytest.fixture(scope="module")
def train_bench(tmp_path_factory):
    """The sample data's QuickDraw and COCO built by the builders: their train split, and a test split to evaluate."""
    from proactivebench.builders.build_runner import build_source
    from proactivebench.samples.native import write_sample_data

    root = tmp_path_factory.mktemp("grpo")
    raw = write_sample_data(root / "raw", ["quickdraw", "coco"], per_source=1, progress=False)
    bench = root / "bench"
    for source in ("quickdraw", "coco"):
        for split in ("train", "test"):
            build_source(source, raw[source], bench, split=split, progress=False)
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
    # One example per state reachable within the turn budget.
    reachable = [
        len(StateGraph(states_from_rows(row["states"])).reachable(row["first_state"], row["max_turns"]))
        for row in iter_rows(train_bench, split="train")
    ]
    assert settings["episodes"] == len(reachable) and settings["examples"] == sum(reachable) > len(reachable)
    assert settings["settings"]["proactive_reward"] == 0.75 and settings["settings"]["learning_rate"] == 2e-5


def test_reward_logged_every_step(trained):
    lines = [json.loads(line) for line in (trained / "reward_log.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2]
    for line in lines:
        parts = [line[k] for k in ("proactive/any_option", "answer/any", "unparsed")]
        assert 0.0 <= line["reward"] <= 1.0
        assert all(0.0 <= p <= 1.0 for p in parts) and sum(parts) <= 1.0 + 1e-6


def test_saved_adapter_evaluates_with_the_eval_command(trained, train_bench, tiny_llava_dir, tmp_path):
    """`proactivebench eval --model hf:<base>+<adapter>` plays the test episodes and records them."""
    import duckdb

    results = tmp_path / "results.duckdb"
    assert main([
        "eval", "--dataset", str(train_bench), "--model", f"hf:{tiny_llava_dir}+{trained}", "--results", str(results),
        "--sources", "quickdraw", "--limit", "2", "--max-new-tokens", "8", "--no-progress",
    ]) == 0
    with duckdb.connect(str(results), read_only=True) as db:
        model, config = db.execute("select model, config_json from runs").fetchone()
        episodes = db.execute("select sample_id, num_turns, stop_reason from episodes").fetchall()
        turns = db.execute("select count(*) from turns where error = ''").fetchone()[0]
    assert model == f"{tiny_llava_dir}+{trained}"
    assert json.loads(config)["backend"]["adapter"] == str(trained)
    assert len(episodes) == 2 and all(n >= 1 and reason for _, n, reason in episodes)
    assert turns == sum(n for _, n, _ in episodes)
