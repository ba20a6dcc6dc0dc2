"""The episode: HF `datasets` features (the on-disk contract) and the typed form code works with.

A sample is its own environment: it carries its frames and an explicit state graph, so one generic engine
steps every scenario. `EpisodeRecord.validate` enforces the invariants that engine relies on.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import datasets

from .graph import StateGraph
from .safe_files import SAFE_ID_RULE, is_safe_id
from .sources import SCENARIO_NAMES, SOURCE_NAMES

NUM_CATEGORIES = 4
OPTION_KINDS = ("proactive", "abstain")
SPLITS = ("test", "excluded", "train")

FEATURES = datasets.Features(
    {
        "sample_id": datasets.Value("string"),
        "source": datasets.Value("string"),
        "source_id": datasets.Value("int64"),
        "scenario": datasets.Value("string"),
        "question": datasets.Value("string"),
        "pre_prompt": datasets.Value("string"),
        "hint": datasets.Value("string"),
        "reference_question": datasets.Value("string"),
        "options": datasets.List(
            {"text": datasets.Value("string"), "kind": datasets.Value("string"), "action": datasets.Value("string")}
        ),
        "categories": datasets.List(datasets.Value("string")),
        "answer": datasets.Value("string"),
        "frames": datasets.List(datasets.Image()),
        "states": datasets.List(
            {
                "frame": datasets.Value("int32"),
                "shown": datasets.List(datasets.Value("int32")),
                "moves": datasets.List({"option": datasets.Value("int32"), "to": datasets.Value("int32")}),
                "accepts_answer": datasets.Value("bool"),
            }
        ),
        "first_state": datasets.Value("int32"),
        "reference_frame": datasets.Value("int32"),
        "max_turns": datasets.Value("int32"),
        "oeg_answers": datasets.List(datasets.Value("string")),
        "oeg_proactive_count": datasets.Value("int32"),
        "meta": datasets.Value("string"),
        "first_turn_solve_rate": datasets.Value("float32"),
    }
)


class EpisodeValidationError(ValueError):
    """An episode breaks a schema invariant; the message names the sample and the field."""


@dataclass(frozen=True)
class Option:
    text: str
    kind: str  # "proactive" or "abstain"
    action: str  # the action the option asks for ("left", "rewind", "rotate", ...), "stop" for abstain


@dataclass(frozen=True)
class Move:
    option: int  # index into the episode's options
    to: int  # index into the episode's states


@dataclass
class State:
    frame: int
    shown: list[int]
    moves: list[Move] = field(default_factory=list)
    accepts_answer: bool = True

    def target(self, option: int) -> int | None:
        for move in self.moves:
            if move.option == option:
                return move.to
        return None


@dataclass
class Frame:
    """One image of an episode: encoded bytes plus the name it came from (a source file or a generated name)."""

    data: bytes
    name: str

    def to_feature(self) -> dict:
        return {"bytes": self.data, "path": self.name}

    def open(self):
        from PIL import Image

        image = Image.open(io.BytesIO(self.data))
        image.load()
        return image


@dataclass
class EpisodeRecord:
    sample_id: str
    source: str
    source_id: int
    scenario: str
    question: str
    options: list[Option]
    categories: list[str]
    answer: str
    frames: list[Frame]
    states: list[State]
    first_state: int
    reference_frame: int
    max_turns: int
    pre_prompt: str = ""
    hint: str = ""
    reference_question: str = ""
    oeg_answers: list[str] = field(default_factory=list)
    oeg_proactive_count: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
    first_turn_solve_rate: float | None = None

    # --- conversion -------------------------------------------------------------------------------------

    def to_row(self) -> dict:
        return {
            "sample_id": self.sample_id,
            "source": self.source,
            "source_id": int(self.source_id),
            "scenario": self.scenario,
            "question": self.question,
            "pre_prompt": self.pre_prompt,
            "hint": self.hint,
            "reference_question": self.reference_question,
            "options": [{"text": o.text, "kind": o.kind, "action": o.action} for o in self.options],
            "categories": list(self.categories),
            "answer": self.answer,
            "frames": [f.to_feature() for f in self.frames],
            "states": [
                {
                    "frame": s.frame,
                    "shown": list(s.shown),
                    "moves": [{"option": m.option, "to": m.to} for m in s.moves],
                    "accepts_answer": s.accepts_answer,
                }
                for s in self.states
            ],
            "first_state": self.first_state,
            "reference_frame": self.reference_frame,
            "max_turns": self.max_turns,
            "oeg_answers": list(self.oeg_answers),
            "oeg_proactive_count": self.oeg_proactive_count,
            "meta": json.dumps(self.meta, sort_keys=True),
            "first_turn_solve_rate": self.first_turn_solve_rate,
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any], frames: bool = True) -> "EpisodeRecord":
        """Accepts a row as stored (frames as {bytes, path}) or as decoded by `datasets` (frames as PIL).

        `frames=False` leaves the frames out (an empty list): what replays the graph without showing an image.
        """
        return cls(
            sample_id=row["sample_id"],
            source=row["source"],
            source_id=int(row["source_id"]),
            scenario=row["scenario"],
            question=row["question"],
            pre_prompt=row.get("pre_prompt") or "",
            hint=row.get("hint") or "",
            reference_question=row.get("reference_question") or "",
            options=[Option(o["text"], o["kind"], o["action"]) for o in row["options"]],
            categories=list(row["categories"]),
            answer=row["answer"],
            frames=[_frame_from_feature(f, i) for i, f in enumerate(row["frames"])] if frames else [],
            states=states_from_rows(row["states"]),
            first_state=int(row["first_state"]),
            reference_frame=int(row["reference_frame"]),
            max_turns=int(row["max_turns"]),
            oeg_answers=list(row.get("oeg_answers") or []),
            oeg_proactive_count=int(row.get("oeg_proactive_count") or 0),
            meta=json.loads(row["meta"]) if isinstance(row.get("meta"), str) and row["meta"] else dict(row.get("meta") or {}),
            first_turn_solve_rate=row.get("first_turn_solve_rate"),
        )

    # --- validation -------------------------------------------------------------------------------------

    def validate(self) -> "EpisodeRecord":
        validate_row_fields(self)
        return self


def states_from_rows(rows: Iterable[Mapping[str, Any]]) -> list[State]:
    return [
        State(
            frame=int(s["frame"]),
            shown=[int(i) for i in s["shown"]],
            moves=[Move(int(m["option"]), int(m["to"])) for m in s["moves"]],
            accepts_answer=bool(s["accepts_answer"]),
        )
        for s in rows
    ]


def _frame_from_feature(value: Any, index: int) -> Frame:
    if isinstance(value, Frame):
        return value
    if isinstance(value, Mapping):
        return Frame(value["bytes"], value.get("path") or f"frame_{index}")
    # A decoded PIL image: keep its pixels losslessly.
    buffer = io.BytesIO()
    value.save(buffer, format="PNG")
    return Frame(buffer.getvalue(), getattr(value, "filename", "") or f"frame_{index}.png")


def _fail(record: EpisodeRecord, field_name: str, message: str) -> None:
    raise EpisodeValidationError(f"sample {record.sample_id!r}: field {field_name!r}: {message}")


def validate_row_fields(r: EpisodeRecord) -> None:
    if r.source not in SOURCE_NAMES:
        _fail(r, "source", f"{r.source!r} is not one of {', '.join(SOURCE_NAMES)}")
    if r.scenario not in SCENARIO_NAMES:
        _fail(r, "scenario", f"{r.scenario!r} is not one of {', '.join(SCENARIO_NAMES)}")
    if not r.sample_id.startswith(f"{r.source}-"):
        _fail(r, "sample_id", f"must start with '{r.source}-'")
    if not is_safe_id(r.sample_id):  # ids become file names downstream (frame caches, part files)
        _fail(r, "sample_id", f"only {SAFE_ID_RULE}")
    if len(r.categories) != NUM_CATEGORIES:
        _fail(r, "categories", f"expected {NUM_CATEGORIES} categories, got {len(r.categories)}")
    if len(set(r.categories)) != len(r.categories):
        _fail(r, "categories", "categories repeat")
    # The one relaxation: an imported train row on an ambiguous frame does not say which category is right; it
    # stores answer "" with meta.answer_unknown and accepts no answer anywhere (builders/official_train.py).
    unknown_answer = r.answer == "" and isinstance(r.meta, dict) and r.meta.get("answer_unknown") is True
    if r.answer not in r.categories and not unknown_answer:
        _fail(r, "answer", f"{r.answer!r} is not in categories {r.categories!r}")
    for i, option in enumerate(r.options):
        if option.kind not in OPTION_KINDS:
            _fail(r, f"options[{i}].kind", f"{option.kind!r} is not one of {OPTION_KINDS}")
    if not r.frames:
        _fail(r, "frames", "no frames")
    if not r.states:
        _fail(r, "states", "no states")
    n_frames, n_states, n_options = len(r.frames), len(r.states), len(r.options)
    for i, state in enumerate(r.states):
        if not 0 <= state.frame < n_frames:
            _fail(r, f"states[{i}].frame", f"{state.frame} is not a frame index (0..{n_frames - 1})")
        for j, shown in enumerate(state.shown):
            if not 0 <= shown < n_options:
                _fail(r, f"states[{i}].shown[{j}]", f"{shown} is not an option index (0..{n_options - 1})")
        if len(set(state.shown)) != len(state.shown):
            _fail(r, f"states[{i}].shown", "an option is shown twice")
        seen = set()
        for j, move in enumerate(state.moves):
            if move.option not in state.shown:
                _fail(r, f"states[{i}].moves[{j}].option", f"{move.option} is not among the shown options {state.shown}")
            if move.option in seen:
                _fail(r, f"states[{i}].moves[{j}].option", f"option {move.option} has two moves")
            seen.add(move.option)
            if not 0 <= move.to < n_states:
                _fail(r, f"states[{i}].moves[{j}].to", f"{move.to} is not a state index (0..{n_states - 1})")
    if not 0 <= r.first_state < n_states:
        _fail(r, "first_state", f"{r.first_state} is not a state index (0..{n_states - 1})")
    if not 0 <= r.reference_frame < n_frames:
        _fail(r, "reference_frame", f"{r.reference_frame} is not a frame index (0..{n_frames - 1})")
    if r.max_turns < 1:
        _fail(r, "max_turns", f"must be at least 1, got {r.max_turns}")
    if not 0 <= r.oeg_proactive_count <= len(r.oeg_answers):
        _fail(r, "oeg_proactive_count", f"{r.oeg_proactive_count} exceeds the {len(r.oeg_answers)} oeg_answers")
    if unknown_answer:
        if any(s.accepts_answer for s in r.states):
            _fail(r, "states", "a state accepts an answer but the answer is unknown (meta.answer_unknown)")
    elif StateGraph(r.states).answer_path(r.first_state, r.max_turns) is None:
        _fail(r, "states", f"no state that accepts an answer is reachable from first_state within {r.max_turns} turns")

