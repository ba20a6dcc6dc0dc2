"""Evaluation: backends, the batch runner, metrics, results and reports. The engine, prompts and parser are in the
core (`proactivebench.engine`, `.prompts`, `.parsing`); `Episode` etc. are re-exported here."""

from proactivebench.engine import Episode, EpisodeResult, Observation, Turn
from .metrics import summarize
from .backends import Backend, Generation, Request, load_backend
from .runner import EvalConfig, RunSummary, run_eval

__all__ = [
    "Episode", "EpisodeResult", "Observation", "Turn", "summarize",
    "Backend", "Generation", "Request", "load_backend", "EvalConfig", "RunSummary", "run_eval",
]
