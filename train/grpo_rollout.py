"""Multi-turn rollouts: whole episodes played by a policy through the evaluator's engine, and their return.

A rollout starts where evaluation starts (`Episode(row)`, its first observation), builds each turn's chat with
the evaluator's own request makers (`request_for`: a fresh single-turn prompt, as the benchmark evaluates;
`history_request_maker`: the growing chat of `eval --history`), and steps every answer through `Episode.step`.
So the next frame arrives as the next USER message (never a tool message) and the engine alone decides what
an answer means. Each turn is kept as a `Segment`: the exact token ids and vision tensors the model saw, and the
answer ids it produced, so training can score every answer in the very context it was sampled in.

The generation interface (`encode`, `generate`, `decode`) is transformers' processor + `generate`; a test can
stand a scripted policy behind the same interface.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from proactivebench.engine import Episode, EpisodeResult
from proactivebench.eval.history import HISTORY_SIZE, history_request_maker
from proactivebench.parsing import CORRECT
from proactivebench.eval.runner import request_for

CONTEXTS = ("fresh", "history")
# The proactive bonus minus the turn penalty is clipped to ±SHAPING_CAP, so the worst correct episode
# (1 - 0.45) still earns more than the best wrong one (0.45).
SHAPING_CAP = 0.45


def request_maker(context: str, history_size: int | None = HISTORY_SIZE) -> Callable:
    """The evaluator's request maker for a context mode: `fresh` = plain `eval`, `history` = `eval --history`."""
    if context == "fresh":
        return request_for
    if context == "history":
        return history_request_maker(history_size)
    raise ValueError(f"unknown --context {context!r}; expected one of {', '.join(CONTEXTS)}")


# --- the return of an episode ------------------------------------------------------------------------------


@dataclass(frozen=True)
class EpisodeReturn:
    correct: bool
    turns: int
    valid_moves: int  # turns whose answer the engine judged a valid proactive move
    proactive: float  # the bonus part, after the cap
    penalty: float  # the turn-penalty part (≥ 0), after the cap
    reward: float


def episode_return(result: EpisodeResult, proactive_reward: float = 0.0, turn_penalty: float = 0.0) -> EpisodeReturn:
    """1 for an episode the engine ended correct, else 0; plus `proactive_reward` per valid move and minus
    `turn_penalty` per turn after the first, that shaping clipped to ±SHAPING_CAP (a correct answer always wins)."""
    moves = sum(1 for turn in result.turns if turn.option_verdict == CORRECT)
    bonus, cost = proactive_reward * moves, turn_penalty * (result.num_turns - 1)
    shaping = max(-SHAPING_CAP, min(SHAPING_CAP, bonus - cost))
    # Split the clipped shaping back into its parts for the logs (the cap bites on whichever side dominates).
    if bonus - cost > SHAPING_CAP:
        bonus = SHAPING_CAP + cost
    elif bonus - cost < -SHAPING_CAP:
        cost = SHAPING_CAP + bonus
    return EpisodeReturn(result.correct, result.num_turns, moves, bonus, cost, float(result.correct) + shaping)


def validate_shaping(proactive_reward: float, turn_penalty: float) -> None:
    if not 0.0 <= proactive_reward <= 1.0:
        raise ValueError(f"--proactive-reward must lie in [0, 1], got {proactive_reward}")
    if turn_penalty < 0.0:
        raise ValueError(f"--turn-penalty must be at least 0, got {turn_penalty}")


# --- what the model saw and said ---------------------------------------------------------------------------


@dataclass
class Segment:
    """One turn: the encoded context (batch dim 1), the images in it, and the answer's token ids."""

    inputs: dict[str, Any]
    images: list
    answer_ids: list[int]
    state: int
    frame: int
    output: str


@dataclass
class Rollout:
    row: Mapping[str, Any] = field(repr=False)
    segments: list[Segment]
    result: EpisodeResult
    outcome: EpisodeReturn

    @property
    def completion_ids(self) -> list[int]:
        return [token for segment in self.segments for token in segment.answer_ids]

    def log_entry(self) -> dict:
        return {
            "sample_id": self.result.sample_id,
            "turns": [{"state": s.state, "frame": s.frame, "output": s.output} for s in self.segments],
            "reward": self.outcome.reward,
            "correct": self.result.correct,
            "stop_reason": self.result.stop_reason,
        }


# --- transformers generation -------------------------------------------------------------------------------


def _is_sequence(name: str, value, length: int) -> bool:
    """Per-token tensors (ids, masks, token types) vs per-image ones (pixel values, grids, sizes)."""
    return name in ("input_ids", "attention_mask") or (getattr(value, "ndim", 0) == 2 and value.shape == (1, length))


def collate(encoded: Sequence[Mapping[str, Any]], pad_id: int, suffixes: Sequence[Sequence[int]] | None = None):
    """Left-padded batch of single-example encodings, each optionally followed by `suffixes[i]` (answer ids);
    per-image tensors are concatenated in order, as the processors lay out a batch."""
    import torch

    suffixes = suffixes or [[] for _ in encoded]
    lengths = [e["input_ids"].shape[1] for e in encoded]
    width = max(n + len(s) for n, s in zip(lengths, suffixes, strict=True))
    batch = {}
    for name, first in encoded[0].items():
        if not hasattr(first, "shape"):
            continue
        if _is_sequence(name, first, lengths[0]):
            rows = []
            for e, n, suffix in zip(encoded, lengths, suffixes):
                value = e[name][0]
                tail = {"input_ids": torch.tensor(suffix, dtype=value.dtype),
                        "attention_mask": torch.ones(len(suffix), dtype=value.dtype)}.get(
                    name, torch.zeros(len(suffix), dtype=value.dtype))
                pad = torch.full((width - n - len(suffix),), pad_id if name == "input_ids" else 0, dtype=value.dtype)
                rows.append(torch.cat([pad, value, tail]))
            batch[name] = torch.stack(rows)
        else:
            batch[name] = torch.cat([e[name] for e in encoded], dim=0)
    return batch


class TurnGenerator:
    """One turn of a batch of episodes with a transformers processor and a `generate` callable (batch → ids)."""

    def __init__(self, processor, generate: Callable[[dict], Any], eos_ids: Sequence[int], dtype=None,
                 chat_template_kwargs: Mapping[str, Any] | None = None):
        self.processor = processor
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.pad_id = self.tokenizer.pad_token_id
        self._generate = generate
        self.eos_ids = set(eos_ids)
        self.dtype = dtype
        self.chat_template_kwargs = dict(chat_template_kwargs or {})

    def encode(self, request) -> tuple[dict, list]:
        """(the request as model inputs, its images): the same chat rendering as the `hf:` eval backend."""
        text = self.processor.apply_chat_template(
            request.messages, add_generation_prompt=True, tokenize=False, **self.chat_template_kwargs
        )
        images = request.load_images()
        if images:
            inputs = self.processor(images=[images], text=[text], return_tensors="pt")
        else:
            inputs = self.processor(text=[text], return_tensors="pt")
        return dict(inputs), images

    def generate(self, encoded: Sequence[Mapping[str, Any]]) -> list[list[int]]:
        """The answer ids of each context, up to and including the first end-of-turn token."""
        import torch

        batch = collate(encoded, self.pad_id)
        if self.dtype is not None:
            batch = {k: v.to(self.dtype) if torch.is_floating_point(v) else v for k, v in batch.items()}
        output = self._generate(batch)
        answers = []
        for row in output[:, batch["input_ids"].shape[1]:].tolist():
            end = next((i for i, token in enumerate(row) if token in self.eos_ids), None)
            answers.append(row[: end + 1] if end is not None else row)
        return answers

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=True)


# --- playing episodes --------------------------------------------------------------------------------------


def play_episodes(
    rows: Sequence[Mapping[str, Any]],
    generator,
    context: str = "fresh",
    hint: bool = False,
    parser: str = "paper",
    proactive_reward: float = 0.0,
    turn_penalty: float = 0.0,
    history_size: int | None = HISTORY_SIZE,
) -> list[Rollout]:
    """Play every row's episode to its end, the live ones batched turn by turn; the engine steps each answer."""
    make_request = request_maker(context, history_size)
    episodes = [Episode(row, hint=hint, parser=parser) for row in rows]
    segments: list[list[Segment]] = [[] for _ in rows]
    while live := [i for i, episode in enumerate(episodes) if not episode.done]:
        requests = [make_request(episodes[i], episodes[i].observe()) for i in live]
        encoded = [generator.encode(request) for request in requests]
        answers = generator.generate([inputs for inputs, _ in encoded])
        for i, (inputs, images), ids in zip(live, encoded, answers, strict=True):
            output = generator.decode(ids)
            turn = episodes[i].step(output)
            segments[i].append(Segment(inputs, images, list(ids), turn.state, turn.frame, output))
    rollouts = []
    for row, episode, turns in zip(rows, episodes, segments):
        result = episode.result
        rollouts.append(Rollout(row, turns, result, episode_return(result, proactive_reward, turn_penalty)))
    return rollouts


# --- scoring the answers in their own contexts -------------------------------------------------------------


def score_answers(model, rollouts: Sequence[Sequence[Segment]], width: int, pad_id: int, chunk: int | None = None,
                  entropy: bool = False):
    """(log-probs, entropies or None), each (rollouts, width): row r holds its answers' tokens one after the other,
    each scored by a forward pass over the context it was sampled in. `model` carries TRL's fused LM head
    (`model(..., labels=..., fused_lm_head=True)` → per-token log-probs at the trainer's temperature)."""
    import torch

    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    logps = torch.zeros(len(rollouts), width, device=device)
    entropies = torch.zeros_like(logps) if entropy else None
    flat = [(row, segment) for row, segments in enumerate(rollouts) for segment in segments]
    offsets = [0] * len(rollouts)
    chunk = chunk or len(flat)
    for start in range(0, len(flat), chunk):
        part = flat[start:start + chunk]
        batch = collate([s.inputs for _, s in part], pad_id, [s.answer_ids for _, s in part])
        batch = {k: v.to(device, dtype) if torch.is_floating_point(v) else v.to(device) for k, v in batch.items()}
        labels = torch.full_like(batch["input_ids"], -100)  # only the answer tokens are scored
        for i, (_, segment) in enumerate(part):
            n = len(segment.answer_ids)
            labels[i, -n:] = batch["input_ids"][i, -n:]
        outputs = model(**batch, labels=labels, fused_lm_head=True)
        for i, (row, segment) in enumerate(part):
            n, at = len(segment.answer_ids), offsets[row]
            if at + n > width:
                raise RuntimeError(f"rollout {row}: {at + n} answer tokens do not fit {width} completion positions")
            logps[row, at:at + n] = outputs.log_probs[i, -n:]
            if entropy:
                entropies[row, at:at + n] = outputs.entropy[i, -n:]
            offsets[row] += n
    return logps, entropies
