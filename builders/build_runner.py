"""The generic raw-source build: enumerate work, turn each item into an episode, stream them into the hub layout.

Every source plugs in through `builders.raw.RawSource`; this module adds what they share: the progress bar,
`--num-proc` (an order-preserving `Pool.imap`, so the output does not depend on the number of processes),
`--on-error fail|skip`, `--limit`, atomic streaming writes (`StagedOutput`: a failed build leaves the old
folder intact) and the build report, merged per source and split into `<out>/build_report.json`.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import time
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Iterator

from tqdm.auto import tqdm

from proactivebench.schema import SPLITS
from proactivebench.sources import get_source
from proactivebench.safe_files import OutputFolder
from proactivebench.store import StagedOutput

from .raw import RAW_SOURCES, BuildConfig, RawSource, WorkItem
from .scenarios import EntryError, entry_to_episode

log = logging.getLogger(__name__)

ON_ERROR = ("fail", "skip")
REPORT_NAME = "build_report.json"
# Errors that mean "this item's input is bad"; anything else is a bug and always propagates.
ITEM_ERRORS = (EntryError, OSError, ValueError)


class BuildError(ValueError):
    """A build stopped by bad input (`--on-error fail`); the message names the item and the reason."""


class ItemDropped(Exception):
    """Raised by `to_entry` for a well-formed item that a rule of the benchmark leaves out (e.g. a weak VSOD
    occlusion, an MVP-N set without an informative view): recorded in the report, never fatal."""


@dataclass
class Skipped:
    key: str
    reason: str


@dataclass
class BuildReport:
    source: str
    split: str
    raw_dir: str
    root: str  # the source's top folder that `locate` found
    seed: int
    num_proc: int
    on_error: str
    limit: int | None
    items: int = 0  # work items tried
    episodes: int = 0  # episodes written
    images: int = 0  # frames written
    seconds: float = 0.0
    skipped: list[Skipped] = field(default_factory=list)  # bad input, with --on-error skip
    dropped: list[Skipped] = field(default_factory=list)  # left out by a rule of the benchmark

    def to_json(self) -> dict:
        return asdict(self)


def raw_source_names() -> list[str]:
    from . import sources  # noqa: F401  (registers every source module)

    return sorted(RAW_SOURCES)


def get_raw_source(name: str) -> RawSource:
    known = raw_source_names()
    if name not in known:
        raise ValueError(f"no raw builder for source {name!r}; available: {', '.join(known) or 'none'}")
    return RAW_SOURCES[name]


# --- one item (runs in a worker process with --num-proc > 1) ----------------------------------------------

_WORKER: dict = {}


def _init_worker(source_name: str, root: Path, config: BuildConfig) -> None:
    _WORKER.update(source=get_raw_source(source_name), root=root, config=config)


@dataclass(frozen=True)
class ItemOutcome:
    """What a worker made of one work item: an episode row, or why there is none (pickled back to the parent)."""

    key: str
    row: dict | None = None  # the episode as a dataset row (`EpisodeRecord.to_row`)
    images: int = 0  # its frames
    reason: str | None = None  # why there is no row: bad input, or the benchmark's rule with `dropped`
    dropped: bool = False  # left out by a rule of the benchmark (`ItemDropped`), not an error


def _build_item(item: WorkItem) -> ItemOutcome:
    source: RawSource = _WORKER["source"]
    try:
        entry, reader = source.to_entry(_WORKER["root"], item, _WORKER["config"])
        record = entry_to_episode(entry, get_source(source.name), reader)
    except ItemDropped as why:
        return ItemOutcome(item.key, reason=str(why), dropped=True)
    except ITEM_ERRORS as error:
        return ItemOutcome(item.key, reason=str(error) or type(error).__name__)
    return ItemOutcome(item.key, row=record.to_row(), images=len(record.frames))


def _results(
    source_name: str, root: Path, config: BuildConfig, items: list[WorkItem], num_proc: int
) -> Iterator[ItemOutcome]:
    if num_proc <= 1:
        _init_worker(source_name, root, config)
        yield from map(_build_item, items)
        return
    # fork keeps the registry and imports of the parent; the pool is closed even when the consumer stops early.
    context = multiprocessing.get_context("fork")
    with context.Pool(num_proc, initializer=_init_worker, initargs=(source_name, root, config)) as pool:
        yield from pool.imap(_build_item, items, chunksize=max(1, min(8, len(items) // (num_proc * 8) or 1)))


# --- the build ------------------------------------------------------------------------------------------


def build_source(
    source_name: str,
    raw_dir: Path | str,
    out_dir: Path | str,
    split: str = "test",
    seed: int = 0,
    num_proc: int = 1,
    on_error: str = "fail",
    limit: int | None = None,
    progress: bool = True,
) -> BuildReport:
    """Build one source's split from its native download into the hub-layout folder `out_dir`."""
    if on_error not in ON_ERROR:
        raise ValueError(f"--on-error must be one of {', '.join(ON_ERROR)}, got {on_error!r}")
    if split not in SPLITS or split == "excluded":
        raise ValueError(f"--split must be test or train, got {split!r}")
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be at least 1, got {limit}")
    if num_proc < 1:
        raise ValueError(f"--num-proc must be at least 1, got {num_proc}")
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    if not raw_dir.exists():
        raise FileNotFoundError(f"{raw_dir}: no such folder (--raw-dir)")
    source = get_raw_source(source_name)
    root = source.locate(raw_dir)
    inputs = {"--raw-dir": raw_dir}
    OutputFolder.check(out_dir, "--out", inputs, inside_ok=True)  # before any work: a folder of the user's is refused at once
    config = BuildConfig(split=split, seed=seed, limit=limit)
    # Items are small (keys and paths); listing them first gives the bar a total. Images stream below.
    items = list(islice(source.items(root, config), limit))
    seen: set[str] = set()
    for item in items:
        if item.key in seen:
            raise BuildError(f"{source_name}: duplicate work item {item.key!r}")
        seen.add(item.key)

    report = BuildReport(source_name, split, str(raw_dir), str(root), seed, num_proc, on_error, limit)
    started = time.perf_counter()
    bar = tqdm(total=len(items), desc=f"build {source_name}/{split}", unit="ep", disable=not progress)

    def rows() -> Iterator[dict]:
        for outcome in _results(source_name, root, config, items, num_proc):
            report.items += 1
            bar.update(1)
            if outcome.dropped:
                report.dropped.append(Skipped(outcome.key, outcome.reason or ""))
                continue
            if outcome.reason is not None:
                if on_error == "fail":
                    raise BuildError(f"{source_name} item {outcome.key}: {outcome.reason}")
                report.skipped.append(Skipped(outcome.key, outcome.reason))
                bar.set_postfix(skipped=len(report.skipped))
                continue
            report.episodes += 1
            report.images += outcome.images
            yield outcome.row

    try:
        with StagedOutput(out_dir, inputs=inputs) as staged:
            staged.write_split(source_name, split, rows())
    finally:
        bar.close()
    report.seconds = round(time.perf_counter() - started, 3)
    merge_report(out_dir, report)
    return report


def merge_report(out_dir: Path, report: BuildReport) -> Path:
    """`<out>/build_report.json` = {source: {split: report}}; other sources and splits are kept."""
    path = Path(out_dir) / REPORT_NAME
    merged: dict = {}
    if path.exists():
        try:
            merged = json.loads(path.read_text())
        except json.JSONDecodeError:
            log.warning("%s: unreadable, replaced", path)
    merged.setdefault(report.source, {})[report.split] = report.to_json()
    return OutputFolder(out_dir).write_json(REPORT_NAME, merged)
