"""`train-grpo --multi-turn`: GRPO where a rollout is a whole episode played through the evaluator's engine.

TRL 1.16 offers two hooks for multi-turn rollouts; this uses `rollout_func`, not `environment_factory`:
- `environment_factory` exposes the environment's methods as *tools*: the model must emit tool calls that the
  tokenizer's response schema parses, and each result comes back as a tool-role message. ProactiveBench's models
  answer in plain text (a letter or an option), chat templates drop images inside tool-role messages (TRL #5663),
  and the conversation always grows, so neither a fresh per-turn prompt nor a new frame as a user message fits.
- `rollout_func(prompts, trainer)` hands generation to us: each rollout is `play_episodes` (grpo_rollout.py) with
  transformers `generate`, the next frame delivered as a USER message built by the evaluator's own request makers.
  Generation never goes through vLLM here, so the pre-expanded image tokens of TRL #6294 do not arise.

What TRL does not do for a rollout_func is score a completion whose parts were sampled in different contexts
(fresh prompts per turn, or new images between answers): its forward pass renders the dataset prompt with the
dataset images only. `MultiTurnGRPOTrainer` overrides just that: the completion is the turns' answers one after
the other, and each answer's per-token log-probabilities (and entropies) come from a forward pass over the exact
context it was sampled in (the `Segment` recorded during the rollout), through TRL's own fused LM head. Losses,
advantages, clipping, LoRA, logging and checkpoints stay TRL's.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from proactivebench.engine import STOP_ABSTAIN, STOP_CORRECT, STOP_INVALID, STOP_MAX_TURNS, STOP_PREMATURE, STOP_UNPARSED, \
    STOP_WRONG_CATEGORY, Episode
from proactivebench.store import load_episodes
from .grpo import GRPOSettings, frames_undecoded, build_trainer, parse_model_spec, save_run, TrainResult
from .grpo_rollout import CONTEXTS, TurnGenerator, play_episodes, score_answers, validate_shaping
from proactivebench.eval.history import HISTORY_SIZE

log = logging.getLogger(__name__)

STOP_REASONS = (STOP_CORRECT, STOP_WRONG_CATEGORY, STOP_PREMATURE, STOP_ABSTAIN, STOP_INVALID, STOP_UNPARSED,
                STOP_MAX_TURNS)


@dataclass
class MultiTurnSettings:
    context: str = "fresh"  # fresh: each turn a fresh prompt (plain eval); history: the chat grows (eval --history)
    proactive_reward: float = 0.0  # per valid move; the episode's correctness alone by default
    turn_penalty: float = 0.0  # per turn after the first
    history_size: int | None = HISTORY_SIZE  # short edge of every image in history mode, as eval --history
    rollout_log: str | None = None  # JSONL, one object per rollout
    resume_from_checkpoint: str | None = None

    def validate(self) -> "MultiTurnSettings":
        if self.context not in CONTEXTS:
            raise ValueError(f"unknown --context {self.context!r}; expected one of {', '.join(CONTEXTS)}")
        validate_shaping(self.proactive_reward, self.turn_penalty)
        return self


# --- the dataset: one row per episode ----------------------------------------------------------------------


def _first_prompt(batch: dict[str, list], hint: bool) -> dict[str, list]:
    rows = [dict(zip(batch, values)) for values in zip(*batch.values())]
    return {"prompt": [[{"role": "user", "content": Episode(row, hint=hint).observe().prompt}] for row in rows]}


def build_episode_dataset(episodes, hint: bool = False):
    """The episodes themselves (frames kept encoded) plus TRL's `prompt` column: the first turn's text, for
    TRL's logs only: the rollout rebuilds every turn from the row. No `image` column, so TRL's single-image
    path stays out of the way."""
    episodes = frames_undecoded(episodes)
    return episodes.map(_first_prompt, batched=True, batch_size=64, fn_kwargs={"hint": hint},
                        desc="first prompts")


# --- the TRL side ------------------------------------------------------------------------------------------


class EpisodeRollout:
    """TRL `rollout_func`: plays the episodes of the trainer's current inputs and returns their answer ids."""

    def __init__(self, settings: GRPOSettings, multi: MultiTurnSettings):
        self.settings = settings
        self.multi = multi

    def __call__(self, prompts: list, trainer) -> dict[str, Any]:
        import torch
        from trl.models import unwrap_model_for_generation

        rows = trainer._mt_inputs
        if len(rows) != len(prompts):
            raise RuntimeError(f"rollout_func got {len(prompts)} prompts for {len(rows)} inputs")

        def generate(batch):
            batch = {k: v.to(trainer.accelerator.device) for k, v in batch.items()}
            with unwrap_model_for_generation(
                trainer.model_wrapped, trainer.accelerator,
                gather_deepspeed3_params=trainer.args.ds3_gather_for_generation,
                generation_kwargs=trainer.generation_kwargs,
            ) as model, torch.no_grad():
                return model.generate(**batch, generation_config=trainer.generation_config).cpu()

        generator = TurnGenerator(trainer.processing_class, generate, trainer.eos_token_ids,
                                  dtype=trainer.model.dtype, chat_template_kwargs=trainer.chat_template_kwargs)
        rollouts = play_episodes(
            rows, generator, self.multi.context, self.settings.hint, self.settings.parser,
            self.multi.proactive_reward, self.multi.turn_penalty, self.multi.history_size,
        )
        trainer._mt_segments = [r.segments for r in rollouts]
        if self.multi.rollout_log:
            write_rollout_log(self.multi.rollout_log, rollouts, trainer.state.global_step + 1,
                              trainer.accelerator.process_index, trainer.accelerator.num_processes)
        return {
            "prompt_ids": [r.segments[0].inputs["input_ids"][0].tolist() for r in rollouts],
            "completion_ids": [r.completion_ids for r in rollouts],
            "logprobs": None,  # scored afresh by the trainer (no vLLM importance correction to feed)
            "episode_return": [asdict(r.outcome) for r in rollouts],
            "episode_stop": [r.result.stop_reason for r in rollouts],
        }


def write_rollout_log(path: str | Path, rollouts, step: int, rank: int = 0, world: int = 1) -> None:
    """Append one JSON object per rollout (each process its own file when there are several)."""
    path = Path(path)
    if world > 1:
        path = path.with_name(f"{path.stem}.rank{rank}{path.suffix}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        for rollout in rollouts:
            handle.write(json.dumps({"step": step, **rollout.log_entry()}) + "\n")


class EpisodeReward:
    """TRL reward function: the return the rollout computed from the engine's verdicts, and the per-step shares
    (`episode/...`: turns, correct, valid moves, reward parts, stop reasons) through TRL's `log_metric`."""

    __name__ = "episode"

    def __call__(self, prompts=None, completions=(), episode_return=(), episode_stop=(),
                 log_metric: Callable | None = None, **_):
        if log_metric is not None and episode_return:
            for name, value in episode_shares(episode_return, episode_stop).items():
                log_metric(name, value)
        return [r["reward"] for r in episode_return]


def episode_shares(returns: Sequence[dict], stops: Sequence[str]) -> dict[str, float]:
    n = len(returns)

    def mean(key: str) -> float:
        return sum(float(r[key]) for r in returns) / n

    shares = {
        "episode/turns": mean("turns"), "episode/correct": mean("correct"), "episode/valid_moves": mean("valid_moves"),
        "episode/reward_correct": mean("correct"), "episode/reward_proactive": mean("proactive"),
        "episode/reward_penalty": -mean("penalty"),
    }
    shares.update({f"episode/stop/{reason}": sum(s == reason for s in stops) / n for reason in STOP_REASONS})
    return shares


def multi_turn_trainer_class():
    """GRPOTrainer + the rollout's own contexts when scoring answers (transformers/TRL imported only to train)."""
    from trl import GRPOTrainer

    class MultiTurnGRPOTrainer(GRPOTrainer):
        _mt_inputs: list = []
        _mt_segments: list = []
        _mt_scoring: list | None = None

        def _generate_and_score_completions(self, inputs):
            self._mt_inputs = inputs  # the rows, for the rollout_func (TRL passes it the prompts only)
            output = super()._generate_and_score_completions(inputs)
            output["mt_segments"] = self._mt_segments  # a list: TRL shuffles and splits it with the tensors
            return output

        def _compute_loss(self, model, inputs):
            self._mt_scoring = inputs["mt_segments"]
            try:
                return super()._compute_loss(model, inputs)
            finally:
                self._mt_scoring = None

        def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep,
                                               batch_size=None, compute_entropy=False, compute_aux_loss=False, **_):
            rollouts = self._mt_scoring if self._mt_scoring is not None else self._mt_segments
            if len(rollouts) != input_ids.size(0):
                raise RuntimeError(f"{input_ids.size(0)} sequences to score but {len(rollouts)} rollouts")
            with self.accelerator.autocast():
                logps, entropies = score_answers(model, rollouts, logits_to_keep, self._tokenizer.pad_token_id,
                                                 batch_size, compute_entropy)
            return logps, entropies, None

    return MultiTurnGRPOTrainer


def train_multi_turn(
    dataset: str | Path,
    model_spec: str,
    output_dir: str | Path,
    settings: GRPOSettings | None = None,
    multi: MultiTurnSettings | None = None,
    split: str = "train",
    sources: Sequence[str] | None = None,
    limit: int | None = None,
) -> TrainResult:
    """GRPO over whole episodes; the LoRA adapter (+ processor) saved to `output_dir` like single-turn GRPO."""
    settings = settings or GRPOSettings(proactive_reward=0.0)
    multi = (multi or MultiTurnSettings()).validate()
    target = parse_model_spec(model_spec)
    output_dir = Path(output_dir)
    if settings.batch_size % settings.num_generations:
        raise ValueError(
            f"--batch-size {settings.batch_size} must be a multiple of --num-generations {settings.num_generations}"
        )
    if multi.rollout_log and Path(multi.rollout_log).exists() and not multi.resume_from_checkpoint:
        raise ValueError(f"{multi.rollout_log}: already exists; choose a new --rollout-log (or resume the run)")
    episodes = load_episodes(dataset, split, sources)
    if limit is not None:
        episodes = episodes.select(range(min(limit, len(episodes))))
    train_dataset = build_episode_dataset(episodes, hint=settings.hint)
    trainer, processor = build_trainer(
        multi_turn_trainer_class(), target, settings, output_dir, train_dataset,
        reward_funcs=[EpisodeReward()], rollout_func=EpisodeRollout(settings, multi),
    )
    output = trainer.train(resume_from_checkpoint=multi.resume_from_checkpoint)
    save_run(trainer, processor, output_dir, output, {
        "base_model": target, "dataset": str(dataset), "split": split, "sources": list(sources or []),
        "multi_turn": asdict(multi), "episodes": len(episodes), "examples": len(episodes),
        "steps": trainer.state.global_step, "settings": asdict(settings),
    })
    return TrainResult(output_dir, target, len(episodes), trainer.state.global_step, dict(output.metrics))
