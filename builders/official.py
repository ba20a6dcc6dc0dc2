"""`import-official`: the authors' released test folder → our episodes, with the official filter as splits.

The release is `<data_dir>/<Name>_preprocessed.jsonl` (one per source) beside the extracted image folders that
each record's `image_template` points into (docs/protocol.md §1, §8).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Iterator

from tqdm.auto import tqdm

from proactivebench.sources import BY_OFFICIAL_NAME, SOURCES, get_source
from proactivebench.safe_files import OutputFolder
from proactivebench.store import StagedOutput

from .scenarios import Entry, EntryError, entry_to_episode

JSONL_SUFFIX = "_preprocessed.jsonl"


@lru_cache(maxsize=1)
def official_filter_ids() -> dict[str, frozenset[int]]:
    """The paper's kept ids per source (our short names), shipped as package data."""
    raw = json.loads(resources.files("proactivebench").joinpath("data/official_filter_ids.json").read_text())
    return {BY_OFFICIAL_NAME[name].name: frozenset(ids) for name, ids in raw.items()}


class DirFrameReader:
    """Reads frame files under one folder; a path that leaves the folder or is missing is an error."""

    def __init__(self, root: Path | str):
        self.root = Path(root).resolve()

    def origin(self, path: str) -> str:
        return str(self.root / path)

    def read(self, path: str, where: str) -> bytes:
        try:
            full = (self.root / path).resolve()
        except (RuntimeError, OSError):  # Python 3.11 raises RuntimeError on a symlink loop
            raise EntryError(f"{where}: image file {self.root / path} is a link that loops") from None
        if not full.is_relative_to(self.root):
            raise EntryError(f"{where}: image path {path!r} escapes the data folder {self.root}")
        if full.is_dir():
            raise EntryError(f"{where}: image file {full} is a folder")
        if not full.is_file():
            raise EntryError(f"{where}: missing image file {full}")
        try:
            return full.read_bytes()
        except OSError as error:
            raise EntryError(f"{where}: cannot read image file {full}: {error.strerror}") from None


def read_jsonl(path: Path) -> Iterator[Entry]:
    if path.is_dir():
        raise EntryError(f"{path}: a folder, not a JSON-lines file")
    with open(path, encoding="utf-8", errors="strict") as handle:
        for number, line in enumerate(_lines(handle, path), start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise EntryError(f"{where}: malformed JSON: {error.msg} (column {error.colno})") from None
            yield Entry.from_json(record, where)


def _lines(handle, path: Path) -> Iterator[str]:
    """The file's lines; bytes that are not UTF-8 are one line naming the file and line."""
    number = 0
    while True:
        number += 1
        try:
            line = handle.readline()
        except UnicodeDecodeError as error:
            raise EntryError(f"{path}:{number}: not UTF-8 text ({error.reason} at byte {error.start})") from None
        if not line:
            return
        yield line


def find_release_files(data_dir: Path) -> dict[str, Path]:
    """{source: jsonl path}; a `*_preprocessed.jsonl` of an unknown dataset is an error."""
    if not data_dir.is_dir():
        raise EntryError(f"{data_dir}: not a folder (expected the release's extracted test/ folder)")
    found = {}
    for path in sorted(data_dir.glob(f"*{JSONL_SUFFIX}")):
        name = path.name[: -len(JSONL_SUFFIX)]
        if name not in BY_OFFICIAL_NAME:
            known = ", ".join(sorted(BY_OFFICIAL_NAME))
            raise EntryError(f"{path}: unknown dataset file name {name!r}; expected one of {known}")
        found[BY_OFFICIAL_NAME[name].name] = path
    if not found:
        raise EntryError(f"{data_dir}: no *{JSONL_SUFFIX} files; point --data-dir at the release's test/ folder")
    return found


@dataclass
class ImportReport:
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)
    missing_official_ids: dict[str, list[int]] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"counts": self.counts, "dropped": self.dropped, "missing_official_ids": self.missing_official_ids}


def import_official(data_dir: Path | str, out_dir: Path | str, sources: list[str] | None = None) -> ImportReport:
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    inputs = {"--data-dir": data_dir}
    OutputFolder.check(out_dir, "--out", inputs, inside_ok=True)
    files = find_release_files(data_dir)
    if sources:
        unknown = sorted(set(sources) - set(SOURCES))
        if unknown:
            raise EntryError(f"unknown source(s) {', '.join(unknown)}")
        files = {s: p for s, p in files.items() if s in sources}
    reader = DirFrameReader(data_dir)
    kept_ids = official_filter_ids()
    report = ImportReport()
    with StagedOutput(out_dir, inputs=inputs) as staged:
        for source, path in files.items():
            scenario = get_source(source)
            entries = list(read_jsonl(path))  # parse the whole file first: a bad line fails before any image work
            seen: set[int] = set()
            for entry in entries:
                if entry.id in seen:
                    raise EntryError(f"{entry.where}: duplicate id {entry.id}")
                seen.add(entry.id)
            reasons = {e.id: scenario.release_drop(e) for e in entries}
            entries = [e for e in entries if reasons[e.id] is None]
            report.dropped[source] = dict(Counter(r for r in reasons.values() if r is not None))
            report.missing_official_ids[source] = sorted(kept_ids[source] - {e.id for e in entries})
            split_of = {e.id: ("test" if e.id in kept_ids[source] else "excluded") for e in entries}
            report.counts[source] = {}
            with tqdm(total=len(entries), desc=f"import {source}", unit="ep") as bar:
                for split in ("test", "excluded"):
                    chosen = [e for e in entries if split_of[e.id] == split]

                    def episodes(chosen=chosen):
                        for entry in chosen:
                            yield entry_to_episode(entry, scenario, reader)
                            bar.update(1)

                    result = staged.write_split(source, split, episodes())
                    report.counts[source][split] = result.rows
    # The report lands beside the data only with a successful import.
    OutputFolder(out_dir).write_json("import_report.json", report.to_json())
    return report
