"""Shared checks for the raw-source builder tests (`tests/test_build_*.py`)."""

from __future__ import annotations

import io
from pathlib import Path

from proactivebench.builders.build_runner import build_source, get_raw_source
from proactivebench.schema import EpisodeRecord
from proactivebench.store import iter_rows, split_files


def write_sample(folder: Path, source: str, per_source: int = 4, seed: int = 0) -> Path:
    target = folder / source
    target.mkdir(parents=True, exist_ok=True)
    get_raw_source(source).write_sample(target, per_source, seed)
    return target


def build(source: str, raw: Path, out: Path, **kwargs):
    return build_source(source, raw, out, progress=False, **kwargs)


def episodes(out: Path, source: str, split: str = "test") -> list[EpisodeRecord]:
    return [EpisodeRecord.from_row(row) for row in iter_rows(out, [source], split)]


def assert_frames_decode(record: EpisodeRecord) -> None:
    from PIL import Image

    for frame in record.frames:
        with Image.open(io.BytesIO(frame.data)) as image:
            image.load()
            assert image.size[0] > 8 and image.size[1] > 8, frame.name


def frame_name(record: EpisodeRecord, state: int) -> str:
    return record.frames[record.states[state].frame].name


def option_index(record: EpisodeRecord, action: str) -> int:
    return next(i for i, o in enumerate(record.options) if o.action == action)


def assert_no_leftovers(out: Path, source: str) -> None:
    """After a failed build: no parquet of the source, no staging folder, no partial shard."""
    assert not split_files(out, source, "test")
    leftovers = [p for p in out.rglob("*") if ".staging" in p.name or p.suffix in (".partial", ".tmp")]
    assert not leftovers, leftovers
