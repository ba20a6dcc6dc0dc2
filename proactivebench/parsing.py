"""Answer parsing exactly as the paper's reference (docs/protocol.md §3.3–3.4), plus an opt-in lenient parser.

The paper parser reproduces the reference's quirks on purpose (docs/protocol.md §10.2): the trailing period is
required for full-text matches, and a greedy regex strips everything up to the last "<capital>." on the
first line, so "BED." and "The answer is B." both parse to nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

CORRECT, WRONG, MISMATCH = "correct", "wrong", "mismatch"

_LETTER_PREFIX = re.compile(r"^.*[A-Z]\.\s*")


def std_full(text: str) -> str:
    return _LETTER_PREFIX.sub("", text).lower().strip().replace(" ", "")


def std_letter(text: str) -> str:
    head = text.split(".")[0].lower().strip()
    return "#" if len(head) > 1 else head


@dataclass(frozen=True)
class Verdict:
    verdict: str  # correct / wrong / mismatch
    index: int | None  # position of the chosen entry in the list it was matched against

    @property
    def matched(self) -> bool:
        return self.index is not None


def paper_evaluate(generated: str, correct: Sequence[str], options: Sequence[str], shift: int) -> Verdict:
    """The reference's `_evaluate`: full text first, then the letter; letters start at chr(65 + shift)."""
    full = std_full(generated)
    std_options = [std_full(o) for o in options]
    if full in [std_full(c) for c in correct]:
        return Verdict(CORRECT, std_options.index(full))
    if full in std_options:
        return Verdict(WRONG, std_options.index(full))
    letter = std_letter(generated)
    correct_letters = [std_letter(chr(65 + options.index(c) + shift)) for c in correct]
    option_letters = [std_letter(chr(65 + i + shift)) for i in range(len(options))]
    if letter in correct_letters:
        return Verdict(CORRECT, option_letters.index(letter))
    if letter in option_letters:
        return Verdict(WRONG, option_letters.index(letter))
    return Verdict(MISMATCH, None)


_LENIENT_LETTER = re.compile(r"^\s*(?:the\s+)?(?:final\s+)?(?:answer|option)?\s*(?:is)?\s*[:\-]?\s*[\(\[]?([A-Za-z])[\)\]\.:]?(?:\s|$)", re.I)


def _normalise(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def lenient_evaluate(generated: str, correct: Sequence[str], options: Sequence[str], shift: int) -> Verdict:
    """Paper parsing first; then tolerant matching: no trailing period, case, punctuation, "(B)", "Answer: B"."""
    verdict = paper_evaluate(generated, correct, options, shift)
    if verdict.matched:
        return verdict
    text = generated.strip()
    normalised = _normalise(text)
    keys = [_normalise(o) for o in options]
    hits = [i for i, k in enumerate(keys) if k and (normalised == k or normalised.endswith(k))]
    if len(hits) == 1:
        index = hits[0]
    else:
        match = _LENIENT_LETTER.match(text)
        index = ord(match.group(1).upper()) - 65 - shift if match else -1
        if not 0 <= index < len(options):
            return Verdict(MISMATCH, None)
    return Verdict(CORRECT if options[index] in correct else WRONG, index)


PARSERS: dict[str, Callable[[str, Sequence[str], Sequence[str], int], Verdict]] = {
    "paper": paper_evaluate,
    "lenient": lenient_evaluate,
}


def get_parser(name: str):
    try:
        return PARSERS[name]
    except KeyError:
        raise ValueError(f"unknown parser {name!r}; expected one of {', '.join(PARSERS)}") from None
