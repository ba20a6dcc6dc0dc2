"""`eval` on a dataset whose frames column holds more than 2 GiB (the paper's 7,557 episodes with 640x480
photographs do): loading used to fail with Arrow's "offset overflow while concatenating arrays" (a cast of the
frames column after loading rewrote it in batches of 1,000 rows, each one Arrow binary array). The dataset is the
imported sample release's test episodes repeated (bench_eval.py), every frame replaced by one large noise PNG
stored uncompressed, so that few episodes pass 2 GiB. Needs ~3 GB of RAM and ~4 GB of scratch disk.

    .venv/bin/python benchmarks/bench_overflow.py [--episodes 70] [--side 1400]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_eval import build_dataset  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=70, help="70 x 6.6 frames x 5.9 MB = 2.7 GB of frames")
    parser.add_argument("--side", type=int, default=1400, help="noise frame side in pixels (PNG, uncompressed)")
    args = parser.parse_args()

    import numpy as np
    from PIL import Image

    from proactivebench.cli import main as cli

    buffer = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, (args.side, args.side, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buffer, format="PNG", compress_level=0)
    frame = buffer.getvalue()

    def enlarge(row: dict) -> dict:
        return {**row, "frames": [{"bytes": frame, "path": f.get("path")} for f in row["frames"]]}

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        os.environ["HF_DATASETS_CACHE"] = str(scratch / "cache")
        dataset = build_dataset(scratch, args.episodes, enlarge)
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        frames = sum(pc.sum(pc.list_value_length(pq.ParquetFile(p).read(columns=["frames.list.element.path"])
                                                 .column("frames"))).as_py() for p in dataset.rglob("*.parquet"))
        print(f"{args.episodes} episodes, {frames} frames of {len(frame) / 1e6:.1f} MB = "
              f"{frames * len(frame) / 2**30:.2f} GiB of frame bytes")
        start = time.perf_counter()
        code = cli(["eval", "--dataset", str(dataset), "--results", str(scratch / "r.duckdb"), "--no-progress",
                    "--model", "baseline:random"])
        print(f"eval exit {code} in {time.perf_counter() - start:.1f} s ({'ok' if code == 0 else 'FAILED'})")
        sys.exit(code)


if __name__ == "__main__":
    main()
