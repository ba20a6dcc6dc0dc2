"""The generic runner: order, --num-proc, --limit, --on-error, atomic output and the merged build report.

A fake raw source serves the protocol's golden entries from a written sample release, so these tests depend
on no real builder.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from proactivebench.builders import build_runner as runner
from proactivebench.builders.official import DirFrameReader
from proactivebench.builders.raw import RAW_SOURCES, RawSource, WorkItem
from proactivebench.samples.release import golden_entries, write_release
from proactivebench.builders.scenarios import Entry, EntryError
from proactivebench.store import count_rows, iter_rows, split_files


class FakeCOCO(RawSource):
    """Four golden COCO entries, each copied under several ids; `bad` ids fail in `to_entry`."""

    name = "coco"

    def __init__(self, copies: int = 3, bad: tuple[int, ...] = ()):
        self.copies, self.bad = copies, bad

    def locate(self, raw_dir: Path) -> Path:
        if not (raw_dir / "coco2014").is_dir():
            raise EntryError(f"{raw_dir}: expected a coco2014/ folder")
        return raw_dir

    def items(self, root, config):
        records = golden_entries()["coco"]
        for copy in range(self.copies):
            for record in records:
                new_id = copy * 100 + record["id"]
                yield WorkItem(f"entry-{new_id}", {**record, "id": new_id})

    def to_entry(self, root, item, config):
        if item.payload["id"] in self.bad:
            raise EntryError(f"{root}/bad-{item.payload['id']}.json: broken record")
        return Entry.from_json(item.payload, item.key), DirFrameReader(root)


@pytest.fixture
def fake(monkeypatch, tmp_path):
    import proactivebench.builders.sources  # noqa: F401  (the real registry first, then shadow one name)

    source = FakeCOCO()
    monkeypatch.setitem(RAW_SOURCES, "coco", source)
    raw = write_release(tmp_path / "raw", {"coco": golden_entries()["coco"]}, sizes={"coco": (160, 120)})
    return source, raw


def ids(out: Path, split: str = "test") -> list[int]:
    return [i for p in split_files(out, "coco", split) for i in pq.read_table(p, columns=["source_id"])["source_id"].to_pylist()]


def test_order_limit_and_report(fake, tmp_path):
    _, raw = fake
    out = tmp_path / "out"
    report = runner.build_source("coco", raw, out, seed=1, limit=6, progress=False)
    assert ids(out) == [0, 1, 2, 3, 100, 101]
    frames = sum(len(r["frames"]) for r in iter_rows(out, ["coco"]))
    assert report.episodes == 6 and report.items == 6 and report.images == frames > 6
    saved = json.loads((out / runner.REPORT_NAME).read_text())
    assert saved["coco"]["test"]["episodes"] == 6 and saved["coco"]["test"]["skipped"] == []


def test_num_proc_gives_identical_bytes(fake, tmp_path):
    _, raw = fake
    runner.build_source("coco", raw, tmp_path / "one", progress=False)
    runner.build_source("coco", raw, tmp_path / "two", num_proc=2, progress=False)
    first = [p.read_bytes() for p in split_files(tmp_path / "one", "coco", "test")]
    second = [p.read_bytes() for p in split_files(tmp_path / "two", "coco", "test")]
    assert first and first == second


def test_fail_names_the_item_and_leaves_old_output(fake, tmp_path):
    source, raw = fake
    out = tmp_path / "out"
    runner.build_source("coco", raw, out, progress=False)
    before = {p.name: p.read_bytes() for p in split_files(out, "coco", "test")}
    source.bad = (101,)
    with pytest.raises(runner.BuildError, match=r"entry-101: .*bad-101\.json: broken record"):
        runner.build_source("coco", raw, out, split="test", progress=False)
    assert {p.name: p.read_bytes() for p in split_files(out, "coco", "test")} == before
    assert not [p for p in out.rglob("*") if ".staging" in p.name or p.suffix == ".partial"]


def test_skip_records_reason_and_merges_reports(fake, tmp_path):
    source, raw = fake
    out = tmp_path / "out"
    source.bad = (2, 203)
    report = runner.build_source("coco", raw, out, split="train", on_error="skip", progress=False)
    assert [s.key for s in report.skipped] == ["entry-2", "entry-203"]
    assert "broken record" in report.skipped[0].reason
    source.bad = ()
    runner.build_source("coco", raw, out, split="test", progress=False)
    saved = json.loads((out / runner.REPORT_NAME).read_text())
    assert saved["coco"]["train"]["episodes"] == 10 and len(saved["coco"]["train"]["skipped"]) == 2
    assert saved["coco"]["test"]["episodes"] == 12
    assert count_rows(out)["coco"] == {"train": 10, "test": 12}


def test_bad_arguments(fake, tmp_path):
    _, raw = fake
    with pytest.raises(ValueError, match="on-error"):
        runner.build_source("coco", raw, tmp_path / "o", on_error="ignore")
    with pytest.raises(ValueError, match="split"):
        runner.build_source("coco", raw, tmp_path / "o", split="excluded")
    with pytest.raises(EntryError, match="coco2014"):
        runner.build_source("coco", tmp_path, tmp_path / "o")
