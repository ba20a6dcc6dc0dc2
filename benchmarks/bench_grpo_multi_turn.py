"""Seconds per GRPO step on this machine: single-turn vs multi-turn (fresh and history), same model and batch.

The model is the tiny random-weight LLaVA that mostly answers the proactive letter (proactivebench/samples/tiny_policies.py), so
multi-turn episodes run several turns; the data is the sample QuickDraw train split. Prints one line per mode:
seconds per step (TRL's train_runtime / steps) and, for multi-turn, the mean turns per rollout. Random weights:
these are costs, not learning curves.

    python benchmarks/bench_grpo_multi_turn.py [--steps 4] [--batch-size 4] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=4, help="completions (rollouts) per step")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()

    import torch

    from proactivebench.builders.build_runner import build_source
    from proactivebench.samples.native import write_sample_data
    from proactivebench.train.grpo import GRPOSettings, train_grpo
    from proactivebench.train.grpo_multi_turn import MultiTurnSettings, train_multi_turn
    from proactivebench.samples.tiny_policies import build_letter_policy

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        raw = write_sample_data(root / "raw", ["quickdraw"], per_source=1, progress=False)
        build_source("quickdraw", raw["quickdraw"], root / "bench", split="train", progress=False)
        model = f"hf:{build_letter_policy(root / 'model')}"

        def settings(proactive_reward: float) -> GRPOSettings:
            return GRPOSettings(proactive_reward=proactive_reward, num_generations=args.batch_size,
                                batch_size=args.batch_size, max_steps=args.steps, max_completion_length=4)

        rows = []
        result = train_grpo(root / "bench", model, root / "single", settings(0.5))
        rows.append(("single-turn", result.metrics["train_runtime"] / result.steps, None))
        for context in ("fresh", "history"):
            out = root / context
            multi = MultiTurnSettings(context=context, proactive_reward=0.1)
            result = train_multi_turn(root / "bench", model, out, settings(0.1), multi)
            logged = [json.loads(line) for line in (out / "reward_log.jsonl").read_text().splitlines()]
            turns = sum(entry["episode/turns"] for entry in logged) / len(logged)
            rows.append((f"multi-turn {context}", result.metrics["train_runtime"] / result.steps, turns))
    print(f"{args.steps} steps, {args.batch_size} completions/rollouts per step, {args.threads} torch thread(s)")
    for name, seconds, turns in rows:
        extra = f", {turns:.2f} turns per rollout" if turns is not None else ""
        print(f"{name:20s} {seconds:6.2f} s/step{extra}")


if __name__ == "__main__":
    main()
