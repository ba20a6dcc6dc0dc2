"""Evaluation: the generic episode engine, prompts and parsing, metrics."""

from .engine import Episode, EpisodeResult, Observation, Turn
from .metrics import summarize
from .backends import Backend, Generation, Request, load_backend
from .runner import EvalConfig, RunSummary, run_eval

__all__ = [
    "Episode", "EpisodeResult", "Observation", "Turn", "summarize",
    "Backend", "Generation", "Request", "load_backend", "EvalConfig", "RunSummary", "run_eval",
]
