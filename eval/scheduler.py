"""The one runner mechanism: episodes in, turns out, durable as they go. `eval` and `curate first-turn` (a run
of one turn per episode) both drive their episodes through `drive`.

Two schedules, chosen by the backend:
- pipelined (a backend with `agenerate`, i.e. a server): asyncio, up to `concurrency` episodes each with one
  request in flight; an episode takes its next turn as soon as its own answer arrives, a finished episode's
  slot goes to the next one at once. No batch barrier, so one slow request holds up only its own episode.
- turn-synchronous batches (in-process models, baselines): up to `batch_size` live episodes, one backend call
  per step with one request each, refilled as they finish.

Writes go to a `Sink` through group commits (`CommitPolicy`: every N turns or T seconds, and at the end or on
any exception), so writing never dominates; the sink keeps each episode atomic (see results.ResultsWriter).
A SIGKILL loses at most the uncommitted group, which a resume runs again.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence

from .backends.base import Generation, Request

MakeRequest = Callable[[Any, Any], Request]  # (episode, observation) -> request


class Sink(Protocol):
    def record(self, episode: Any, turn: Any, generation: Generation) -> None:
        """One turn of `episode` (already stepped); `episode.done` tells whether it ended with it."""

    def commit(self) -> None:
        """Make everything recorded so far durable in one atomic write."""


@dataclass(frozen=True)
class CommitPolicy:
    every_turns: int = 512
    every_s: float = 2.0


class _Committer:
    def __init__(self, sink: Sink, policy: CommitPolicy):
        self.sink, self.policy = sink, policy
        self.pending, self.last = 0, time.monotonic()

    def added(self, turns: int) -> None:
        self.pending += turns
        if self.pending >= self.policy.every_turns or time.monotonic() - self.last >= self.policy.every_s:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.sink.commit()
        self.pending, self.last = 0, time.monotonic()


def _step(episode: Any, generation: Generation):
    return episode.step_error(generation.error) if generation.error else episode.step(generation.text)


def pipelined(backend: Any) -> bool:
    return callable(getattr(backend, "agenerate", None))


def longest_first(indices: list[int], max_turns: Sequence[int]) -> list[int]:
    """`indices` with the episodes that may take the most turns first (ties in their order): the run's tail is then
    short episodes filling the lanes that free up, not one long chain started last (longest-processing-time-first;
    on benchmarks/bench_eval.py (a) at 32 in flight it lifts the best reachable efficiency from 0.90 to 0.96)."""
    return sorted(indices, key=lambda index: -max_turns[index])


def drive(
    episodes: Iterable[Any],
    backend: Any,
    sink: Sink,
    *,
    make_request: MakeRequest,
    batch_size: int = 8,
    concurrency: int = 64,
    on_done: Callable[[Any], None] = lambda episode: None,
    policy: CommitPolicy = CommitPolicy(),
) -> None:
    """Run every episode to its end through `backend`, recording each turn in `sink`."""
    committer = _Committer(sink, policy)
    try:
        if pipelined(backend):
            asyncio.run(_drive_pipelined(iter(episodes), backend, sink, make_request, concurrency, on_done, committer))
        else:
            _drive_batched(iter(episodes), backend, sink, make_request, batch_size, on_done, committer)
    finally:
        committer.flush()  # also on errors and interrupts: what finished is kept


def _drive_batched(episodes: Iterator, backend, sink, make_request, batch_size, on_done, committer) -> None:
    live: list[Any] = []
    while True:
        while len(live) < batch_size:
            episode = next(episodes, None)
            if episode is None:
                break
            live.append(episode)
        if not live:
            return
        generations = backend.generate([make_request(episode, episode.observe()) for episode in live])
        for episode, generation in zip(live, generations):
            sink.record(episode, _step(episode, generation), generation)
            if episode.done:
                on_done(episode)
        committer.added(len(live))
        live = [episode for episode in live if not episode.done]


async def _drive_pipelined(episodes: Iterator, backend, sink, make_request, concurrency, on_done, committer) -> None:
    async def lane() -> None:
        # Lanes share one iterator: `next` never awaits, so no episode is taken twice.
        for episode in episodes:
            while not episode.done:
                generation = await backend.agenerate(make_request(episode, episode.observe()))
                sink.record(episode, _step(episode, generation), generation)
                if episode.done:
                    on_done(episode)
                committer.added(1)

    try:
        async with asyncio.TaskGroup() as group:  # the first failure (a dead server) cancels the other lanes
            for _ in range(max(1, concurrency)):
                group.create_task(lane())
                # One lane per turn of the loop: the first answers are read as they come, not after every lane
                # has built and sent its first request (which held the longest episodes up by ~0.2 s at 128).
                await asyncio.sleep(0)
    except BaseExceptionGroup as group_error:
        raise group_error.exceptions[0] from None
    finally:
        close = getattr(backend, "aclose", None)
        if close is not None:
            await close()
