"""The walk from a source's state machine to an episode, shared by the raw-source builders and the release
importer. The per-source rules are the source specs themselves (`proactivebench.sources`)."""

from __future__ import annotations

from proactivebench.sources.spec import Entry, EntryError, FrameRef, SourceSpec, StateSpec

from .base import FrameReader, entry_to_episode

__all__ = ["Entry", "EntryError", "FrameReader", "FrameRef", "SourceSpec", "StateSpec", "entry_to_episode"]
