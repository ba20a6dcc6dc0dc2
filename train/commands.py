"""`proactivebench train-grpo`: GRPO with TRL on a train split, LoRA adapter out."""

from __future__ import annotations

import argparse
from pathlib import Path

from proactivebench.sources import SOURCE_NAMES

EPILOG = """\
Defaults follow the paper: LoRA r 16, alpha 16, dropout 0.1 on q_proj and k_proj; 8 generations per prompt;
lr 2e-5, cosine schedule, no warmup, weight decay 0; one epoch. The paper's batch of 512 completions is
--batch-size x --gradient-accumulation-steps x GPUs (e.g. 8 x 8 x 8).

Several GPUs (and DeepSpeed ZeRO-3 as in the paper) go through accelerate:
  accelerate launch --num_processes 8 -m proactivebench.cli train-grpo --dataset DIR --model hf:BASE \\
      --output-dir OUT --deepspeed zero3.json

--multi-turn trains on whole episodes instead: each rollout is played through the evaluator's engine (the
next frame arrives as a user message), the reward is 1 for an episode that ends correct, else 0, plus
--proactive-reward per valid move minus --turn-penalty per extra turn (that shaping clipped to +-0.45, so a
correct episode always earns more). --rollout-log FILE.jsonl records every rollout's turns.

Evaluate the saved adapter with:
  proactivebench eval --dataset DIR --model hf:BASE+OUT
The reward and the share of proactive vs answer completions of every logged step go to OUT/reward_log.jsonl:
blind proactiveness (the paper's collapse at --proactive-reward 1.0) shows as proactive/valid_move -> 1.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train-grpo",
        help="teach proactiveness with GRPO (TRL + LoRA) on a train split",
        description="GRPO with TRL's GRPOTrainer on a hub-layout train split, expanded to one single-turn example "
        "per state (its frame and MCQA prompt). Reward through the evaluator's parser and state graph: 1 for the "
        "correct category where the state accepts one, --proactive-reward for a valid proactive move, 0 otherwise.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dataset", required=True, help="hub-layout folder or Hub repo with a train split")
    parser.add_argument("--model", required=True, metavar="SPEC", help="base model, hf:<id or dir>")
    parser.add_argument("--output-dir", type=Path, required=True, help="where the LoRA adapter is saved")
    parser.add_argument("--split", default="train", help="split to train on (default: train)")
    parser.add_argument("--sources", nargs="+", choices=SOURCE_NAMES, help="only these sources")
    parser.add_argument("--limit", type=int, help="only the first N episodes")
    parser.add_argument("--proactive-reward", type=float, default=None,
                        help="reward of a valid proactive move (paper: 0.5, 0.75, 1.0; default 0.5; with "
                        "--multi-turn a bonus per valid move, default 0)")
    parser.add_argument("--parser", choices=("paper", "lenient"), default="paper", help="answer parser (default paper)")
    parser.add_argument("--hint", action="store_true", help="append the scenario hint to the prompts")
    parser.add_argument("--max-steps", type=int, default=-1, help="stop after N optimizer steps (default: one epoch)")
    parser.add_argument("--epochs", type=float, default=1.0, help="epochs (default 1)")
    parser.add_argument("--learning-rate", type=float, default=2e-5)
    parser.add_argument("--num-generations", type=int, default=8, help="completions per prompt (default 8)")
    parser.add_argument("--batch-size", type=int, default=8,
                        help="completions per device and step, a multiple of --num-generations (default 8)")
    parser.add_argument("--gradient-accumulation-steps", type=int, default=1)
    parser.add_argument("--max-completion-length", type=int, default=32, help="new tokens per completion (default 32)")
    parser.add_argument("--temperature", type=float, default=1.0, help="sampling temperature of the rollouts")
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--lora-alpha", type=int, default=16)
    parser.add_argument("--lora-dropout", type=float, default=0.1)
    parser.add_argument("--lora-targets", nargs="+", default=["q_proj", "k_proj"], help="module names for LoRA")
    parser.add_argument("--save-steps", type=int, default=0, help="also checkpoint every N steps (default: only the end)")
    parser.add_argument("--deepspeed", help="DeepSpeed JSON config (with accelerate launch), e.g. ZeRO-3")
    parser.add_argument("--seed", type=int, default=0)
    multi = parser.add_argument_group("multi-turn (a rollout is a whole episode through the engine)")
    multi.add_argument("--multi-turn", action="store_true",
                       help="train on whole episodes: reward 1 when the episode ends correct, else 0")
    multi.add_argument("--context", choices=("fresh", "history"), default="fresh",
                       help="fresh: each turn a fresh prompt, as eval; history: the chat grows, as eval --history")
    multi.add_argument("--history-size", type=int, default=224, metavar="PX",
                       help="with --context history: short edge of the images, as eval --history (default 224)")
    multi.add_argument("--turn-penalty", type=float, default=0.0, help="subtracted per turn after the first")
    multi.add_argument("--rollout-log", help="JSONL file: one object per rollout (turns, reward, stop reason)")
    multi.add_argument("--resume-from-checkpoint", help="a checkpoint folder of an earlier run (--save-steps)")
    parser.set_defaults(func=run_train_grpo)


# flag -> (rule, what it says): values the trainer would take silently (0 epochs trains nothing, exit 0) or
# refuse only after the model is loaded, each refused here in one line.
RANGES = {
    "epochs": (lambda v: v > 0, "more than 0"),
    "learning_rate": (lambda v: v > 0, "more than 0"),
    "temperature": (lambda v: v > 0, "more than 0"),
    "lora_dropout": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "max_steps": (lambda v: v == -1 or v >= 1, "at least 1 (or -1: one pass of --epochs)"),
    "save_steps": (lambda v: v >= 0, "at least 0"),
}


def _check_ranges(args: argparse.Namespace) -> None:
    import importlib.util

    from proactivebench.safe_files import OutputFolder

    for name, (rule, says) in RANGES.items():
        value = getattr(args, name, None)
        if value is not None and not rule(value):
            raise ValueError(f"--{name.replace('_', '-')} {value}: must be {says}")
    if args.deepspeed:
        if not Path(args.deepspeed).is_file():
            raise ValueError(f"--deepspeed {args.deepspeed}: no such file")
        if importlib.util.find_spec("deepspeed") is None:
            raise ValueError("--deepspeed needs the deepspeed package (pip install deepspeed)")
    # the adapter goes into a new or empty folder, or one an earlier run wrote (proactivebench/safe_files.py)
    OutputFolder.check(args.output_dir, "--output-dir", {"--dataset": args.dataset})


def run_train_grpo(args: argparse.Namespace) -> int:
    from proactivebench.safe_files import OutputFolder

    from .grpo import GRPOSettings, train_grpo

    for name in ("num_generations", "batch_size", "gradient_accumulation_steps", "max_completion_length", "lora_r"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
    if args.num_generations < 2:
        raise ValueError("--num-generations must be at least 2 (GRPO compares completions of one prompt)")
    _check_ranges(args)
    if not args.multi_turn:
        extras = [flag for flag, value in (("--context", args.context != "fresh"), ("--turn-penalty", args.turn_penalty),
                  ("--rollout-log", args.rollout_log), ("--resume-from-checkpoint", args.resume_from_checkpoint))
                  if value]
        if extras:
            raise ValueError(f"{', '.join(extras)} only apply with --multi-turn")
    proactive_reward = args.proactive_reward if args.proactive_reward is not None else (0.0 if args.multi_turn else 0.5)
    settings = GRPOSettings(
        proactive_reward=proactive_reward, parser=args.parser, hint=args.hint, lora_r=args.lora_r,
        lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout, lora_targets=list(args.lora_targets),
        num_generations=args.num_generations, batch_size=args.batch_size,
        gradient_accumulation_steps=args.gradient_accumulation_steps, learning_rate=args.learning_rate,
        num_train_epochs=args.epochs, max_steps=args.max_steps, max_completion_length=args.max_completion_length,
        temperature=args.temperature, seed=args.seed, save_steps=args.save_steps, deepspeed=args.deepspeed,
    )
    if args.multi_turn:
        from .grpo_multi_turn import MultiTurnSettings, train_multi_turn

        multi = MultiTurnSettings(
            context=args.context, proactive_reward=proactive_reward, turn_penalty=args.turn_penalty,
            history_size=args.history_size,
            rollout_log=args.rollout_log, resume_from_checkpoint=args.resume_from_checkpoint,
        ).validate()
        result = train_multi_turn(
            args.dataset, args.model, args.output_dir, settings, multi, args.split, args.sources, args.limit
        )
        print(f"trained {result.steps} step(s) on {result.examples} episodes; adapter in {result.output_dir}")
    else:
        result = train_grpo(args.dataset, args.model, args.output_dir, settings, args.split, args.sources, args.limit)
        print(f"trained {result.steps} step(s) on {result.examples} single-turn examples; adapter in {result.output_dir}")
    # the folder is now the tool's: a rerun (or --resume-from-checkpoint) may write into it again
    OutputFolder(args.output_dir, "--output-dir").record()
    print(f"evaluate with: proactivebench eval --dataset {args.dataset} --model {result.eval_spec}")
    return 0
