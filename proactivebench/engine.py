"""The generic episode engine: one class steps every scenario from the state graph stored in the row.

Semantics (docs/protocol.md §3.5): at a state the prompt letters the shown options, then the categories. A correct
category ends the episode correct where the state accepts an answer; a shown option with a move goes on;
anything else ends it wrong; the turn budget ends it too, after the turn is recorded.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any, Mapping

from proactivebench.schema import State, states_from_rows

from .parsing import CORRECT, MISMATCH, WRONG, get_parser
from .prompts import multi_choice, oeg_prompt, question_text

EPISODE_MODES = ("mcqa", "reference")

# Why an episode ended.
STOP_CORRECT = "correct"
STOP_WRONG_CATEGORY = "wrong_category"
STOP_PREMATURE = "premature_answer"  # the right category where the state accepts no answer (ROD's first turn)
STOP_ABSTAIN = "abstain"
STOP_INVALID = "invalid_option"  # a shown proactive option without a move here
STOP_UNPARSED = "unparsed"
STOP_MAX_TURNS = "max_turns"
STOP_ERROR = "error"


def decode_image(value: Any):
    """A frame as stored ({bytes, path}), as decoded by `datasets` (PIL), or raw bytes → an RGB PIL image."""
    from PIL import Image

    if isinstance(value, Mapping):
        value = value["bytes"]
    if isinstance(value, (bytes, bytearray)):
        value = Image.open(io.BytesIO(value))
    return value.convert("RGB") if value.mode != "RGB" else value


@dataclass
class Observation:
    prompt: str  # the full text sent to the model
    state: int  # -1 in reference mode
    frame: int
    turn: int
    choices: list[str]  # the lettered entries, in order: shown options then categories
    _frames: Any = field(repr=False, default=None)

    @property
    def image(self):
        return decode_image(self._frames[self.frame])


@dataclass
class Turn:
    turn: int
    state: int
    frame: int
    prompt: str
    output: str
    option_verdict: str
    category_verdict: str
    chosen_kind: str  # proactive / abstain / category / none
    chosen_text: str
    error: str = ""


@dataclass
class EpisodeResult:
    sample_id: str
    source: str
    correct: bool
    num_turns: int
    proactive_suggestions: int  # the paper's per-sample ps: accepted moves before the last turn
    stop_reason: str
    turns: list[Turn]

    @property
    def max_turns_reached(self) -> bool:
        return self.stop_reason == STOP_MAX_TURNS


class Episode:
    """Steps one episode. `row` is a dataset row (frames decoded or not)."""

    def __init__(self, row: Mapping[str, Any], hint: bool = False, mode: str = "mcqa", parser: str = "paper"):
        if mode not in EPISODE_MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(EPISODE_MODES)}")
        self.row = row
        self.mode = mode
        self.use_hint = hint
        self.evaluate = get_parser(parser)
        self.sample_id: str = row["sample_id"]
        self.source: str = row["source"]
        self.options: list[str] = [o["text"] for o in row["options"]]
        self.option_kinds: list[str] = [o["kind"] for o in row["options"]]
        self.categories: list[str] = list(row["categories"])
        self.answer: str = row["answer"]
        self.states: list[State] = states_from_rows(row["states"])
        self.max_turns = 1 if mode == "reference" else int(row["max_turns"])
        self.state = int(row["first_state"])
        self.turns: list[Turn] = []
        self.done = False
        self.correct = False
        self.stop_reason = ""

    # --- observation ------------------------------------------------------------------------------------

    def question(self) -> str:
        base = self.row["question"]
        if self.mode == "reference":
            base = self.row.get("reference_question") or base
        return question_text(base, self.row.get("pre_prompt") or "", self.row["hint"] if self.use_hint else None)

    def shown_options(self) -> list[int]:
        return [] if self.mode == "reference" else list(self.states[self.state].shown)

    def observe(self) -> Observation:
        if self.done:
            raise RuntimeError(f"episode {self.sample_id} is over")
        # The runner observes, then steps (which observes again): build each turn's prompt once.
        cached = self.__dict__.get("_observed")
        if cached is not None and cached[0] == (self.state, len(self.turns)):
            return cached[1]
        observation = self._observe()
        self._observed = ((self.state, len(self.turns)), observation)
        return observation

    def _observe(self) -> Observation:
        shown = [self.options[i] for i in self.shown_options()]
        choices = shown + self.categories
        reference = self.mode == "reference"
        return Observation(
            prompt=multi_choice(self.question(), choices, short_answer=True),
            state=-1 if reference else self.state,
            frame=int(self.row["reference_frame"]) if reference else self.states[self.state].frame,
            turn=len(self.turns),
            choices=choices,
            _frames=self.row["frames"],
        )

    def oeg_prompt(self, generic_hint: bool = False) -> str:
        """The open-ended prompt: first state's question, no options (docs/protocol.md §6.1)."""
        return oeg_prompt(self.row["question"], self.row.get("pre_prompt") or "", generic_hint)

    # --- stepping ---------------------------------------------------------------------------------------

    def step(self, output: str) -> Turn:
        observation = self.observe()
        state = self.states[self.state] if self.mode == "mcqa" else None
        shown = self.shown_options()
        shown_texts = [self.options[i] for i in shown]
        if state is None:
            option = _NO_MATCH
        else:
            valid = [self.options[m.option] for m in state.moves]
            option = self.evaluate(output, valid, shown_texts, 0)
        accepted = [self.answer] if (state is None or state.accepts_answer) else []
        category = self.evaluate(output, accepted, self.categories, len(shown_texts))

        next_state = None
        if category.verdict == CORRECT:
            self.correct, stop = True, STOP_CORRECT
        elif option.verdict == CORRECT:
            next_state, stop = state.target(shown[option.index]), ""
        elif option.verdict == WRONG:
            kind = self.option_kinds[shown[option.index]]
            stop = STOP_ABSTAIN if kind == "abstain" else STOP_INVALID
        elif category.verdict == WRONG:
            premature = self.categories[category.index] == self.answer
            stop = STOP_PREMATURE if premature else STOP_WRONG_CATEGORY
        else:
            stop = STOP_UNPARSED

        if option.matched and category.verdict != CORRECT:
            kind, text = self.option_kinds[shown[option.index]], shown_texts[option.index]
        elif category.matched:
            kind, text = "category", self.categories[category.index]
        else:
            kind, text = "none", ""
        turn = Turn(
            turn=observation.turn, state=observation.state, frame=observation.frame, prompt=observation.prompt,
            output=output, option_verdict=option.verdict, category_verdict=category.verdict,
            chosen_kind=kind, chosen_text=text,
        )
        self.turns.append(turn)
        if not stop and len(self.turns) >= self.max_turns:
            stop = STOP_MAX_TURNS  # after recording: the last move is logged but not taken (docs/protocol.md §10.3)
        if stop:
            self._finish(stop)
        else:
            self.state = next_state
        return turn

    def step_error(self, message: str) -> Turn:
        """Record a failed model call as a turn that ends the episode wrong (never the reference's ps = -1)."""
        observation = self.observe()
        turn = Turn(
            turn=observation.turn, state=observation.state, frame=observation.frame, prompt=observation.prompt,
            output="", option_verdict=MISMATCH, category_verdict=MISMATCH, chosen_kind="none", chosen_text="",
            error=message,
        )
        self.turns.append(turn)
        self._finish(STOP_ERROR)
        return turn

    def _finish(self, reason: str) -> None:
        self.done = True
        self.stop_reason = reason

    @property
    def result(self) -> EpisodeResult:
        if not self.done:
            raise RuntimeError(f"episode {self.sample_id} is still running")
        return EpisodeResult(
            sample_id=self.sample_id,
            source=self.source,
            correct=self.correct,
            num_turns=len(self.turns),
            proactive_suggestions=len(self.turns) - 1,
            stop_reason=self.stop_reason,
            turns=list(self.turns),
        )


class _NoMatch:
    verdict = MISMATCH
    index = None
    matched = False


_NO_MATCH = _NoMatch()
