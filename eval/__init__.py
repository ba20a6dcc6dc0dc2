"""Evaluation: the generic episode engine, prompts and parsing, metrics."""

from .engine import Episode, EpisodeResult, Observation, Turn
from .metrics import summarize

__all__ = ["Episode", "EpisodeResult", "Observation", "Turn", "summarize"]
