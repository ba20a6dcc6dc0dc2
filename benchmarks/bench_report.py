"""Size and build time of `report --html` for a results file of N episodes per run (default 7,557, the paper's
filtered benchmark), and how long Debian's chromium takes to load and render the page.

The dataset is the imported sample release's test episodes repeated with fresh sample ids (bench_eval.py), its
frames enlarged to --frame-size with photo-like noise (bench_build.py) so thumbnails cost what real photographs
cost; the runs are baselines evaluated by the real eval runner (random and always-proactive in MCQA, the oracle in
reference mode).

    .venv/bin/python benchmarks/bench_report.py [--episodes 7557] [--frame-size 320 240] [--trajectories 10]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_build import enlarge_image  # noqa: E402
from bench_eval import build_dataset  # noqa: E402

RUNS = (["--model", "baseline:random"], ["--model", "baseline:always-proactive"],
        ["--model", "baseline:oracle", "--mode", "reference"])
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def enlarged(size: tuple[int, int]):
    def transform(row: dict) -> dict:
        frames = [{"bytes": enlarge_image(f["bytes"], size), "path": f.get("path")} for f in row["frames"]]
        return {**row, "frames": frames}
    return transform


def render_seconds(page: Path, scratch: Path) -> float | None:
    chromium = shutil.which("chromium")
    if not chromium:
        return None
    profile = Path(tempfile.mkdtemp(dir=scratch))
    start = time.perf_counter()
    subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
                   capture_output=True, timeout=300, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=7557)
    parser.add_argument("--frame-size", type=int, nargs=2, default=(320, 240), metavar=("W", "H"))
    parser.add_argument("--trajectories", type=int, default=10, help="report --trajectories (per source)")
    args = parser.parse_args()

    from proactivebench.cli import main as cli

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        os.environ["HF_DATASETS_CACHE"] = str(scratch / "cache")
        start = time.perf_counter()
        dataset = build_dataset(scratch, args.episodes, enlarged(tuple(args.frame_size)))
        results = scratch / "results.duckdb"
        for argv in RUNS:
            with contextlib.redirect_stdout(io.StringIO()):  # the per-source summaries
                assert cli(["eval", "--dataset", str(dataset), "--results", str(results), "--no-progress", *argv]) == 0
        print(f"{args.episodes} episodes x {len(RUNS)} runs evaluated in {time.perf_counter() - start:.0f} s "
              f"(frames {args.frame_size[0]}x{args.frame_size[1]})")
        print(f"{'page':<44} {'MB':>6} {'build s':>8} {'chromium s':>10}")
        for label, extra in (("tables only (--trajectories 0)", ["--trajectories", "0"]),
                             (f"trajectories {args.trajectories}/source, no --dataset",
                              ["--trajectories", str(args.trajectories)]),
                             (f"trajectories {args.trajectories}/source + frames",
                              ["--trajectories", str(args.trajectories), "--dataset", str(dataset)])):
            page = scratch / "report.html"
            start = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                code = cli(["report", "--results", str(results), "--view", "table1", "--format", "csv",
                            "--html", str(page), *extra])
            built = time.perf_counter() - start
            assert code == 0
            shown = render_seconds(page, scratch)
            print(f"{label:<44} {page.stat().st_size / 1e6:>6.2f} {built:>8.1f} "
                  f"{'-' if shown is None else f'{shown:.1f}':>10}", flush=True)


if __name__ == "__main__":
    main()
