"""Loading episodes at the paper's scale: the frames column is never rewritten in one piece.

A `cast_column` of the frames after loading is a `Dataset.map` whose batches of 1,000 rows concatenate their
frames into one Arrow binary array; with 7,557 episodes of 640x480 photographs that passes 2 GiB and fails with
"offset overflow while concatenating arrays" (benchmarks/bench_overflow.py reproduces it with real 2 GiB data).
"""

from __future__ import annotations

import datasets
import pytest

from proactivebench.store import iter_rows, load_episodes


def test_load_episodes_leaves_the_frames_undecoded_without_a_pass_over_them(imported_dir, monkeypatch):
    def refuse(self, *args, **kwargs):
        raise AssertionError("a pass over the whole dataset (map / cast) while loading")

    monkeypatch.setattr(datasets.Dataset, "map", refuse)
    monkeypatch.setattr(datasets.Dataset, "cast", refuse)
    table = load_episodes(imported_dir, "test")
    assert table.features["frames"] == datasets.List(datasets.Image(decode=False))
    stored = {row["sample_id"]: [f["bytes"] for f in row["frames"]] for row in iter_rows(imported_dir, split="test")}
    loaded = {row["sample_id"]: [f["bytes"] for f in row["frames"]] for row in table}
    assert loaded == stored and all(isinstance(b, bytes) for frames in loaded.values() for b in frames)


def test_load_episodes_of_some_sources(imported_dir, monkeypatch):
    monkeypatch.setattr(datasets.Dataset, "cast", lambda *a, **k: pytest.fail("cast while loading"))
    table = load_episodes(imported_dir, "test", ["coco", "rod"])
    assert set(table["source"]) == {"coco", "rod"}
    assert table.features["frames"].feature.decode is False
