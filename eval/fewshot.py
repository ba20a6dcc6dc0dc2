"""Few-shot in-context learning (`eval --shots K`, docs/protocol.md §5.2), and the hook that puts the history and
few-shot modes into the runner (`prepare_context`).

Shots. For an evaluated episode, K example episodes are drawn from the *other* rows of the same source in the
evaluated split (never the episode itself; --limit/--shard do not shrink the pool), deterministically from
(seed, sample_id). Each example is shown as its full solved trajectory, stepped through the real engine so every
example answer is one the parser accepts:

- ROD (the reference, docs/protocol.md §5.2): one valid move chosen at random (seeded by (seed, example id)),
  then the category.
- MVP-N (the reference): the lowest-index valid move at every state until no move remains (the last, informative
  view), then the category.
- the other five (our generalisation): the shortest sequence of valid moves (ties: the lowest option index) to a
  state that shows the episode's reference frame and accepts an answer, within the turn budget; where the graph
  has no such state, the MVP-N walk (lowest-index valid move, never revisiting a state, at most max_turns - 1
  moves). If either ends on a state that accepts no answer, the shortest path to one (schema) is used. Then the
  category. So IN-C and QuickDraw walk to the clean / complete image, VSOD and ChangeIt to the reference frame
  by the shorter direction, COCO to its widest view.

A move's answer is the option text; with --cot it is f"{cot_prompt} {letter}. {option}" (the reference's form;
ROD's and MVP-N's texts are the reference's, analogous ones for the other five; each in its source spec). The category answer is
the category string. --reduce-shots keeps the first and last step of trajectories longer than two. Example
images are resized to the source's ICL size (`icl_resize` of its spec: ROD 512, MVP-N 112; 224 px short edge elsewhere)
or to --shot-size; the evaluated episode's own images are not resized (unless --history asks for it).

Message layout (few-shot, optionally with history): for each shot in order, for each of its steps
user([image, prompt]) then assistant(answer); then the evaluated episode's turn(s) exactly as without shots
(history.py for --history). No system message or separator text: the reference does not release one.

A source with fewer than K other episodes gives its episodes every other episode it has (0 for a source with a
single episode, which then runs plain); the run records the count per source in config_json `shots_used`.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Mapping

from proactivebench.graph import StateGraph, accepts_answer
from proactivebench.seeding import rng_for
from proactivebench.sources import get_source

from .backends import Request
from proactivebench.engine import Episode
from .history import HISTORY_SIZE, assistant_message, frame_image, history_turns, user_message



def cot_prompt(source: str) -> str:
    return get_source(source).cot_prompt


def shot_size(source: str, override: int | None = None) -> int:
    """The ICL resize (short edge, px): --shot-size, else the source spec's `icl_resize`; 0 keeps frames."""
    if override is not None:
        return override
    return get_source(source).icl_resize


# --- solved trajectories ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShotStep:
    frame: int
    prompt: str
    answer: str


def _first_move(state, visited: set[int]):
    """The lowest-option-index move to a state not seen yet (never loop on circular sources)."""
    moves = sorted((m for m in state.moves if m.to not in visited), key=lambda m: m.option)
    return moves[0] if moves else None


def _walk(episode: Episode, rng: random.Random) -> list[int]:
    """MVP-N's rule: the lowest-index valid move while one remains, keeping the last turn for the answer."""
    states, state, plan, visited = episode.states, episode.state, [], {episode.state}
    while len(plan) < episode.max_turns - 1:
        move = _first_move(states[state], visited)
        if move is None:
            break
        plan.append(move.option)
        state = move.to
        visited.add(state)
    return plan


def _one_random_move(episode: Episode, rng: random.Random) -> list[int]:
    """ROD's rule: one valid move picked at random (the reference's global-RNG pick, seeded here)."""
    moves = sorted(episode.states[episode.state].moves, key=lambda m: m.option)
    return [rng.choice(moves).option] if moves and episode.max_turns > 1 else []


def _to_reference(episode: Episode, rng: random.Random) -> list[int]:
    """The shortest moves to a state showing the reference frame that accepts an answer; else the walk."""
    target_frame = int(episode.row["reference_frame"])
    plan = StateGraph(episode.states).shortest_moves(
        episode.state, episode.max_turns, lambda state: state.frame == target_frame and state.accepts_answer
    )
    return _walk(episode, rng) if plan is None else plan


# A source spec's `shot_policy` names its rule (proactivebench/sources/spec.py SHOT_POLICIES).
TRAJECTORIES: dict[str, Callable[[Episode, random.Random], list[int]]] = {
    "one_random_move": _one_random_move,
    "lowest_move_walk": _walk,
    "to_reference": _to_reference,
}


def _end_state(episode: Episode, plan: list[int]) -> int:
    state = episode.state
    for option in plan:
        state = episode.states[state].target(option)
    return state


def _fix_plan(episode: Episode, plan: list[int]) -> list[int]:
    """Extend a plan that stops where no answer is accepted by the shortest path from there."""
    end = _end_state(episode, plan)
    if episode.states[end].accepts_answer:
        return plan
    graph = StateGraph(episode.states)
    rest = graph.shortest_moves(end, episode.max_turns - len(plan), accepts_answer)
    if rest is None:
        return graph.shortest_moves(episode.state, episode.max_turns, accepts_answer) or []
    return plan + rest


def informative_plan(episode: Episode) -> list[int]:
    """From the episode's current state: the moves to its informative view (the reference frame) where a state
    shows it, else every valid move until none remains; then a state that accepts the answer. Used by the
    `oracle-proactive` baseline; deterministic (lowest option index first)."""
    return _fix_plan(episode, _to_reference(episode, random.Random(0)))


def solved_trajectory(row: Mapping[str, Any], seed: int = 0, cot: bool = False, hint: bool = False) -> list[ShotStep]:
    """The example episode's steps (frame, prompt, answer), stepped through the engine so it is known to solve."""
    episode = Episode(row, hint=hint, mode="mcqa", parser="paper")
    policy = TRAJECTORIES[get_source(episode.source).shot_policy]
    plan = _fix_plan(episode, policy(episode, rng_for(seed, "trajectory", episode.sample_id, hashed=True)))
    prefix = cot_prompt(episode.source) if cot else None
    steps: list[ShotStep] = []
    for option in plan:
        observation = episode.observe()
        text = episode.options[option]
        answer = f"{prefix} {chr(65 + observation.choices.index(text))}. {text}" if prefix else text
        steps.append(ShotStep(observation.frame, observation.prompt, answer))
        episode.step(answer)
        if episode.done:
            raise ValueError(f"sample {episode.sample_id!r}: shot move {text!r} ended the episode ({episode.stop_reason})")
    observation = episode.observe()
    steps.append(ShotStep(observation.frame, observation.prompt, episode.answer))
    episode.step(episode.answer)
    if not episode.correct:
        raise ValueError(f"sample {episode.sample_id!r}: the shot trajectory does not solve it ({episode.stop_reason})")
    return steps


def reduce_steps(steps: list[ShotStep]) -> list[ShotStep]:
    """--reduce-shots: the first and last step (the reference's `reduce_icl_steps`)."""
    return [steps[0], steps[-1]] if len(steps) > 2 else steps


# --- the shot pool -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShotOptions:
    shots: int = 0
    cot: bool = False
    reduce: bool = False
    size: int | None = None  # None: per scenario (shot_size)
    hint: bool = False  # shots carry the same prompt setting as the evaluated episode
    seed: int = 0


class ShotPool:
    """Per source, the rows a shot can come from, and each episode's shots as chat messages."""

    def __init__(self, table, options: ShotOptions):
        self.table, self.options = table, options
        self.sample_ids: list[str] = list(table["sample_id"])
        self.by_source: dict[str, list[int]] = {}
        for index, source in enumerate(table["source"]):
            self.by_source.setdefault(source, []).append(index)
        self._example = lru_cache(maxsize=1024)(self._load_example)

    def used(self, source: str) -> int:
        """How many shots an episode of `source` gets: K, or fewer where the source has fewer other episodes."""
        return min(self.options.shots, max(len(self.by_source.get(source, [])) - 1, 0))

    def shots_for(self, sample_id: str, source: str) -> list[int]:
        """Row indices of the episode's shots, in prompt order; never the episode itself."""
        candidates = [i for i in self.by_source.get(source, []) if self.sample_ids[i] != sample_id]
        return rng_for(self.options.seed, "shots", sample_id, hashed=True).sample(candidates, min(self.options.shots, len(candidates)))

    def _load_example(self, index: int) -> tuple[list[ShotStep], Any, int]:
        row = self.table[index]
        opts = self.options
        steps = solved_trajectory(row, seed=opts.seed, cot=opts.cot, hint=opts.hint)
        if opts.reduce:
            steps = reduce_steps(steps)
        return steps, row["frames"], shot_size(row["source"], opts.size)

    def prefix(self, sample_id: str, source: str) -> tuple[list[dict], list]:
        """(messages, images) of the episode's shots: user(image, prompt) / assistant(answer) per step."""
        messages: list[dict] = []
        images: list = []
        for index in self.shots_for(sample_id, source):
            steps, frames, size = self._example(index)
            for step in steps:
                messages += [user_message(step.prompt), assistant_message(step.answer)]
                images.append(frame_image(frames, step.frame, size))
        return messages, images


# --- the runner hook -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContextOptions:
    """The history / few-shot settings of an eval run (EvalConfig fields of the same names)."""

    history: bool = False
    history_size: int = HISTORY_SIZE
    shots: int = 0
    cot: bool = False
    reduce_shots: bool = False
    shot_size: int | None = None

    @classmethod
    def of(cls, config) -> "ContextOptions":
        return cls(**{f.name: getattr(config, f.name, f.default) for f in dataclasses.fields(cls)})

    @property
    def active(self) -> bool:
        return self.history or self.shots > 0

    def validate(self, mode: str) -> "ContextOptions":
        if self.active and mode != "mcqa":
            raise ValueError(f"--history and --shots apply to the mcqa mode, not {mode}")
        if self.shots < 0:
            raise ValueError("--shots must be at least 0")
        if (self.cot or self.reduce_shots or self.shot_size is not None) and not self.shots:
            raise ValueError("--cot, --reduce-shots and --shot-size need --shots K")
        for name in ("history_size", "shot_size"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 0 (0 keeps the stored size)")
        return self

    def identity(self) -> dict[str, Any]:
        """Run-identity keys; none for a plain run, so plain run ids stay what they were."""
        out: dict[str, Any] = {}
        if self.history:
            out.update(history=True, history_size=self.history_size)
        if self.shots:
            out.update(shots=self.shots, cot=self.cot, reduce_shots=self.reduce_shots, shot_size=self.shot_size)
        return out


def context_request_maker(base: Callable[[Any, Any], Request], options: ContextOptions,
                          pool: ShotPool | None) -> Callable[[Any, Any], Request]:
    """A `Mode.make_request`: the shots (if any), then the history turns (if asked) or the single turn."""

    def make_request(episode, observation) -> Request:
        if options.history:
            messages, images = history_turns(episode, observation, options.history_size)
        else:
            request = base(episode, observation)
            messages, images = request.messages, request.images
        if pool is not None:
            shot_messages, shot_images = pool.prefix(episode.sample_id, episode.source)
            messages, images = shot_messages + messages, shot_images + images
        return Request(messages, images, context=episode, key=f"{episode.sample_id}/{len(episode.turns)}")

    return make_request


def prepare_context(mode, table, config, sources=None) -> tuple[Any, dict[str, Any]]:
    """(the mode with its request maker for history/few-shot, the run_config entries); plain runs unchanged.

    `sources`: the evaluated sources, for `shots_used` (default: every source of the table)."""
    options = ContextOptions.of(config).validate(config.mode)
    record: dict[str, Any] = {"history": options.history, "shots": options.shots}
    if not options.active:
        return mode, record
    pool = None
    if options.shots:
        pool = ShotPool(table, ShotOptions(options.shots, options.cot, options.reduce_shots, options.shot_size,
                                           bool(getattr(config, "hint", False)), int(getattr(config, "seed", 0))))
        wanted = list(sources) if sources else list(pool.by_source)
        record.update(shots_used={s: pool.used(s) for s in wanted})
    record.update(options.identity())
    return dataclasses.replace(mode, make_request=context_request_maker(mode.make_request, options, pool)), record
