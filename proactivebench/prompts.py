"""Prompt texts, byte-exact with the reference (docs/protocol.md §1.4, §3.2, §6.1)."""

from __future__ import annotations

from typing import Sequence

SHORT_ANSWER = "Please only return one of the options without any other words."
OEG_HINT = " If you cannot answer this question, please tell me what I should do to help you."


def multi_choice(question: str, options: Sequence[str], short_answer: bool = True) -> str:
    text = question + " Choose from the following options. Options:\n"
    for i, option in enumerate(options):
        text += f"{chr(65 + i)}. {option}\n"
    if short_answer:
        text += SHORT_ANSWER
    return text


def question_text(question: str, pre_prompt: str = "", hint: str | None = None) -> str:
    """`<pre_prompt> <question> <hint>` as the reference assembles it."""
    if pre_prompt:
        question = f"{pre_prompt} {question}"
    if hint:
        question = f"{question} {hint}"
    return question


def oeg_prompt(question: str, pre_prompt: str = "", generic_hint: bool = False) -> str:
    text = question_text(question, pre_prompt)
    return text + OEG_HINT if generic_hint else text
