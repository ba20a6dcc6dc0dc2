"""Episodes per second of `proactivebench eval`: batch size 1 (the reference's way: one sample, one turn, one
`generate` at a time) against turn-synchronous batching, side by side in one run, same model, same episodes.

Default: the tiny random-weight LLaVA of proactivebench.eval.tiny_models on the CPU, the sample release imported and its
test episodes repeated (new sample ids) to `--episodes`, the paper's max_new_tokens=50. Every run's verdicts
are checked to be identical to batch size 1's (greedy, fp32).

    .venv/bin/python benchmarks/bench_eval.py [--episodes 64] [--batch-sizes 1 4 8 16 32] [--model SPEC] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def build_dataset(root: Path, episodes: int, transform=None) -> Path:
    """The imported sample release's test episodes, repeated with fresh sample ids up to `episodes`
    (`transform(row) -> row` applied once to each distinct episode before repeating, e.g. to enlarge its frames)."""
    from proactivebench.builders.official import import_official
    from proactivebench.builders.sample_release import write_sample_release
    from proactivebench.store import StagedOutput, iter_rows

    imported = root / "imported"
    import_official(write_sample_release(root / "release" / "test"), imported)
    rows = [transform(row) if transform else row for row in iter_rows(imported, split="test")]
    by_source: dict[str, list[dict]] = {}
    for i in range(episodes):
        row = dict(rows[i % len(rows)])
        copy = i // len(rows)
        row["source_id"] = int(row["source_id"]) + 100000 * copy
        row["sample_id"] = f"{row['source']}-{row['source_id']:06d}"
        by_source.setdefault(row["source"], []).append(row)
    out = root / "bench"
    with StagedOutput(out) as staged:
        for source, source_rows in by_source.items():
            staged.write_split(source, "test", source_rows)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 8, 16, 32])
    parser.add_argument("--model", help="backend SPEC (default: a freshly built tiny LLaVA)")
    parser.add_argument("--max-new-tokens", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the shared 2-core box: 1)")
    args = parser.parse_args()

    import duckdb
    import torch

    from proactivebench.eval.backends import load_backend
    from proactivebench.eval.runner import EvalConfig, run_eval

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        os.environ["HF_DATASETS_CACHE"] = str(scratch / "cache")
        dataset = build_dataset(scratch, args.episodes)
        if args.model:
            spec = args.model
        else:
            from proactivebench.eval.tiny_models import build_tiny_llava

            spec = f"hf:{build_tiny_llava(scratch / 'tiny-llava')}"
        backend = load_backend(spec, max_new_tokens=args.max_new_tokens)
        info = backend.config()
        print(f"model {spec} on {info.get('device', '-')} ({info.get('dtype', '-')}), torch threads {torch.get_num_threads()}, "
              f"{os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f}")
        # Warm up once so neither side pays for first-call initialisation.
        run_eval(EvalConfig(str(dataset), spec, limit=1, sources=("quickdraw",), batch_size=1), scratch / "warm.duckdb",
                 backend=backend, progress=False)
        timings, verdicts = {}, {}
        for batch_size in args.batch_sizes:
            results = scratch / f"b{batch_size}.duckdb"
            start = time.perf_counter()
            summary = run_eval(EvalConfig(str(dataset), spec, batch_size=batch_size), results, backend=backend, progress=False)
            elapsed = time.perf_counter() - start
            con = duckdb.connect(str(results), read_only=True)
            turns = con.execute("SELECT count(*) FROM turns").fetchone()[0]
            verdicts[batch_size] = con.execute(
                "SELECT sample_id, turn, output, option_verdict, category_verdict FROM turns ORDER BY ALL"
            ).fetchall()
            con.close()
            timings[batch_size] = (summary.episodes / elapsed, turns / elapsed, elapsed, summary.episodes)
        base = args.batch_sizes[0]
        best = max(timings, key=lambda b: timings[b][0])
        print(f"{'batch':>5} {'episodes/s':>11} {'turns/s':>8} {'seconds':>8} {'episodes':>8} {'speedup':>8} same-verdicts")
        for batch_size, (eps, tps, elapsed, n) in timings.items():
            same = verdicts[batch_size] == verdicts[base]
            print(f"{batch_size:>5} {eps:>11.2f} {tps:>8.2f} {elapsed:>8.1f} {n:>8} {eps / timings[base][0]:>7.1f}x {same}")
        print(f"batch size {base}: {timings[base][0]:.2f} episodes/s | best batch size {best}: {timings[best][0]:.2f} "
              f"episodes/s | {timings[best][0] / timings[base][0]:.1f}x")


if __name__ == "__main__":
    main()
