"""Baselines that answer like a model would, in text (a letter), through the same parser.

They read the live episode (the request's context) instead of the pixels:
- `random`: a uniformly random lettered entry.
- `oracle`: the shortest way to a state that accepts the answer (proactivebench.graph), then the answer:
  100% accuracy with the fewest proactive suggestions the graph allows.
- `oracle-proactive`: 100% accuracy the other way: every valid move to the informative view (the reference
  frame, where a state shows it; else until no valid move remains), then the answer; the most suggestions.
- `always-proactive`: a random shown proactive option; a random category where none is shown.
- `always-abstain`: the shown abstain option; "I cannot tell." where none is shown (reference mode).
Randomness is seeded by (seed, request key), so outputs do not depend on batching or order.
In open-ended mode (no letters) they answer with text: the oracle every valid answer, the others one pick.
"""

from __future__ import annotations

import random
import weakref
from typing import Callable, Sequence

from proactivebench.engine import Episode
from proactivebench.graph import StateGraph, accepts_answer
from proactivebench.seeding import rng_for

from .base import Backend, Request, register_backend

ABSTAIN_TEXT = "I cannot tell."


def _letter(index: int) -> str:
    return chr(65 + index)


def _lettered(episode) -> tuple[list[int], list[str]]:
    """(shown option indices, categories): the letters run over shown options first, then categories."""
    return episode.shown_options(), episode.categories


def _random(episode, rng: random.Random) -> str:
    shown, categories = _lettered(episode)
    return _letter(rng.randrange(len(shown) + len(categories)))


def _oracle(episode, rng: random.Random) -> str:
    shown, categories = _lettered(episode)
    answer = _letter(len(shown) + categories.index(episode.answer))
    if episode.mode == "reference":
        return answer
    remaining = episode.max_turns - len(episode.turns)
    moves = StateGraph(episode.states).shortest_moves(episode.state, remaining, accepts_answer)
    return answer if not moves else _letter(shown.index(moves[0]))


class _OracleProactive:
    """Plans once per live episode, from its first state: replanning mid-way would forget where the walk has been.

    The plans are kept here, by episode, not on the episode: it is the engine's object. A plan depends on the
    episode alone (`informative_plan` is deterministic), so one table serves every backend.
    """

    def __init__(self) -> None:
        self.plans: weakref.WeakKeyDictionary[Episode, list[int]] = weakref.WeakKeyDictionary()

    def __call__(self, episode: Episode, rng: random.Random) -> str:
        from ..fewshot import informative_plan

        shown, categories = _lettered(episode)
        if episode.mode != "reference":
            plan = self.plans.get(episode)
            if plan is None:
                plan = self.plans[episode] = informative_plan(episode)
            if len(episode.turns) < len(plan):
                return _letter(shown.index(plan[len(episode.turns)]))
        return _letter(len(shown) + categories.index(episode.answer))


_oracle_proactive = _OracleProactive()


def _always_proactive(episode, rng: random.Random) -> str:
    shown, categories = _lettered(episode)
    proactive = [i for i, option in enumerate(shown) if episode.option_kinds[option] == "proactive"]
    if proactive:
        return _letter(rng.choice(proactive))
    return _letter(len(shown) + rng.randrange(len(categories)))


def _always_abstain(episode, rng: random.Random) -> str:
    shown, _ = _lettered(episode)
    for i, option in enumerate(shown):
        if episode.option_kinds[option] == "abstain":
            return _letter(i)
    return ABSTAIN_TEXT


# Open-ended mode: the row's valid answers (proactive first, category last) are what a judge looks for.
def _oeg_oracle(row, rng: random.Random) -> str:
    return ", ".join(row["oeg_answers"]) + "."


def _oeg_random(row, rng: random.Random) -> str:
    return rng.choice(list(row["categories"]))


def _oeg_proactive(row, rng: random.Random) -> str:
    count = int(row["oeg_proactive_count"])
    return (rng.choice(list(row["oeg_answers"])[:count]) + ".") if count else ABSTAIN_TEXT


def _oeg_abstain(row, rng: random.Random) -> str:
    return ABSTAIN_TEXT


Policy = Callable[[object, random.Random], str]
POLICIES: dict[str, tuple[Policy, Policy]] = {
    "random": (_random, _oeg_random),
    "oracle": (_oracle, _oeg_oracle),
    "oracle-proactive": (_oracle_proactive, _oeg_oracle),
    "always-proactive": (_always_proactive, _oeg_proactive),
    "always-abstain": (_always_abstain, _oeg_abstain),
}


class BaselineBackend(Backend):
    kind = "baseline"
    needs_images = False
    default_batch_size = 64

    def __init__(self, name: str, seed: int = 0):
        if name not in POLICIES:
            raise ValueError(f"unknown baseline {name!r}; expected one of {', '.join(POLICIES)}")
        super().__init__(f"baseline:{name}")
        self.name, self.seed = name, seed
        self.policy, self.oeg_policy = POLICIES[name]

    def config(self) -> dict:
        return {**super().config(), "seed": self.seed}

    def _generate(self, requests: Sequence[Request]) -> list[str]:
        return [self._answer(request) for request in requests]

    def _answer(self, request: Request) -> str:
        context = request.context
        if context is None:
            raise ValueError(f"{self.spec} needs the episode as the request context")
        rng = rng_for(self.seed, request.key, hashed=True)
        if hasattr(context, "shown_options"):  # a live Episode (MCQA / reference)
            return self.policy(context, rng)
        return self.oeg_policy(getattr(context, "row", context), rng)  # OEG: the row


@register_backend("baseline")
def make_baseline(target: str, seed: int = 0) -> BaselineBackend:
    return BaselineBackend(target, seed=seed)


make_baseline.OPTIONS = ("seed",)
