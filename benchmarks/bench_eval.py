"""How fast `proactivebench eval` runs, side by side in one run:

(a) the pipelined scheduler against a stand-in OpenAI-compatible server on loopback whose latency varies per
    request (20-400 ms): efficiency = floor / actual, floor = max(sum of latencies / in flight, the longest
    episode's chain of latencies), at 32 and 128 in flight;
(b) the in-process runner (hf:, tiny random-weight LLaVA on the CPU, the paper's max_new_tokens=50) at each
    batch size against the plain one-at-a-time loop (one sample, one turn, one `generate`: the authors' loop)
    with the same model and prompts; verdicts must be identical (greedy, fp32);
(c) `transformers serve` with the same tiny model on loopback, through the pipelined scheduler.

Episodes: the imported sample release's test episodes repeated (new sample ids).

    .venv/bin/python benchmarks/bench_eval.py [--episodes 64] [--server-episodes 340] [--batch-sizes 1 8 32]
        [--concurrency 32 128] [--model SPEC] [--threads 1] [--skip server|in-process|serve]
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
    from proactivebench.samples.release import write_sample_release
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


def plain_loop(dataset: Path, backend) -> tuple[float, list]:
    """The authors' way: one sample, one turn, one `generate` at a time, through the public Episode API and the
    same model (the backend's own model call), nothing else."""
    from proactivebench.eval import Episode
    from proactivebench.eval.backends import single_turn
    from proactivebench.sources import SOURCE_NAMES
    from proactivebench.store import iter_rows

    start = time.perf_counter()  # reading the data counts on both sides, as it does in the runner
    rows = sorted(iter_rows(dataset, split="test"), key=lambda r: (SOURCE_NAMES.index(r["source"]), r["sample_id"]))
    verdicts = []
    for row in rows:
        episode = Episode(row)
        while not episode.done:
            observation = episode.observe()
            (text,) = backend._generate([single_turn(observation.prompt, [observation.image])])
            turn = episode.step(text)
            verdicts.append((row["sample_id"], turn.turn, turn.output, turn.option_verdict, turn.category_verdict))
    return time.perf_counter() - start, sorted(verdicts)


def _turns(results: Path) -> list:
    import duckdb

    con = duckdb.connect(str(results), read_only=True)
    try:
        return con.execute(
            "SELECT sample_id, turn, output, option_verdict, category_verdict FROM turns ORDER BY ALL"
        ).fetchall()
    finally:
        con.close()


def bench_server(dataset: Path, scratch: Path, concurrencies: list[int], min_ms: float, max_ms: float) -> None:
    """(a) the pipelined scheduler against the stand-in server: efficiency = floor / actual."""
    import duckdb

    from proactivebench.eval.runner import EvalConfig, run_eval
    from proactivebench.eval.standin import latency_for, serve

    print(f"\n(a) pipelined scheduler, stand-in OpenAI-compatible server on loopback, latency {min_ms:.0f}-{max_ms:.0f} ms "
          "per request (a function of the prompt)")
    print(f"{'in flight':>9} {'episodes':>8} {'turns':>6} {'seconds':>8} {'floor s':>8} {'efficiency':>10}")
    with serve(min_ms, max_ms) as url:
        for concurrency in concurrencies:
            results = scratch / f"server{concurrency}.duckdb"
            options = {"base_url": url, "concurrency": concurrency, "max_retries": 0}
            start = time.perf_counter()
            summary = run_eval(EvalConfig(str(dataset), "openai:standin", backend_options=options), results, progress=False)
            elapsed = time.perf_counter() - start
            con = duckdb.connect(str(results), read_only=True)
            prompts = con.execute("SELECT sample_id, prompt FROM turns").fetchall()
            con.close()
            chains: dict[str, float] = {}
            for sample_id, prompt in prompts:
                chains[sample_id] = chains.get(sample_id, 0.0) + latency_for(prompt, min_ms, max_ms)
            total = sum(chains.values())
            floor = max(total / concurrency, max(chains.values()))
            print(f"{concurrency:>9} {summary.episodes:>8} {len(prompts):>6} {elapsed:>8.2f} {floor:>8.2f} {floor / elapsed:>10.2f}")


def bench_in_process(dataset: Path, spec: str, backend, scratch: Path, batch_sizes: list[int]) -> None:
    """(b) the in-process runner at each batch size against the plain one-at-a-time loop, same model and prompts."""
    from proactivebench.eval.runner import EvalConfig, run_eval

    plain_s, plain_verdicts = plain_loop(dataset, backend)
    print(f"\n(b) in-process runner vs the plain one-at-a-time loop ({spec.split('/')[-1]}), same model, same prompts")
    print(f"{'':>12} {'episodes/s':>11} {'turns/s':>8} {'seconds':>8} {'vs plain':>8} same-verdicts")
    episodes = len({v[0] for v in plain_verdicts})
    print(f"{'plain loop':>12} {episodes / plain_s:>11.2f} {len(plain_verdicts) / plain_s:>8.2f} {plain_s:>8.1f} {1.0:>7.2f}x -")
    rates = {}
    for batch_size in batch_sizes:
        results = scratch / f"b{batch_size}.duckdb"
        start = time.perf_counter()
        summary = run_eval(EvalConfig(str(dataset), spec, batch_size=batch_size), results, backend=backend, progress=False)
        elapsed = time.perf_counter() - start
        turns = _turns(results)
        rates[batch_size] = summary.episodes / elapsed
        print(f"{f'batch {batch_size}':>12} {rates[batch_size]:>11.2f} {len(turns) / elapsed:>8.2f} {elapsed:>8.1f} "
              f"{plain_s / elapsed:>7.2f}x {turns == plain_verdicts}")
    best = max(rates, key=rates.get)
    print(f"batch 1: {rates.get(1, 0) * plain_s / episodes:.2f}x the plain loop | best batch {best}: "
          f"{rates[best] * plain_s / episodes:.2f}x")


def bench_transformers_serve(dataset: Path, model_dir: Path, scratch: Path, concurrency: int) -> None:
    """(c) `transformers serve` with the tiny model on loopback, through the pipelined scheduler."""
    import subprocess
    import sys

    from proactivebench.eval.runner import EvalConfig, run_eval
    from proactivebench.eval.standin import free_port, server_process

    home = scratch / "hf-home"
    (home / "hub").mkdir(parents=True, exist_ok=True)  # without it /v1/models answers 500
    port = free_port()
    command = [str(Path(sys.executable).parent / "transformers"), "serve", str(model_dir), "--host", "127.0.0.1",
               "--port", str(port), "--device", "cpu"]
    env = {**os.environ, "HF_HOME": str(home), "OMP_NUM_THREADS": "1"}
    print(f"\n(c) transformers serve (tiny model, CPU) on loopback through the pipelined scheduler")
    with server_process(command, port, 180, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as url:
        options = {"base_url": url, "concurrency": concurrency, "max_new_tokens": 50, "timeout": 300}
        config = EvalConfig(str(dataset), f"openai:{model_dir}", backend_options=options)
        run_eval(EvalConfig(str(dataset), f"openai:{model_dir}", limit=1, sources=("quickdraw",),
                            backend_options=options), scratch / "serve-warm.duckdb", progress=False)
        start = time.perf_counter()
        summary = run_eval(config, scratch / "serve.duckdb", progress=False)
        elapsed = time.perf_counter() - start
    turns = _turns(scratch / "serve.duckdb")
    print(f"{concurrency} in flight: {summary.episodes} episodes, {len(turns)} turns in {elapsed:.1f} s = "
          f"{summary.episodes / elapsed:.2f} episodes/s, {summary.errors} errors, same verdicts as in process: "
          f"{turns == _turns(scratch / 'b1.duckdb')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=64, help="in-process and transformers-serve episodes")
    parser.add_argument("--server-episodes", type=int, default=340, help="stand-in server episodes")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--latency-ms", type=float, nargs=2, default=[20, 400])
    parser.add_argument("--model", help="backend SPEC for (b) (default: a freshly built tiny LLaVA)")
    parser.add_argument("--max-new-tokens", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the shared 2-core box: 1)")
    parser.add_argument("--skip", nargs="*", default=[], choices=("server", "in-process", "serve"))
    args = parser.parse_args()

    import torch

    from proactivebench.eval.backends import load_backend
    from proactivebench.eval.runner import EvalConfig, run_eval

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        os.environ["HF_DATASETS_CACHE"] = str(scratch / "cache")
        print(f"{os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f}, torch threads {torch.get_num_threads()}")
        if "server" not in args.skip:
            bench_server(build_dataset(scratch / "server", args.server_episodes), scratch, args.concurrency,
                         *args.latency_ms)
        dataset = build_dataset(scratch, args.episodes)
        model_dir = None
        if args.model:
            spec = args.model
        else:
            from proactivebench.samples.tiny_models import build_tiny_llava

            model_dir = build_tiny_llava(scratch / "tiny-llava")
            spec = f"hf:{model_dir}"
        if "in-process" not in args.skip:
            backend = load_backend(spec, max_new_tokens=args.max_new_tokens)
            # Warm up once so no side pays for first-call initialisation.
            run_eval(EvalConfig(str(dataset), spec, limit=1, sources=("quickdraw",), batch_size=1),
                     scratch / "warm.duckdb", backend=backend, progress=False)
            bench_in_process(dataset, spec, backend, scratch, args.batch_sizes)
        if "serve" not in args.skip and model_dir is not None:
            bench_transformers_serve(dataset, model_dir, scratch, max(args.concurrency))


if __name__ == "__main__":
    main()
