"""Checks a hub-layout folder before anything leaves the machine; `publish` refuses on the first problem.

schema of every shard = `FEATURES`; shard names complete; shard and row-group sizes within the Hub's limits;
every frame decodes; sample ids unique in the pool; the card's configs and counts equal what is on disk.
"""

from __future__ import annotations

import io
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pyarrow.parquet as pq
from tqdm.auto import tqdm

from proactivebench.integrity import DatasetError, check_shard_sets
from proactivebench.safe_files import SAFE_ID_RULE, is_safe_id
from proactivebench.schema import FEATURES
from proactivebench.store import SHARD_NAME, card_configs, layout

from .card import CardError, card_configs_of, card_split_counts, config_counts

MAX_SHARD_BYTES = 500 * 1024**2  # the Hub's recommended parquet shard size
# The dataset viewer refuses row groups over 300,000,000 uncompressed bytes ("max=286.10 MiB", TooBigContentError).
MAX_ROW_GROUP_BYTES = 300_000_000


class PublishError(ValueError):
    """The folder is not fit to publish; the message names the file or config."""


@dataclass
class CheckReport:
    shards: int = 0
    rows: int = 0
    frames: int = 0
    bytes: int = 0
    largest_shard: int = 0
    largest_row_group: int = 0
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # {config: {split: rows}}


def check_names(root: Path) -> None:
    data = root / "data"
    if not data.is_dir():
        raise PublishError(f"{root}: no data/ folder (not a hub-layout dataset)")
    for path in sorted(data.rglob("*")):
        hidden = any(part.startswith(".") for part in path.relative_to(data).parts)
        if path.is_file() and not hidden and not SHARD_NAME.match(path.name):
            raise PublishError(f"{path}: stray file in data/ (expected <split>-NNNNN-of-MMMMM.parquet)")
    try:
        check_shard_sets(layout(root))
    except DatasetError as error:
        raise PublishError(str(error)) from None


@dataclass
class ShardCheck:
    """What one shard holds, from a worker: the parent merges these and looks for ids repeated across shards."""

    path: Path
    source: str
    split: str
    size: int
    rows: int = 0
    frames: int = 0
    largest_row_group: int = 0
    sample_ids: list[str] = field(default_factory=list)


def check_shard(source: str, split: str, path: Path, decode: bool = True) -> ShardCheck:
    """Schema, sizes, sources, ids unique in the shard, and (with `decode`) every frame's pixels."""
    from PIL import Image

    import datasets

    where = str(path)  # the full path: the one-line error must name the file unambiguously
    try:
        parquet = pq.ParquetFile(path)
        features = datasets.Features.from_arrow_schema(parquet.schema_arrow)
    except Exception as error:  # a damaged file raises ArrowInvalid, OSError, ... depending on where
        raise PublishError(f"{where}: not a readable parquet file ({type(error).__name__}: {error})") from None
    if features != FEATURES:
        theirs, ours = set(features), set(FEATURES)
        diff = sorted(theirs ^ ours) or sorted(k for k in ours if features[k] != FEATURES[k])
        raise PublishError(f"{where}: schema differs from the episode features (columns: {', '.join(diff)})")
    result = ShardCheck(path, source, split, path.stat().st_size)
    if result.size > MAX_SHARD_BYTES:
        raise PublishError(f"{where}: {result.size / 1024**2:.0f} MB shard exceeds {MAX_SHARD_BYTES / 1024**2:.0f} MB")
    for group in range(parquet.num_row_groups):
        group_bytes = parquet.metadata.row_group(group).total_byte_size
        result.largest_row_group = max(result.largest_row_group, group_bytes)
        if group_bytes > MAX_ROW_GROUP_BYTES:
            raise PublishError(
                f"{where}: row group {group} holds {group_bytes / 1024**2:.0f} MiB uncompressed, over the dataset "
                f"viewer's {MAX_ROW_GROUP_BYTES / 1024**2:.0f} MiB"
            )
        columns = ["sample_id", "source", "frames"] if decode else ["sample_id", "source"]
        try:
            table = parquet.read_row_group(group, columns=columns)
        except Exception as error:
            raise PublishError(f"{where}: row group {group} does not read ({type(error).__name__}: {error})") from None
        for row in table.to_pylist():
            sample = row["sample_id"]
            if not is_safe_id(sample):  # ids become file names downstream (caches, part files)
                raise PublishError(f"{where}: sample {sample!r}: field 'sample_id': only {SAFE_ID_RULE}")
            if row["source"] != source:
                raise PublishError(f"{where}: sample {sample!r} has source {row['source']!r} in folder data/{source}")
            for index, frame in enumerate(row.get("frames") or []):
                try:
                    with Image.open(io.BytesIO(frame["bytes"] or b"")) as image:
                        image.load()  # decodes the pixels: catches truncated files that verify() lets through
                except Exception as error:
                    raise PublishError(f"{where}: sample {sample!r} frame {index} does not decode ({error})") from None
                result.frames += 1
            result.sample_ids.append(sample)
            result.rows += 1
    return result


def check_card(root: Path | str, report: CheckReport) -> None:
    root = Path(root)
    try:
        stated = card_split_counts(root)
        stated_configs = card_configs_of(root)
    except CardError as error:
        raise PublishError(str(error)) from None
    if stated_configs != card_configs(root):
        raise PublishError(f"{root / 'README.md'}: the card's configs do not match the shards on disk (re-render it)")
    on_disk = {c: {s: n.rows for s, n in splits.items()} for c, splits in config_counts(root).items()}
    for config in sorted(set(on_disk) | set(stated)):
        for split in sorted(set(on_disk.get(config, {})) | set(stated.get(config, {}))):
            disk, card = on_disk.get(config, {}).get(split), stated.get(config, {}).get(split)
            if disk != card:
                raise PublishError(
                    f"{root / 'README.md'}: config {config!r} split {split!r} says {card} rows, the shards hold {disk}"
                )
    report.counts = on_disk


def check_data(root: Path | str, check_images: bool = True, num_proc: int = 1) -> CheckReport:
    """The shards: names, schema, sizes, ids, and (with `check_images`) every frame decodes; `num_proc` workers."""
    root = Path(root)
    check_names(root)
    on_disk = layout(root)
    if not on_disk:
        raise PublishError(f"{root}: no shards under data/")
    jobs = [(source, split, path) for source, splits in on_disk.items() for split, ps in splits.items() for path in ps]
    report = CheckReport()
    # `full` concatenates test and excluded, so ids are unique across both; train is its own namespace.
    seen: dict[str, dict[str, Path]] = {"pool": {}, "train": {}}
    with tqdm(total=len(jobs), desc="check shards", unit="shard") as bar:
        for result in _run(jobs, check_images, num_proc):
            namespace = seen["train" if result.split == "train" else "pool"]
            for sample in result.sample_ids:
                if sample in namespace:
                    raise PublishError(f"{result.path}: sample {sample!r} is also in {namespace[sample]}")
                namespace[sample] = result.path
            report.shards += 1
            report.rows += result.rows
            report.frames += result.frames
            report.bytes += result.size
            report.largest_shard = max(report.largest_shard, result.size)
            report.largest_row_group = max(report.largest_row_group, result.largest_row_group)
            bar.update(1)
    return report


def _run(jobs: list[tuple[str, str, Path]], decode: bool, num_proc: int) -> Iterator[ShardCheck]:
    if num_proc <= 1 or len(jobs) <= 1:
        for source, split, path in jobs:
            yield check_shard(source, split, path, decode)
        return
    with ProcessPoolExecutor(max_workers=num_proc) as pool:
        # In order, so the first problem reported does not depend on scheduling.
        yield from pool.map(check_shard, *zip(*jobs), [decode] * len(jobs))


def check_folder(root: Path | str, check_images: bool = True, num_proc: int = 1) -> CheckReport:
    """Raise `PublishError` on the first problem of the shards or the card; return what was checked."""
    report = check_data(root, check_images, num_proc)
    check_card(root, report)
    return report
