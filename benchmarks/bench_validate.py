"""Cost of the checks every stage runs before it reads episodes (`proactivebench.integrity.verify_folder`):
the card against the shards, every shard readable, every row against the schema's rules, unique sample ids.

Default: 7,557 synthetic episodes (the paper's filtered size): the imported sample release's test episodes
repeated with fresh sample ids (`bench_eval.build_dataset`). Prints the wall time of the check beside the
time to merely read the same columns, and beside reading the frames' bytes too (what the check skips).

    .venv/bin/python benchmarks/bench_validate.py [--episodes 7557] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_eval import build_dataset  # noqa: E402


def best_of(repeat: int, call) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=7557)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import pyarrow.parquet as pq

    from proactivebench.integrity import check_frame_bytes, verify_folder
    from proactivebench.store import count_rows, layout, load_episodes

    with tempfile.TemporaryDirectory() as tmp:
        root = build_dataset(Path(tmp), args.episodes)
        rows = sum(n for splits in count_rows(root).values() for n in splits.values())
        files = [p for splits in layout(root).values() for ps in splits.values() for p in ps]
        size = sum(p.stat().st_size for p in files)
        check = best_of(args.repeat, lambda: verify_folder(root))
        columns = [c for c in pq.read_schema(files[0]).names if c != "frames"] + ["frames.list.element.path"]
        read = best_of(args.repeat, lambda: [pq.ParquetFile(p).read(columns=columns) for p in files])
        whole = best_of(args.repeat, lambda: [pq.read_table(p) for p in files])
        with_frames = best_of(args.repeat, lambda: verify_folder(root, frames=True))
        os.environ["HF_DATASETS_CACHE"] = str(Path(tmp) / "cache")
        loaded = load_episodes(str(root), "test")  # once: builds the Arrow cache
        frames = best_of(args.repeat, lambda: check_frame_bytes(loaded.data.table, "bench"))
        load = best_of(args.repeat, lambda: load_episodes(str(root), "test"))
    print(f"{rows} episodes in {len(files)} shards ({size / 1024**2:.1f} MB), best of {args.repeat}:")
    print(f"  verify_folder (card, shards, every row, ids): {check:.3f} s  ({1e6 * check / rows:.0f} us/episode)")
    print(f"  reading the checked columns alone:            {read:.3f} s")
    print(f"  reading whole rows (frames' bytes included):  {whole:.3f} s")
    print(f"  verify_folder(frames=True) (first-turn, filter: + every frame's bytes read, header checked): "
          f"{with_frames:.3f} s")
    print(f"  check_frame_bytes on the loaded test split ({len(loaded)} episodes, eval's check): {frames:.3f} s "
          f"of load_episodes' {load:.3f} s")


if __name__ == "__main__":
    main()
