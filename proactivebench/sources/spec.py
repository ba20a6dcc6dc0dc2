"""What a source is: one `SourceSpec` subclass per source, its facts as class attributes and the reference's
environment as a small state machine (docs/architecture.md §3, docs/adding_a_source.md).

An `Entry` is the authors' jsonl record (docs/protocol.md §1.7). Builders of the raw sources produce the same
entries, so the release importer and the raw builders share the state machine; `builders.scenarios` walks it.
A spec describes the environment over hashable keys: `start`, `describe(key)` and `transition(key, action)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Hashable, Mapping

from proactivebench.actions import ACTIONS, is_abstain, parse_action


class EntryError(ValueError):
    """A source record that cannot become an episode; the message names the record."""


COMMON_FIELDS: dict[str, type | tuple[type, ...]] = {
    "id": int,
    "image_template": str,
    "first_image": int,
    "num_images": int,
    "reference_image": int,
    "prompt": str,
    "options": list,
    "categories": list,
    "answer": str,
}


@dataclass
class Entry:
    """One record in the authors' jsonl format; `where` names it in error messages (file and line)."""

    id: int
    image_template: str
    first_image: int
    num_images: int
    reference_image: int
    prompt: str
    options: list[str]
    categories: list[str]
    answer: str
    extra: dict[str, Any] = field(default_factory=dict)
    where: str = ""

    @classmethod
    def from_json(cls, record: Mapping[str, Any], where: str) -> "Entry":
        if not isinstance(record, Mapping):
            raise EntryError(f"{where}: expected a JSON object, got {type(record).__name__}")
        values = {}
        for name, kind in COMMON_FIELDS.items():
            if name not in record:
                raise EntryError(f"{where}: missing field {name!r}")
            value = record[name]
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise EntryError(f"{where}: field {name!r} should be {kind.__name__}, got {value!r}")
            values[name] = value
        for name in ("options", "categories"):
            if not all(isinstance(v, str) for v in values[name]):
                raise EntryError(f"{where}: field {name!r} should be a list of strings")
        extra = {k: v for k, v in record.items() if k not in COMMON_FIELDS}
        return cls(**values, extra=extra, where=where)

    def require(self, name: str, kind: type | tuple[type, ...]) -> Any:
        if name not in self.extra:
            raise EntryError(f"{self.where}: missing field {name!r}")
        value = self.extra[name]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise EntryError(f"{self.where}: field {name!r} has an unexpected value {value!r}")
        return value

    def fail(self, message: str) -> EntryError:
        return EntryError(f"{self.where}: {message}")


@dataclass(frozen=True)
class FrameRef:
    """Where a frame's pixels come from: a file kept byte-exact, or a crop of it stored as PNG."""

    path: str
    crop: tuple[float, float, float, float] | None = None  # a PIL box (left, upper, right, lower)

    @property
    def name(self) -> str:
        if self.crop is None:
            return self.path
        return f"{self.path}#crop={','.join(_number(c) for c in self.crop)}.png"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


@dataclass(frozen=True)
class StateSpec:
    frame: FrameRef
    shown: tuple[int, ...]  # option indices, in display order
    valid: tuple[int, ...]  # the shown options whose choice is a valid proactive move here
    accepts_answer: bool


# The few-shot trajectory rules (eval/fewshot.py implements them, docs/protocol.md §5.2).
SHOT_POLICIES = ("one_random_move", "lowest_move_walk", "to_reference")
VIDEO_PRE_PROMPT = "This is a frame extracted from a video. Answer the following question."
SAMPLE_PROMPT = "What is the object in the image?"  # the release sample's usual question

# Class attributes every concrete spec sets itself, and the methods it implements (`missing_parts`).
REQUIRED_ATTRIBUTES = (
    "name", "official_name", "acronym", "scenario", "position", "license", "citation", "homepage", "action_space",
    "oeg_threshold", "cot_prompt", "train_rank",
)
REQUIRED_METHODS = ("start", "describe", "transition", "reference", "oeg_string", "release_sample", "release_images")


class SourceSpec:
    """One source: its facts (class attributes) and its environment (methods). Subclasses set the attributes and
    implement the state machine; the registry (`proactivebench.sources`) finds them."""

    # Identity: our key (sample ids, folders, configs), the authors' dataset key / jsonl stem, their
    # test-script / OEG key, the scenario, the paper's order, and the dataset card's facts.
    name: ClassVar[str]
    official_name: ClassVar[str]
    acronym: ClassVar[str]
    scenario: ClassVar[str]
    position: ClassVar[int]
    license: ClassVar[str]
    citation: ClassVar[str]
    homepage: ClassVar[str]
    # Prompts and scoring (docs/protocol.md §1, §6.2): the actions an option may ask for, the MCQA hint, the video
    # pre-prompt, the reference-mode question, how many leading OEG answers are proactive.
    action_space: ClassVar[tuple[str, ...]]
    hint_text: ClassVar[str] = ""
    pre_prompt: ClassVar[str] = ""
    reference_question: ClassVar[str] = ""
    oeg_threshold: ClassVar[int]
    # Few-shot (docs/protocol.md §5.2): the CoT prefix, the example images' short edge, the trajectory rule.
    cot_prompt: ClassVar[str]
    icl_resize: ClassVar[int] = 224
    shot_policy: ClassVar[str] = "to_reference"
    # The authors' train split (builders/official_train.py): a row goes to the lowest-ranked source whose action
    # space covers its proactive options; without any, to the source whose marker its image file name holds.
    train_rank: ClassVar[int]
    train_image_marker: ClassVar[str] = ""
    # The release sample (proactivebench/samples/release.py): the size of its synthetic images.
    release_image_size: ClassVar[tuple[int, int]] = (64, 48)

    @property
    def source(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    @classmethod
    def missing_parts(cls) -> list[str]:
        """What a concrete spec lacks: unset attributes, methods left to the base class, bad values."""
        missing = [name for name in REQUIRED_ATTRIBUTES if not hasattr(cls, name)]
        missing += [f"{name}()" for name in REQUIRED_METHODS if getattr(cls, name) is getattr(SourceSpec, name)]
        if not missing:
            if not all(getattr(cls, name) for name in ("name", "official_name", "acronym", "scenario", "cot_prompt")):
                missing.append("a non-empty name, official_name, acronym, scenario and cot_prompt")
            if "stop" not in cls.action_space or not set(cls.action_space) <= set(ACTIONS):
                missing.append(f"action_space {cls.action_space!r} (with 'stop', within actions.ACTIONS)")
            if cls.shot_policy not in SHOT_POLICIES:
                missing.append(f"shot_policy {cls.shot_policy!r} (one of {', '.join(SHOT_POLICIES)})")
        return missing

    def check(self, entry: Entry) -> None:
        """Reject entries the reference would crash on, with the record named."""

    def hint(self, entry: Entry) -> str:
        return self.hint_text

    def max_turns(self, entry: Entry) -> int:
        return entry.num_images

    def start(self, entry: Entry) -> Hashable:
        raise NotImplementedError

    def describe(self, entry: Entry, key: Hashable) -> StateSpec:
        raise NotImplementedError

    def transition(self, entry: Entry, key: Hashable, action: str) -> Hashable | None:
        """The next key after a valid move, or None when the move leaves the source's frames."""
        raise NotImplementedError

    def reference(self, entry: Entry) -> FrameRef:
        raise NotImplementedError

    def oeg_string(self, entry: Entry) -> str:
        """The reference's comma-separated valid open-ended answers (docs/protocol.md §6.2)."""
        raise NotImplementedError

    def meta(self, entry: Entry) -> dict[str, Any]:
        return {}

    def release_drop(self, entry: Entry) -> str | None:
        """Why the reference leaves a record of the authors' release out (the report's reason), or None."""
        return None

    # --- the release sample (docs/protocol.md §12) ------------------------------------------------------------

    def release_sample(self) -> list[dict[str, Any]]:
        """Synthetic records in the authors' format whose behaviour the golden traces pin down."""
        raise NotImplementedError

    def release_images(self, entry: Entry) -> list[str]:
        """Every image file the release holds for a record."""
        raise NotImplementedError

    # --- shared helpers ---------------------------------------------------------------------------------

    def non_abstain(self, entry: Entry) -> tuple[int, ...]:
        return tuple(i for i, text in enumerate(entry.options) if not is_abstain(text))

    def option(self, text: str):
        """An option text as stored: abstain by the reference's rule, else the action it asks for here."""
        from proactivebench.schema import Option  # the schema imports this package's registry

        if is_abstain(text):
            return Option(text, "abstain", "stop")
        return Option(text, "proactive", parse_action(text, self.action_space) or "")

    def options(self, entry: Entry) -> list:
        return [self.option(text) for text in entry.options]


class LinearSpec(SourceSpec):
    """A fixed sequence, one step per valid move; the last turn shows the move but has none (docs/protocol.md §10.4).

    MVP-N, ImageNet-C and QuickDraw differ only in which frame a turn shows and which options are valid moves.
    """

    def frame(self, entry: Entry, turn: int, last_turn: bool) -> FrameRef:
        raise NotImplementedError

    def valid_moves(self, entry: Entry) -> tuple[int, ...]:
        return self.non_abstain(entry)

    # key: the turn
    def start(self, entry: Entry):
        return 0

    def describe(self, entry: Entry, turn) -> StateSpec:
        last_turn = turn + 1 == entry.num_images
        return StateSpec(
            self.frame(entry, turn, last_turn),
            shown=tuple(range(len(entry.options))),
            valid=() if last_turn else self.valid_moves(entry),
            accepts_answer=True,
        )

    def transition(self, entry: Entry, turn, action: str):
        return turn + 1


def strip_periods(text: str) -> str:
    return text.replace(".", "")


def oeg_items(oeg_string: str) -> list[str]:
    """Split as the judge does (docs/protocol.md §6.3): on commas, stripped, periods removed, blanks dropped."""
    return [item.strip().replace(".", "") for item in oeg_string.split(",") if item.strip()]
