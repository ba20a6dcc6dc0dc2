"""GRPO on the train split with TRL: single-turn examples, a reward through the evaluator's own engine, LoRA.

The paper (docs/protocol.md §8.2) trains on ~27k single-turn examples, ambiguous and unambiguous frames alike, with
8 rollouts per prompt and the reward 1 for the correct category, r_p ∈ {0.5, 0.75, 1.0} for a valid proactive
suggestion, 0 otherwise; LoRA r 16, α 16, dropout 0.1 on q_proj and k_proj; lr 2e-5, cosine, 1 epoch.

Here an episode expands to one example per state reachable within its turn budget: that state's frame and the
exact MCQA prompt the evaluator shows there. The reward replays the completion as one turn of
`proactivebench.eval.Episode` started at that state, so training and evaluation agree on what counts as a
correct answer, a valid move, an abstention or unparseable text, by construction.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from proactivebench.engine import Episode
from proactivebench.graph import StateGraph
from proactivebench.parsing import CORRECT, get_parser
from proactivebench.schema import FEATURES, EpisodeRecord
from proactivebench.store import load_episodes

log = logging.getLogger(__name__)

PAPER_PROACTIVE_REWARDS = (0.5, 0.75, 1.0)
SETTINGS_FILE = "proactivebench_grpo.json"
REWARD_LOG = "reward_log.jsonl"



# --- the reward ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What one completion did at one state, and its reward."""

    kind: str  # correct / proactive / wrong_category / premature_answer / abstain / invalid_option / unparsed
    chosen_kind: str  # the engine's: proactive / abstain / category / none
    reward: float


def score(
    episode: EpisodeRecord, state: int, completion: str, proactive_reward: float = 0.5, parser: str = "paper"
) -> Outcome:
    """Step the evaluator's engine one turn from `state` with `completion` and turn the verdicts into a reward."""
    turn_engine = Episode(replace(episode, first_state=int(state), max_turns=1).to_row(), parser=parser)
    turn = turn_engine.step(completion)
    if turn.category_verdict == CORRECT:
        return Outcome("correct", turn.chosen_kind, 1.0)
    if turn.option_verdict == CORRECT:  # a shown option with a move from this state
        return Outcome("proactive", turn.chosen_kind, float(proactive_reward))
    return Outcome(turn_engine.stop_reason, turn.chosen_kind, 0.0)


@lru_cache(maxsize=4096)
def episode_record(payload: str) -> EpisodeRecord:
    """An example's `episode` column (JSON of the record without frames) → the typed record."""
    return EpisodeRecord.from_row(json.loads(payload), frames=False)


def completion_text(completion: Any) -> str:
    """TRL passes conversational completions as [{"role": "assistant", "content": ...}]; plain ones as text."""
    if isinstance(completion, str):
        return completion
    parts = []
    for message in completion:
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(p.get("text") or "" for p in content if isinstance(p, dict) and p.get("type") == "text")
    return "".join(parts)


class ProactivenessReward:
    """TRL reward function: `episode` (JSON) and `state` come from the dataset columns of the same name.

    With TRL's `log_metric` it logs, per batch, the share of completions that were a valid proactive move, any
    shown option, any category, the correct category, an abstention, unparseable: blind proactiveness (the
    paper's collapse at r_p = 1.0) shows as `proactive/valid_move` → 1 with `answer/any` → 0.
    """

    __name__ = "proactiveness"

    def __init__(self, proactive_reward: float = 0.5, parser: str = "paper"):
        get_parser(parser)  # a clear error for an unknown name
        if not 0.0 <= proactive_reward <= 1.0:
            raise ValueError(f"--proactive-reward must lie in [0, 1], got {proactive_reward}")
        self.proactive_reward = proactive_reward
        self.parser = parser

    def outcomes(self, completions: Sequence[Any], episode: Sequence[str], state: Sequence[int]) -> list[Outcome]:
        return [
            score(episode_record(e), int(s), completion_text(c), self.proactive_reward, self.parser)
            for c, e, s in zip(completions, episode, state, strict=True)
        ]

    def __call__(self, prompts=None, completions=(), episode=(), state=(), log_metric: Callable | None = None, **_):
        outcomes = self.outcomes(completions, episode, state)
        if log_metric is not None and outcomes:
            for name, value in shares(outcomes).items():
                log_metric(name, value)
        return [o.reward for o in outcomes]


def shares(outcomes: Sequence[Outcome]) -> dict[str, float]:
    n = len(outcomes)

    def share(predicate) -> float:
        return sum(1 for o in outcomes if predicate(o)) / n

    return {
        "proactive/valid_move": share(lambda o: o.kind == "proactive"),
        "proactive/any_option": share(lambda o: o.chosen_kind == "proactive"),
        "answer/any": share(lambda o: o.chosen_kind == "category"),
        "answer/correct": share(lambda o: o.kind == "correct"),
        "abstain": share(lambda o: o.kind == "abstain"),
        "unparsed": share(lambda o: o.kind == "unparsed"),
    }


# --- episodes → single-turn examples ------------------------------------------------------------------------


def expand_episode(row: Mapping[str, Any], hint: bool = False) -> list[dict]:
    """One example per reachable state: the evaluator's prompt there, its frame, and what the reward needs."""
    # The reward's copy of the episode leaves the frames out: the image travels in `image`.
    record = EpisodeRecord.from_row(row, frames=False)
    payload = json.dumps(record.to_row(), sort_keys=True)
    examples = []
    for state in StateGraph(record.states).reachable(record.first_state, record.max_turns):
        observation = Episode(replace(record, first_state=state).to_row(), hint=hint).observe()
        examples.append(
            {
                "prompt": [{"role": "user", "content": observation.prompt}],
                "image": row["frames"][observation.frame],
                "episode": payload,
                "state": state,
                "sample_id": row["sample_id"],
            }
        )
    return examples


def train_features():
    import datasets

    return datasets.Features(
        {
            "prompt": datasets.List({"role": datasets.Value("string"), "content": datasets.Value("string")}),
            "image": datasets.Image(),
            "episode": datasets.Value("string"),
            "state": datasets.Value("int32"),
            "sample_id": datasets.Value("string"),
        }
    )


def _expand_batch(batch: dict[str, list], hint: bool) -> dict[str, list]:
    rows = [dict(zip(batch, values)) for values in zip(*batch.values())]
    examples = [example for row in rows for example in expand_episode(row, hint)]
    return {name: [e[name] for e in examples] for name in train_features()}


def frames_undecoded(episodes):
    """The episodes with frames left as bytes. `store.load_episodes` already loads them so; recasting would
    rewrite the whole column in Arrow arrays that overflow past 2 GiB, so cast only a dataset that decodes."""
    import datasets

    frames = episodes.features["frames"]
    image = getattr(frames, "feature", frames)
    if getattr(image, "decode", False):
        episodes = episodes.cast_column("frames", datasets.List(datasets.Image(decode=False)))
    return episodes


def build_train_dataset(episodes, hint: bool = False, num_proc: int | None = None):
    """A `datasets.Dataset` of episodes → the single-turn GRPO dataset (conversational `prompt` + `image`)."""
    missing = [name for name in FEATURES if name not in episodes.column_names]
    if missing:
        raise ValueError(f"the episodes lack the column(s) {', '.join(missing)}")
    # Frames stay encoded: only each state's own frame is carried over, as bytes.
    episodes = frames_undecoded(episodes)
    return episodes.map(
        _expand_batch, batched=True, batch_size=16, remove_columns=episodes.column_names, features=train_features(),
        fn_kwargs={"hint": hint}, num_proc=num_proc, desc="expand episodes into states",
    )


# --- model and trainer --------------------------------------------------------------------------------------


@dataclass
class GRPOSettings:
    """Defaults are the paper's (docs/protocol.md §8.2) where it gives them."""

    proactive_reward: float = 0.5
    parser: str = "paper"
    hint: bool = False
    lora_r: int = 16
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    lora_targets: list[str] = field(default_factory=lambda: ["q_proj", "k_proj"])
    num_generations: int = 8
    batch_size: int = 8  # completions per device and step; prompts per step = batch_size * devices / num_generations
    gradient_accumulation_steps: int = 1
    learning_rate: float = 2e-5
    lr_scheduler_type: str = "cosine"
    weight_decay: float = 0.0
    num_train_epochs: float = 1.0
    max_steps: int = -1
    max_completion_length: int = 32
    temperature: float = 1.0
    seed: int = 0
    logging_steps: int = 1
    save_steps: int = 0  # 0: only the final adapter
    deepspeed: str | None = None  # a DeepSpeed JSON config, e.g. ZeRO-3 as in the paper


def parse_model_spec(spec: str) -> str:
    """`hf:<id or dir>` → the path or id; other backends cannot be trained."""
    backend, _, target = spec.partition(":")
    if backend != "hf" or not target:
        raise ValueError(f"train-grpo needs a transformers model, spelled hf:<id or dir>; got {spec!r}")
    if "+" in target:
        raise ValueError(f"{spec!r}: train from a base model, not from a model with an adapter")
    return target


def _precision() -> tuple[Any, dict[str, Any]]:
    """dtype and GRPOConfig precision flags for the device at hand: bf16 on a GPU that has it, else fp32."""
    import torch

    if torch.cuda.is_available():
        if torch.cuda.is_bf16_supported():
            return torch.bfloat16, {"bf16": True}
        return torch.float16, {"bf16": False, "fp16": True}
    return torch.float32, {"bf16": False, "use_cpu": True}


def load_model(target: str, dtype):
    import transformers

    errors = []
    for auto in (transformers.AutoModelForImageTextToText, transformers.AutoModelForCausalLM):
        try:
            return auto.from_pretrained(target, dtype=dtype)
        except ValueError as error:  # "Unrecognized configuration class" for this auto class
            errors.append(str(error).splitlines()[0])
    raise ValueError(f"{target}: not a vision-language model transformers can load ({'; '.join(errors)})")


def grpo_config(settings: GRPOSettings, output_dir: Path, **overrides):
    """TRL's GRPOConfig for these settings on the device at hand."""
    from trl import GRPOConfig

    _, precision = _precision()
    options = dict(
        output_dir=str(output_dir),
        per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.gradient_accumulation_steps,
        num_generations=settings.num_generations,
        max_completion_length=settings.max_completion_length,
        temperature=settings.temperature,
        learning_rate=settings.learning_rate,
        lr_scheduler_type=settings.lr_scheduler_type,
        warmup_steps=0,
        weight_decay=settings.weight_decay,
        num_train_epochs=settings.num_train_epochs,
        max_steps=settings.max_steps,
        logging_steps=settings.logging_steps,
        save_strategy="steps" if settings.save_steps else "no",
        save_steps=settings.save_steps or 500,
        report_to="none",
        seed=settings.seed,
        remove_unused_columns=False,  # the episode columns must reach the reward function
        deepspeed=settings.deepspeed,
        **precision,
    )
    return GRPOConfig(**{**options, **overrides})


def build_trainer(trainer_class, target: str, settings: GRPOSettings, output_dir: Path, train_dataset, **kwargs):
    """(trainer, processor): `trainer_class` (GRPOTrainer or a subclass) with the model, LoRA and config."""
    from peft import LoraConfig
    from transformers import AutoProcessor

    dtype, _ = _precision()
    model = load_model(target, dtype)
    processor = AutoProcessor.from_pretrained(target)
    peft_config = LoraConfig(
        r=settings.lora_r, lora_alpha=settings.lora_alpha, lora_dropout=settings.lora_dropout,
        target_modules=list(settings.lora_targets), task_type="CAUSAL_LM",
    )
    trainer = trainer_class(
        model=model, args=grpo_config(settings, output_dir), train_dataset=train_dataset, processing_class=processor,
        peft_config=peft_config, callbacks=[reward_log_callback(output_dir)], **kwargs,
    )
    return trainer, processor


def save_run(trainer, processor, output_dir: Path, output, record: dict) -> None:
    """The LoRA adapter (adapter_config.json + adapter_model.safetensors), the processor and the run record."""
    trainer.save_model(str(output_dir))
    if trainer.accelerator.is_main_process:
        processor.save_pretrained(str(output_dir))
        from proactivebench.store import atomic_write_json

        atomic_write_json(output_dir / SETTINGS_FILE, {**record, "metrics": output.metrics})


def reward_log_callback(output_dir: Path):
    """A TrainerCallback that appends each logged step's reward and completion shares to
    `<output_dir>/reward_log.jsonl` and logs a line (transformers is imported only when training)."""
    from transformers import TrainerCallback

    class _RewardLog(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs or "reward" not in logs or not state.is_world_process_zero:
                return
            keys = ("reward", "reward_std", "proactive/valid_move", "proactive/any_option", "answer/any",
                    "answer/correct", "abstain", "unparsed", "learning_rate", "loss")
            entry = {"step": state.global_step, **{k: logs[k] for k in keys if k in logs}}
            entry.update({k: v for k, v in logs.items() if k.startswith("episode/")})  # multi-turn rollouts
            output_dir.mkdir(parents=True, exist_ok=True)
            with open(output_dir / REWARD_LOG, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(entry) + "\n")
            log.info(
                "step %d: reward %.3f, valid moves %.0f%%, answers %.0f%% (correct %.0f%%)",
                state.global_step, logs["reward"], 100 * logs.get("proactive/valid_move", 0.0),
                100 * logs.get("answer/any", 0.0), 100 * logs.get("answer/correct", 0.0),
            )
            if logs.get("proactive/valid_move", 0.0) > 0.95 and logs.get("answer/any", 1.0) < 0.05:
                log.warning("step %d: nearly every completion is a proactive move: blind proactiveness?", state.global_step)

    return _RewardLog()


@dataclass
class TrainResult:
    output_dir: Path
    base_model: str
    examples: int
    steps: int
    metrics: dict[str, float]

    @property
    def eval_spec(self) -> str:
        return f"hf:{self.base_model}+{self.output_dir}"


def train_grpo(
    dataset: str | Path,
    model_spec: str,
    output_dir: str | Path,
    settings: GRPOSettings | None = None,
    split: str = "train",
    sources: Sequence[str] | None = None,
    limit: int | None = None,
) -> TrainResult:
    """Run TRL's GRPOTrainer with LoRA on the expanded split; save the adapter (+ processor) to `output_dir`."""
    settings = settings or GRPOSettings()
    target = parse_model_spec(model_spec)
    reward = ProactivenessReward(settings.proactive_reward, settings.parser)
    output_dir = Path(output_dir)
    if settings.batch_size % settings.num_generations:
        raise ValueError(
            f"--batch-size {settings.batch_size} must be a multiple of --num-generations {settings.num_generations}"
        )

    episodes = load_episodes(dataset, split, sources)
    if limit is not None:
        episodes = episodes.select(range(min(limit, len(episodes))))
    train_dataset = build_train_dataset(episodes, hint=settings.hint)

    from trl import GRPOTrainer

    trainer, processor = build_trainer(
        GRPOTrainer, target, settings, output_dir, train_dataset, reward_funcs=[reward],
    )
    output = trainer.train()
    save_run(trainer, processor, output_dir, output, {
        "base_model": target, "dataset": str(dataset), "split": split, "sources": list(sources or []),
        "examples": len(train_dataset), "episodes": len(episodes), "steps": trainer.state.global_step,
        "settings": asdict(settings),
    })
    return TrainResult(output_dir, target, len(train_dataset), trainer.state.global_step, dict(output.metrics))
