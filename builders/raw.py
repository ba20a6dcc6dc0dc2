"""The raw-source builder interface: one `RawSource` per source, registered in RAW_SOURCES.

A raw source turns the layout a user gets from the original download into entries in the authors' jsonl
format (`scenarios.Entry`) plus a `FrameReader` for their images; `scenarios.entry_to_episode` does the rest,
exactly as for the authors' release. The generic runner (`build_source`, below or in `builders/build_runner.py`)
adds progress, `--on-error`, `--num-proc`, `--limit`, streaming writes and the build report.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from .scenarios import Entry, FrameReader


@dataclass(frozen=True)
class BuildConfig:
    split: str = "test"  # test | train
    seed: int = 0
    limit: int | None = None


@dataclass(frozen=True)
class WorkItem:
    """One unit of build work (usually one future episode); `key` names it in errors and the report."""

    key: str
    payload: Any  # picklable: it may travel to a worker process


class RawSource:
    name: str  # our source name (proactivebench.sources)

    def locate(self, raw_dir: Path) -> Path:
        """The source's top folder, given the folder the user downloaded into or that top folder itself.

        Raise `EntryError` with a one-line message naming what was expected when neither is found.
        """
        raise NotImplementedError

    def items(self, root: Path, config: BuildConfig) -> Iterator[WorkItem]:
        """Cheap, deterministic enumeration of the work (no image decoding here)."""
        raise NotImplementedError

    def to_entry(self, root: Path, item: WorkItem, config: BuildConfig) -> tuple[Entry, FrameReader]:
        """One entry in the authors' format and the reader of its frames; raise `EntryError` on bad input."""
        raise NotImplementedError

    def write_sample(self, out: Path, per_source: int, seed: int) -> None:
        """Write a small sample in the exact native layout under `out` (= `<OUT>/<source>/`)."""
        raise NotImplementedError


RAW_SOURCES: dict[str, RawSource] = {}


def register(source: RawSource) -> RawSource:
    RAW_SOURCES[source.name] = source
    return source
