"""Checks a hub-layout folder before anything leaves the machine; `publish` refuses on the first problem.

schema of every shard = `FEATURES`; shard names complete; shard and row-group sizes within the Hub's limits;
every frame decodes; sample ids unique in the pool; the card's configs and counts equal what is on disk.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq
from tqdm.auto import tqdm

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


def _rel(root: Path, path: Path) -> str:
    return str(path)  # the full path: the one-line error must name the file unambiguously


def _check_names(root: Path) -> None:
    data = root / "data"
    if not data.is_dir():
        raise PublishError(f"{root}: no data/ folder (not a hub-layout dataset)")
    for path in sorted(data.rglob("*")):
        hidden = any(part.startswith(".") for part in path.relative_to(data).parts)
        if path.is_file() and not hidden and not SHARD_NAME.match(path.name):
            raise PublishError(f"{_rel(root, path)}: stray file in data/ (expected <split>-NNNNN-of-MMMMM.parquet)")
    for source, splits in layout(root).items():
        for split, files in splits.items():
            names = [p.name for p in files]
            expected = [f"{split}-{i:05d}-of-{len(files):05d}.parquet" for i in range(len(files))]
            if names != expected:
                raise PublishError(f"data/{source}: {split} shards {names} are not a complete {split}-*-of-{len(files):05d} set")


def _check_shard(
    root: Path, source: str, path: Path, report: CheckReport, seen: dict[str, str], decode: bool, bar
) -> None:
    from PIL import Image

    import datasets

    where = _rel(root, path)
    try:
        parquet = pq.ParquetFile(path)
        features = datasets.Features.from_arrow_schema(parquet.schema_arrow)
    except Exception as error:  # a damaged file raises ArrowInvalid, OSError, ... depending on where
        raise PublishError(f"{where}: not a readable parquet file ({type(error).__name__}: {error})") from None
    if features != FEATURES:
        theirs, ours = set(features), set(FEATURES)
        diff = sorted(theirs ^ ours) or sorted(k for k in ours if features[k] != FEATURES[k])
        raise PublishError(f"{where}: schema differs from the episode features (columns: {', '.join(diff)})")
    size = path.stat().st_size
    if size > MAX_SHARD_BYTES:
        raise PublishError(f"{where}: {size / 1024**2:.0f} MB shard exceeds {MAX_SHARD_BYTES / 1024**2:.0f} MB")
    report.shards += 1
    report.bytes += size
    report.largest_shard = max(report.largest_shard, size)
    for group in range(parquet.num_row_groups):
        group_bytes = parquet.metadata.row_group(group).total_byte_size
        report.largest_row_group = max(report.largest_row_group, group_bytes)
        if group_bytes > MAX_ROW_GROUP_BYTES:
            raise PublishError(
                f"{where}: row group {group} holds {group_bytes / 1024**2:.0f} MiB uncompressed, over the dataset "
                f"viewer's {MAX_ROW_GROUP_BYTES / 1024**2:.0f} MiB"
            )
        try:
            table = parquet.read_row_group(group, columns=["sample_id", "source", "frames"])
        except Exception as error:
            raise PublishError(f"{where}: row group {group} does not read ({type(error).__name__}: {error})") from None
        for row in table.to_pylist():
            sample = row["sample_id"]
            if row["source"] != source:
                raise PublishError(f"{where}: sample {sample!r} has source {row['source']!r} in folder data/{source}")
            if sample in seen:
                raise PublishError(f"{where}: sample {sample!r} is also in {seen[sample]}")
            seen[sample] = where
            for index, frame in enumerate(row["frames"] if decode else []):
                try:
                    with Image.open(io.BytesIO(frame["bytes"] or b"")) as image:
                        image.load()  # decodes the pixels: catches truncated files that verify() lets through
                except Exception as error:
                    raise PublishError(f"{where}: sample {sample!r} frame {index} does not decode ({error})") from None
                report.frames += 1
            report.rows += 1
            bar.update(1)


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


def check_data(root: Path | str, check_images: bool = True) -> CheckReport:
    """The shards: names, schema, sizes, ids, and (with `check_images`) every frame decodes."""
    root = Path(root)
    _check_names(root)
    on_disk = layout(root)
    if not on_disk:
        raise PublishError(f"{root}: no shards under data/")
    report = CheckReport()
    # `full` concatenates test and excluded, so ids are unique across both; train is its own namespace.
    seen: dict[str, dict[str, str]] = {"pool": {}, "train": {}}
    with tqdm(desc="check", unit="row") as bar:
        for source, splits in on_disk.items():
            for split, paths in splits.items():
                for path in paths:
                    namespace = seen["train" if split == "train" else "pool"]
                    _check_shard(root, source, path, report, namespace, check_images, bar)
    return report


def check_folder(root: Path | str, check_images: bool = True) -> CheckReport:
    """Raise `PublishError` on the first problem of the shards or the card; return what was checked."""
    report = check_data(root, check_images)
    check_card(root, report)
    return report
