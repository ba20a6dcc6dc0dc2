"""The hub layout, used at every stage: `<dir>/data/<source>/<split>-NNNNN-of-MMMMM.parquet` + a README with configs.

Rows are encoded with the episode `Features` and streamed into parquet shards, so memory stays flat with the
number of rows. A split is written into a staging folder and swapped in only when complete: a failed write
leaves the previous folder as it was. Every write goes through `safe_files` (atomic files, staging, the output
manifest): a file this tool did not write is never replaced or deleted.
"""

from __future__ import annotations

import bisect
import itertools
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from .safe_files import OutputError, OutputFolder, atomic_write_json, atomic_write_text, scratch_dir  # noqa: F401
from .schema import FEATURES, SPLITS, EpisodeRecord
from .sources import SOURCE_NAMES

MAX_SHARD_BYTES = 400 * 1024**2  # the Hub recommends shards under 500 MB
ROW_GROUP_BYTES = 64 * 1024**2  # keeps the dataset viewer's row groups small
ROW_GROUP_ROWS = 100
SHARD_NAME = re.compile(r"^(?P<split>[a-z_]+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.parquet$")
CARD_FRONT_MATTER = re.compile(r"^---\n.*?\n---\n?", re.S)


class StoreError(ValueError):
    """A hub-layout folder that cannot be read or written as asked."""


def one_line(error: BaseException) -> str:
    """An exception as one printable line (pyarrow's messages span lines and may carry control bytes)."""
    text = "; ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return f"{type(error).__name__}: " + "".join(c if c.isprintable() else "?" for c in text)


@dataclass
class SplitWriteResult:
    source: str
    split: str
    rows: int
    files: list[Path] = field(default_factory=list)
    bytes: int = 0


def shard_dir(root: Path, source: str) -> Path:
    return Path(root) / "data" / source


def split_files(root: Path | str, source: str, split: str) -> list[Path]:
    folder = shard_dir(Path(root), source)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if (m := SHARD_NAME.match(p.name)) and m["split"] == split)


def layout(root: Path | str) -> dict[str, dict[str, list[Path]]]:
    """{source: {split: [files]}} for what is on disk."""
    result: dict[str, dict[str, list[Path]]] = {}
    data = Path(root) / "data"
    if not data.is_dir():
        return result
    for folder in sorted(data.iterdir()):
        if not folder.is_dir() or folder.name.startswith("."):
            continue
        for path in sorted(folder.iterdir()):
            match = SHARD_NAME.match(path.name)
            if match:
                result.setdefault(folder.name, {}).setdefault(match["split"], []).append(path)
    return result


def _as_row(item: EpisodeRecord | Mapping[str, Any]) -> Mapping[str, Any]:
    return item.to_row() if isinstance(item, EpisodeRecord) else item


_IMAGE = FEATURES["frames"].feature


def _encode_frame(frame: Any) -> dict:
    """A frame that carries its bytes keeps them. `datasets.Image.encode_example` stores the path alone whenever
    the frame's name is a file under the current directory (a build run from inside its raw folder lost every
    image that way); it still encodes every other kind of frame (PIL images, arrays, paths)."""
    if isinstance(frame, Mapping) and frame.get("bytes") is not None:
        return {"bytes": frame["bytes"], "path": frame.get("path")}
    return _IMAGE.encode_example(frame)


class _ShardWriter:
    """Rolls parquet files at a byte budget and flushes row groups at a byte or row budget."""

    def __init__(self, folder: Path, split: str, max_shard_bytes: int, row_group_bytes: int, row_group_rows: int):
        self.folder, self.split = folder, split
        self.max_shard_bytes, self.row_group_bytes, self.row_group_rows = max_shard_bytes, row_group_bytes, row_group_rows
        self.schema = FEATURES.arrow_schema
        self.paths: list[Path] = []
        self.writer: pq.ParquetWriter | None = None
        self.shard_bytes = 0
        self.buffer: list[dict] = []
        self.buffer_bytes = 0
        self.rows = 0

    def add(self, row: Mapping[str, Any]) -> None:
        row = dict(row)
        frames = row.pop("frames", None)
        encoded = FEATURES.encode_example(row)
        if frames is not None:
            encoded["frames"] = [_encode_frame(frame) for frame in frames]
        self.buffer.append(encoded)
        self.buffer_bytes += sum(len(f.get("bytes") or b"") for f in encoded["frames"]) + 1024
        self.rows += 1
        if self.buffer_bytes >= self.row_group_bytes or len(self.buffer) >= self.row_group_rows:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        if self.writer is not None and self.shard_bytes + self.buffer_bytes > self.max_shard_bytes:
            self.writer.close()
            self.writer = None
        if self.writer is None:
            path = self.folder / f"{self.split}-{len(self.paths):05d}.partial"
            self.paths.append(path)
            self.writer = pq.ParquetWriter(path, self.schema, compression="zstd")
            self.shard_bytes = 0
        rows, self.buffer = self.buffer, []
        table = pa.Table.from_pylist(rows, schema=self.schema)
        del rows  # Arrow holds its own copy of the bytes now: release ours before the writer compresses them
        self.writer.write_table(table, row_group_size=table.num_rows)
        self.shard_bytes += self.buffer_bytes
        self.buffer_bytes = 0

    def close(self) -> list[Path]:
        self.flush()
        if self.writer is not None:
            self.writer.close()
        # An empty split gets no file: the Hub's parquet reader rejects empty row groups.
        final = []
        for i, path in enumerate(self.paths):
            target = self.folder / f"{self.split}-{i:05d}-of-{len(self.paths):05d}.parquet"
            path.rename(target)
            final.append(target)
        return final


def _check_target(source: str, split: str) -> None:
    if source not in SOURCE_NAMES:
        raise StoreError(f"unknown source {source!r}")
    if split not in SPLITS:
        raise StoreError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")


def write_split(
    root: Path | str,
    source: str,
    split: str,
    rows: Iterable[EpisodeRecord | Mapping[str, Any]],
    *,
    max_shard_bytes: int = MAX_SHARD_BYTES,
    row_group_bytes: int = ROW_GROUP_BYTES,
    row_group_rows: int = ROW_GROUP_ROWS,
    render_card: bool = True,
) -> SplitWriteResult:
    """Write one (source, split) of a hub-layout folder atomically, replacing what was there."""
    _check_target(source, split)
    with StagedOutput(root, render_card=render_card) as staged:
        result = staged.write_split(
            source, split, rows, max_shard_bytes=max_shard_bytes, row_group_bytes=row_group_bytes,
            row_group_rows=row_group_rows,
        )
    files = split_files(root, source, split)
    return SplitWriteResult(source, split, result.rows, files, sum(p.stat().st_size for p in files))


def _swap_in(output: OutputFolder, source: str, splits: set[str], replacement: Path, scratch: Path) -> None:
    """Replace `splits` of a source by the shards in `replacement`: every other entry of the source folder (other
    splits' shards, a user's own file) is hard-linked beside them, then two renames swap the folders."""
    current = shard_dir(output.root, source)
    new_names = {p.name for p in replacement.iterdir()}
    replaced: list[Path] = []
    if current.is_dir():
        for path in current.iterdir():
            match = SHARD_NAME.match(path.name)
            if match and match["split"] in splits:
                replaced.append(path)
            elif path.is_dir() and not path.is_symlink():
                raise OutputError(f"{path}: a folder proactivebench did not write inside data/{source}/: move it away")
        output.check_replaceable(replaced)
        for path in current.iterdir():
            if path not in replaced:
                os.link(path, replacement / path.name, follow_symlinks=False)
    if current.is_dir():
        current.rename(scratch / f"old-{source}")
    current.parent.mkdir(parents=True, exist_ok=True)
    replacement.rename(current)
    output.record(added=[current / n for n in new_names], removed=[p for p in replaced if p.name not in new_names])


class StagedOutput:
    """A scratch hub folder that replaces its splits in `target` only when the whole job succeeded.

    Used by every command that writes episodes: any error leaves `target` untouched. `target` must be new, empty
    or written by this tool before (`safe_files.OutputFolder`); a split replaces only the shards this tool wrote,
    and any other file in the folder is kept.
    """

    def __init__(
        self, target: Path | str, *, flag: str = "--out", inputs: Mapping[str, Path | str | None] | None = None,
        render_card: bool = True,
    ):
        self.target = Path(target)
        self.flag, self.inputs, self.render_card = flag, inputs or {}, render_card
        self.root: Path | None = None
        self.output: OutputFolder | None = None
        self.splits: dict[str, set[str]] = {}
        self.created: list[Path] = []  # folders this job made, innermost first: a failed job removes them again

    def __enter__(self) -> "StagedOutput":
        folder = self.target.absolute()
        while not folder.exists():
            self.created.append(folder)
            folder = folder.parent
        self.output = OutputFolder.claim(self.target, self.flag, self.inputs, inside_ok=True)
        if self.render_card:  # refused before any work, not after
            self.output.check_replaceable([self.target / "README.md"])
        self.root = scratch_dir(self.target, "out")
        return self

    def write_split(
        self, source: str, split: str, rows: Iterable, *, max_shard_bytes: int = MAX_SHARD_BYTES,
        row_group_bytes: int = ROW_GROUP_BYTES, row_group_rows: int = ROW_GROUP_ROWS, render_card: bool = False,
    ) -> SplitWriteResult:
        """Stream `rows` into the scratch folder's shards of (source, split); they replace the target's on exit."""
        _check_target(source, split)
        if split in self.splits.get(source, set()):
            raise StoreError(f"{source}/{split} written twice in one output")
        folder = shard_dir(self.root, source)
        folder.mkdir(parents=True, exist_ok=True)
        writer = _ShardWriter(folder, split, max_shard_bytes, row_group_bytes, row_group_rows)
        for item in rows:
            writer.add(_as_row(item))
        files = writer.close()
        self.splits.setdefault(source, set()).add(split)
        return SplitWriteResult(source, split, writer.rows, files, sum(p.stat().st_size for p in files))

    def __exit__(self, kind, error, traceback) -> None:
        try:
            if kind is None:
                for source, splits in self.splits.items():
                    _swap_in(self.output, source, splits, shard_dir(self.root, source), self.root)
                if self.render_card:
                    write_card(self.target)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            if kind is not None:
                self.output.undo_claim()
                for folder in self.created:  # no new empty folder left behind where there was none
                    if not folder.exists():  # undo_claim removed it already
                        continue
                    try:
                        folder.rmdir()
                    except OSError:  # not empty (something else wrote there) or already gone
                        break


# --- the card's configs -------------------------------------------------------------------------------------


def card_configs(root: Path | str) -> list[dict]:
    """Configs for what is on disk: `default` (every source), one per source, each with a `full` split."""
    on_disk = layout(root)
    if not on_disk:
        return []

    def data_files(pattern_source: str, splits: set[str]) -> list[dict]:
        entries = []
        for split in [s for s in SPLITS if s in splits]:
            entries.append({"split": split, "path": f"data/{pattern_source}/{split}-*.parquet"})
        # `full` wherever there is a pool, also when the filter kept (or removed) a whole source, e.g. ROD 88 -> 88:
        # only existing splits are listed, since a pattern that matches no file fails `load_dataset`.
        pool = [s for s in ("test", "excluded") if s in splits]
        if pool:
            entries.append({"split": "full", "path": [f"data/{pattern_source}/{s}-*.parquet" for s in pool]})
        return entries

    all_splits = {split for splits in on_disk.values() for split in splits}
    configs = [{"config_name": "default", "default": True, "data_files": data_files("*", all_splits)}]
    for source in [s for s in SOURCE_NAMES if s in on_disk]:
        configs.append({"config_name": source, "data_files": data_files(source, set(on_disk[source]))})
    # `load_dataset(dir, "full")`: the pre-filter pool of every source as one split (same files as default/full).
    if "test" in all_splits and "excluded" in all_splits:
        configs.append({"config_name": "full", "data_files": [e for e in data_files("*", all_splits) if e["split"] == "full"]})
    return configs


def write_card(root: Path | str, body: str | None = None) -> Path:
    """(Re)write README.md's YAML configs, keeping an existing card body unless a new one is given."""
    root = Path(root)
    path = root / "README.md"
    if body is None:
        body = CARD_FRONT_MATTER.sub("", _read_card(path)) if path.exists() else default_card_body()
    front = yaml.safe_dump({"configs": card_configs(root)}, sort_keys=False, allow_unicode=True)
    return OutputFolder(root).write_text("README.md", f"---\n{front}---\n{body}")


def _read_card(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise StoreError(f"{path}: unreadable dataset card ({error})") from None


def read_card_metadata(root: Path | str) -> dict:
    """The card's YAML front matter; a broken one is a one-line StoreError naming the file."""
    path = Path(root) / "README.md"
    if not path.exists():
        return {}
    match = CARD_FRONT_MATTER.match(_read_card(path))
    if not match:
        return {}
    try:
        value = yaml.safe_load(match.group(0).strip("-\n"))
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" at line {where.line + 2}" if where is not None else ""
        reason = getattr(error, "problem", None) or type(error).__name__
        raise StoreError(f"{path}: broken YAML front matter{line} ({reason})") from None
    if value is None:
        return {}
    if not isinstance(value, dict) or not isinstance(value.get("configs", []), list):
        raise StoreError(f"{path}: YAML front matter is not a mapping with a `configs` list")
    return value


def default_card_body() -> str:
    return (
        "\n# ProactiveBench episodes\n\nBuilt with `proactivebench`. Load with "
        "`datasets.load_dataset(<this folder>)` or `load_dataset(<this folder>, \"<source>\")`.\n"
    )


# --- reading ------------------------------------------------------------------------------------------------


def load(root: Path | str, source: str | None = None, split: str = "test", **kwargs):
    """A split of a hub-layout folder or a Hub repo id as a `datasets.Dataset`.

    A local folder is read through its card's `data_files` resolved to the files on disk: `load_dataset(folder)`
    caches by folder name and card patterns, so a folder rebuilt in place could come back with its old rows.
    """
    import datasets

    config = source or "default"
    if not Path(root).is_dir():
        if str(root).startswith((".", "/", "~")) or str(root).count("/") > 1:
            raise FileNotFoundError(f"no such dataset folder: {root}")
        try:
            return datasets.load_dataset(str(root), config, split=split, **kwargs)
        except ConnectionError as error:  # offline, or the Hub unreachable: one line, not a traceback
            raise ValueError(f"cannot reach dataset {str(root)!r} on the Hub: {error}") from None
    files = config_files(root, config, split)
    kwargs = {"features": FEATURES, **kwargs}  # a caller may pass its own (e.g. `undecoded_features()`)
    return datasets.load_dataset("parquet", data_files={split: [str(p) for p in files]}, split=split, **kwargs)


def config_files(root: Path | str, config: str, split: str) -> list[Path]:
    """The parquet files behind one (config, split) of a local folder, per its card."""
    root = Path(root)
    try:
        configs = {c["config_name"]: c for c in read_card_metadata(root).get("configs", [])}
        entries = {e["split"]: e["path"] for e in configs[config]["data_files"]} if config in configs else {}
    except (KeyError, TypeError) as error:
        raise StoreError(f"{root / 'README.md'}: malformed `configs` in the front matter (field {error})") from None
    if config not in configs:
        raise StoreError(f"{root}: no config {config!r} in README.md (have: {', '.join(configs) or 'none'})")
    if split not in entries:
        raise StoreError(f"{root}: config {config!r} has no split {split!r} (have: {', '.join(entries)})")
    patterns = entries[split] if isinstance(entries[split], list) else [entries[split]]
    if not all(isinstance(p, str) and p and not Path(p).is_absolute() and ".." not in Path(p).parts for p in patterns):
        raise StoreError(f"{root / 'README.md'}: config {config!r} split {split!r}: data_files must be relative patterns")
    files = sorted({p for pattern in patterns for p in root.glob(pattern)})
    if not files:
        raise StoreError(f"{root}: no files for config {config!r} split {split!r}")
    return files


def iter_rows(root: Path | str, sources: Iterable[str] | None = None, split: str = "test") -> Iterator[dict]:
    """Rows straight from the parquet files, frames undecoded ({bytes, path}); memory stays at one row group.
    Stages check the folder first (`integrity.verify_folder`); a shard damaged where that check does not read
    (the frames' bytes) still stops here in one line naming the file."""
    on_disk = layout(root)
    wanted = list(sources) if sources else [s for s in SOURCE_NAMES if s in on_disk]
    for source in wanted:
        for path in on_disk.get(source, {}).get(split, []):
            try:
                parquet = pq.ParquetFile(path)
            except Exception as error:  # noqa: BLE001 - truncation and corruption raise several pyarrow/OS errors
                raise StoreError(f"{path}: not a readable parquet file ({one_line(error)})") from None
            for group in range(parquet.num_row_groups):
                try:
                    table = parquet.read_row_group(group)
                except Exception as error:  # noqa: BLE001
                    raise StoreError(f"{path}: row group {group} does not read ({one_line(error)})") from None
                yield from table.to_pylist()


def undecoded_features():
    """The episode features with the frames left encoded ({bytes, path}): the same Arrow storage as `FEATURES`."""
    import datasets

    return datasets.Features({**FEATURES, "frames": datasets.List(datasets.Image(decode=False))})


def _shard_of_row(files: Sequence[str]):
    """Row number of the loaded split -> the shard file it came from (row counts from the parquet footers)."""
    ends = list(itertools.accumulate(pq.ParquetFile(f).metadata.num_rows for f in files))
    return lambda row: files[bisect.bisect_right(ends, row)]


def load_episodes(
    dataset: Path | str, split: str = "test", sources: Sequence[str] | None = None, revision: str | None = None
):
    """The one way a stage loads episodes as a `datasets.Dataset`: a hub-layout folder or a Hub repo id, checked
    whole and row by row first (`integrity`), frames left undecoded (a stage decodes only the frames it shows).

    A local folder is read from its shards themselves: `load_dataset(folder)` caches by folder name and card
    patterns, so a folder rebuilt in place could come back with its old rows.
    """
    import datasets

    from .integrity import DatasetError, IdRegistry, check_frame_bytes, check_table, verify_folder

    which = f" for {', '.join(sources)}" if sources else ""
    # Frames undecoded from the start, not `cast_column` afterwards: that cast is a `map` whose batches of 1,000
    # rows concatenate their frames into one Arrow binary array, past 2 GiB at the paper's scale with 640x480
    # photographs ("offset overflow while concatenating arrays"). Same storage, so this needs no pass at all.
    features = undecoded_features()
    if Path(dataset).is_dir():
        chosen = verify_folder(dataset, [split], sources)
        order = list(sources) if sources else sorted(chosen)
        files = [str(p) for source in order for p in chosen.get(source, {}).get(split, [])]
        if not files:
            raise DatasetError(f"{dataset}: no {split!r} split{which}")
        try:
            table = datasets.load_dataset("parquet", data_files={split: files}, features=features, split=split)
        except datasets.exceptions.DatasetGenerationError:
            raise DatasetError(_unreadable(files) or f"{dataset}: the {split!r} shards do not read") from None
        check_frame_bytes(table.data.table, _shard_of_row(files))
        return table
    kwargs = {"features": features, **({"revision": revision} if revision else {})}
    try:  # per-source configs when sources are named: only their shards are downloaded
        tables = [load(str(dataset), source, split=split, **kwargs) for source in (sources or [None])]
    except (FileNotFoundError, ValueError, datasets.exceptions.DatasetNotFoundError) as error:
        raise DatasetError(f"cannot load dataset {str(dataset)!r} split {split!r}: {error}") from None
    table = tables[0] if len(tables) == 1 else datasets.concatenate_datasets(tables)  # no copy: chunks side by side
    ids = IdRegistry()
    where = f"{dataset} ({split})"
    ids.add(split, check_table(table.data.table, where), where)
    check_frame_bytes(table.data.table, where)
    if len(table) == 0:
        raise DatasetError(f"{dataset}: the {split!r} split has no episodes{which}")
    return table


def _unreadable(files: list[str]) -> str | None:
    """The first shard that does not read whole, as a one-line reason (only on the failure path: it reads all)."""
    for path in files:
        try:
            pq.read_table(path)
        except Exception as error:  # noqa: BLE001
            return f"{path}: not a readable parquet file ({one_line(error)})"
    return None


def count_rows(root: Path | str) -> dict[str, dict[str, int]]:
    return {
        source: {split: sum(pq.ParquetFile(p).metadata.num_rows for p in files) for split, files in splits.items()}
        for source, splits in layout(root).items()
    }
