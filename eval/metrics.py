"""The paper's MCQA metrics (docs/protocol.md §3.8): acc = % of episodes correct; psr = mean accepted moves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from proactivebench.engine import EpisodeResult


@dataclass(frozen=True)
class Score:
    episodes: int
    acc: float  # percent
    psr: float  # mean number of proactive suggestions, not a percent

    def line(self) -> str:
        return f"acc: {self.acc:.1f}% - ps rate: {self.psr:.1f}"


def summarize(results: Iterable[EpisodeResult]) -> Score:
    results = list(results)
    if not results:
        return Score(0, 0.0, 0.0)
    n = len(results)
    return Score(n, 100 * sum(r.correct for r in results) / n, sum(r.proactive_suggestions for r in results) / n)
