"""`sample-data`: a small sample of every raw source in its exact native layout, for tests and the demo.

`OUT/<source>/` holds what the source's download unpacks to, so `build SOURCE --raw-dir OUT/<source>` works.
Each source writes its own sample (`RawSource.write_sample`); this module only loops, atomically per source.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from tqdm.auto import tqdm

from proactivebench.builders.build_runner import get_raw_source

DEFAULT_PER_SOURCE = 4


def write_sample_data(
    out: Path | str, sources: list[str] | None = None, per_source: int = DEFAULT_PER_SOURCE, seed: int = 0,
    progress: bool = True,
) -> dict[str, Path]:
    """Write `out/<source>/` for each source (all registered ones by default); returns {source: folder}."""
    from proactivebench.builders.raw import RAW_SOURCES

    if per_source < 1:
        raise ValueError(f"--per-source must be at least 1, got {per_source}")
    get_raw_source("rod")  # imports the registry
    names = list(sources) if sources else sorted(RAW_SOURCES)
    for name in names:
        get_raw_source(name)  # a clear error for a source without a builder
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in tqdm(names, desc="sample-data", unit="source", disable=not progress):
        # Written beside, then swapped in: an interrupted run never leaves a half sample.
        scratch = out / f".{name}.{uuid.uuid4().hex[:8]}"
        scratch.mkdir()
        try:
            get_raw_source(name).write_sample(scratch, per_source, seed)
            target = out / name
            if target.exists():
                shutil.rmtree(target)
            scratch.rename(target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        written[name] = target
    return written
