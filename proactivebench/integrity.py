"""What every stage checks before it reads episodes: the folder is whole and every row obeys the schema.

`verify_folder` refuses, in one line naming the source, file, sample and field:
- a source the card lists whose shards are gone, a file the card names that is not there, an incomplete shard
  set (`test-00003-of-00010.parquet` missing), card counts (`dataset_info`) that disagree with the rows on disk;
- a shard that does not open or read (truncated, corrupt) or whose schema is not the episode features;
- a row that breaks `schema.validate_row_fields` (moves to missing states, frames out of range, no answer
  reachable within `max_turns`, ...), a row filed under another source's folder, a `sample_id` seen twice.

It reads every column but the frames' bytes (their count comes from the `path` leaf alone), so it stays cheap:
see `benchmarks/bench_validate.py`. Frames whose bytes are missing or not an image are refused by
`check_frame_bytes` (their leading bytes): `store.load_episodes` runs it on the split it loaded (no second read),
`verify_folder(frames=True)` on every shard for the commands that stream rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .schema import FEATURES, SPLITS, EpisodeRecord, EpisodeValidationError
from .store import SHARD_NAME, StoreError, layout, one_line, read_card_metadata
from .sources import SOURCE_NAMES

# Every leaf but the frames' bytes: a frame's path is enough to count the frames.
_FRAME_PATH = "frames.list.element.path"
_FRAME_BYTES = "frames.list.element.bytes"
_COLUMNS = [name for name in FEATURES if name != "frames"]


class DatasetError(StoreError):
    """A dataset folder or row that no stage may read as it is; the message names the file, sample and field."""


# --- rows --------------------------------------------------------------------------------------------------------


def check_table(table: pa.Table, where: str, source: str | None = None) -> list[str]:
    """Validate every row of an Arrow table (every episode column; `frames` of any element type) and return the
    sample ids in order. `source`: the folder the rows were filed under."""
    counts = pc.list_value_length(table.column("frames")).to_pylist()
    rows = table.select([c for c in _COLUMNS if c in table.column_names]).to_pylist()
    for row, count in zip(rows, counts):
        sample = row.get("sample_id")
        try:
            row["frames"] = [{"bytes": None, "path": ""}] * (count or 0)
            record = EpisodeRecord.from_row(row)
        except (KeyError, TypeError, ValueError) as error:
            raise DatasetError(f"{where}: sample {sample!r}: unreadable row ({one_line(error)})") from None
        try:
            record.validate()
        except EpisodeValidationError as error:
            raise DatasetError(f"{where}: {error}") from None
        if source is not None and record.source != source:
            raise DatasetError(f"{where}: sample {sample!r}: field 'source': {record.source!r} in folder data/{source}")
    return [row["sample_id"] for row in rows]


# The leading bytes of every image format PIL reads that a frame may hold (builders write PNG and JPEG; sources
# ship those, WebP, GIF, BMP and TIFF).
IMAGE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")
_HEAD = 12


def _is_image_head(head: bytes | None) -> bool:
    if not head:
        return False
    return head.startswith(IMAGE_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def check_frame_bytes(table: pa.Table, where: str | Callable[[int], str]) -> None:
    """Every frame holds image bytes: one line naming the sample and frame whose bytes are missing or are not an
    image (`where`: the place, or a function of the row giving it). Only their leading bytes are read, sliced in Arrow chunk by chunk (no decode, no copy, no concatenation
    past 2 GiB); a baseline, or a model never shown that frame, would otherwise score such an episode silently."""
    first_row = 0
    for frames in table.column("frames").chunks:
        flat = frames.flatten()  # this chunk's frames, in row order
        heads = pc.binary_slice(flat.field("bytes"), 0, _HEAD).to_pylist() if len(flat) else []
        bad = next((i for i, head in enumerate(heads) if not _is_image_head(head)), None)
        if bad is not None:
            row = pc.list_parent_indices(frames)[bad].as_py()
            index = bad - (frames.offsets[row].as_py() - frames.offsets[0].as_py())
            sample = table.column("sample_id")[first_row + row].as_py()
            what = "no bytes" if not heads[bad] else f"bytes that are not an image (they start {heads[bad][:8]!r})"
            place = where(first_row + row) if callable(where) else where
            raise DatasetError(f"{place}: sample {sample!r}: field 'frames' [{index}]: {what}")
        first_row += len(frames)


def read_shard(path: Path) -> pa.Table:
    """The checkable columns of one shard; a file that does not open, read or match the features is one line."""
    try:
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
    except Exception as error:  # noqa: BLE001 - truncation and corruption surface as several pyarrow/OS errors
        raise DatasetError(f"{path}: not a readable parquet file ({one_line(error)})") from None
    import datasets

    features = datasets.Features.from_arrow_schema(schema)
    if features != FEATURES:
        theirs, ours = set(features), set(FEATURES)
        differ = sorted(theirs ^ ours) or sorted(n for n in ours if features[n] != FEATURES[n])
        raise DatasetError(f"{path}: schema differs from the episode features (columns: {', '.join(differ)})")
    try:
        return parquet.read(columns=[*_COLUMNS, _FRAME_PATH])
    except Exception as error:  # noqa: BLE001
        raise DatasetError(f"{path}: not a readable parquet file ({one_line(error)})") from None


class IdRegistry:
    """Sample ids seen so far: `test` and `excluded` form one pool (the `full` split concatenates them), `train`
    is its own namespace."""

    def __init__(self):
        self.seen: dict[str, dict[str, str]] = {}

    def add(self, split: str, ids: Iterable[str], where: str) -> None:
        namespace = self.seen.setdefault("train" if split == "train" else "pool", {})
        for sample in ids:
            if sample in namespace:
                other = namespace[sample]
                also = "twice in that file" if other == where else f"also in {other}"
                raise DatasetError(f"{where}: sample {sample!r}: field 'sample_id': {also}")
            namespace[sample] = where


# --- the folder --------------------------------------------------------------------------------------------------


def _card_patterns(metadata: Mapping) -> dict[str, dict[str, list[str]]]:
    """{config: {split: [patterns]}} as the card states them."""
    result: dict[str, dict[str, list[str]]] = {}
    for config in metadata.get("configs") or []:
        for entry in config.get("data_files") or []:
            paths = entry["path"] if isinstance(entry["path"], list) else [entry["path"]]
            result.setdefault(config["config_name"], {})[entry["split"]] = list(paths)
    return result


def stated_counts(metadata: Mapping) -> dict[str, dict[str, int]]:
    """{config: {split: num_examples}} from a card's `dataset_info`, read by the library that writes it."""
    from datasets.info import DatasetInfosDict
    from huggingface_hub import DatasetCardData

    if not metadata.get("dataset_info"):
        return {}
    infos = DatasetInfosDict.from_dataset_card_data(DatasetCardData(**metadata))
    return {c: {n: s.num_examples for n, s in (info.splits or {}).items()} for c, info in infos.items()}


def _check_card(root: Path, on_disk: dict[str, dict[str, list[Path]]], wanted: set[str], counts: bool) -> None:
    readme = root / "README.md"
    metadata = read_card_metadata(root)
    patterns = _card_patterns(metadata)
    for source in SOURCE_NAMES:
        if source in patterns and source in wanted and source not in on_disk:
            raise DatasetError(f"source {source!r}: listed by {readme} but {root / 'data' / source} holds no shards")
    rows: dict[Path, int] = {}
    for config, splits in patterns.items():
        for split, globs in splits.items():
            for pattern in globs:
                if not any(root.glob(pattern)):
                    raise DatasetError(f"{root / pattern}: named by {readme} (config {config!r}), missing")
    for config, splits in sorted(stated_counts(metadata).items() if counts else []):
        for split, stated in sorted(splits.items()):
            files = sorted({p for pattern in patterns.get(config, {}).get(split, []) for p in root.glob(pattern)})
            for path in files:
                if path not in rows:
                    rows[path] = pq.ParquetFile(path).metadata.num_rows
            disk = sum(rows[p] for p in files)
            if disk != stated:
                raise DatasetError(
                    f"{readme}: config {config!r} split {split!r} says {stated} rows, the shards hold {disk}"
                )


def check_shard_sets(on_disk: dict[str, dict[str, list[Path]]]) -> None:
    """Every `<split>-NNNNN-of-MMMMM` set complete: a missing shard is named."""
    for source, splits in on_disk.items():
        for split, files in splits.items():
            counts = {SHARD_NAME.match(p.name)["count"] for p in files}
            total = max(int(c) for c in counts)
            for index in range(total):
                expected = files[0].parent / f"{split}-{index:05d}-of-{total:05d}.parquet"
                if expected not in files:
                    raise DatasetError(f"{expected}: missing (data/{source} holds {len(files)} of {total} {split} shards)")
            if len(counts) > 1:
                stray = sorted(p.name for p in files if not p.name.endswith(f"-of-{total:05d}.parquet"))
                raise DatasetError(f"{files[0].parent / stray[0]}: not part of the {total}-shard {split} set")


def check_shard_frames(path: Path) -> None:
    """`check_frame_bytes` on one shard, one row group at a time (the writers keep them to `store.ROW_GROUP_BYTES`)."""
    parquet = pq.ParquetFile(path)
    for group in range(parquet.num_row_groups):
        check_frame_bytes(parquet.read_row_group(group, columns=["sample_id", _FRAME_BYTES]), str(path))


def verify_folder(
    root: Path | str, splits: Sequence[str] = SPLITS, sources: Sequence[str] | None = None, counts: bool = True,
    frames: bool = False,
) -> dict[str, dict[str, list[Path]]]:
    """Check a hub-layout folder as above and return {source: {split: shards}} for the sources and splits asked.
    `counts=False` skips the card's row counts (for a command that rewrites them). `frames=True` also reads every
    frame's bytes to check they are an image (`check_frame_bytes`), for commands that stream rows and never load
    the split whole (`store.load_episodes` checks a loaded split itself, without a second read)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"no such dataset folder: {root}")
    on_disk = layout(root)
    wanted = set(sources) if sources else set(SOURCE_NAMES)
    _check_card(root, on_disk, wanted, counts)
    check_shard_sets(on_disk)
    ids = IdRegistry()
    chosen: dict[str, dict[str, list[Path]]] = {}
    for source in [s for s in SOURCE_NAMES if s in on_disk and s in wanted]:
        for split in [s for s in splits if s in on_disk[source]]:
            for path in on_disk[source][split]:
                ids.add(split, check_table(read_shard(path), str(path), source), str(path))
                if frames:
                    check_shard_frames(path)
            chosen.setdefault(source, {})[split] = on_disk[source][split]
    return chosen
