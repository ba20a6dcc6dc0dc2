"""`sample-data`: a small sample of every raw source in its exact native layout, for tests and the demo.

`OUT/<source>/` holds what the source's download unpacks to, so `build SOURCE --raw-dir OUT/<source>` works.
Each source writes its own sample (`RawSource.write_sample`); this module only loops, atomically per source.
"""

from __future__ import annotations

from pathlib import Path

from tqdm.auto import tqdm

from proactivebench.safe_files import OutputFolder, replace_dir, staged_dir, tree_files

from proactivebench.builders.build_runner import get_raw_source, raw_source_names

DEFAULT_PER_SOURCE = 4


def write_sample_data(
    out: Path | str, sources: list[str] | None = None, per_source: int = DEFAULT_PER_SOURCE, seed: int = 0,
    progress: bool = True,
) -> dict[str, Path]:
    """Write `out/<source>/` for each source (all registered ones by default); returns {source: folder}."""
    if per_source < 1:
        raise ValueError(f"--per-source must be at least 1, got {per_source}")
    names = list(sources) if sources else sorted(raw_source_names())
    for name in names:
        get_raw_source(name)  # a clear error for a source without a builder
    out = Path(out)
    output = OutputFolder.claim(out, "OUT")
    for name in names:  # a sample replaces only a sample this tool wrote: checked for all before any work
        target = out / name
        if target.exists() and not target.is_dir():
            output.check_replaceable([target])
        output.check_replaceable(tree_files(target) if target.is_dir() else [])
    written = {}
    for name in tqdm(names, desc="sample-data", unit="source", disable=not progress):
        # Written beside, then swapped in: an interrupted run never leaves a half sample.
        target = out / name
        with staged_dir(out, name) as scratch:
            get_raw_source(name).write_sample(scratch, per_source, seed)
            new = [target / p.relative_to(scratch) for p in tree_files(scratch)]
            old = tree_files(target) if target.is_dir() else [target] if target.exists() else []
            if target.exists() and not target.is_dir():
                target.unlink()
            replace_dir(scratch, target)
        output.record(added=new, removed=old)
        written[name] = target
    return written
