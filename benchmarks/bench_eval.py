"""How fast `proactivebench eval` runs, side by side in one run:

(a) the pipelined scheduler against a stand-in OpenAI-compatible server on loopback whose latency varies per
    request (20-400 ms): efficiency = floor / actual, floor = max(sum of latencies / in flight, the longest
    episode's chain of latencies), at 32 and 128 in flight, the current `openai:` client alternating with the
    previous one (`previous_client`) on the same server and data, `--repeat` times each (the box is shared);
(b) the in-process runner (hf:, tiny random-weight LLaVA on the CPU, the paper's max_new_tokens=50) at each
    batch size against the plain one-at-a-time loop (one sample, one turn, one `generate`: the authors' loop)
    with the same model and prompts; verdicts must be identical (greedy, fp32);
(c) `transformers serve` with the same tiny model on loopback, through the pipelined scheduler.

Episodes: the imported sample release's test episodes repeated (new sample ids).

    .venv/bin/python benchmarks/bench_eval.py [--episodes 64] [--server-episodes 340] [--batch-sizes 1 8 32]
        [--concurrency 32 128] [--repeat 3] [--no-compare] [--model SPEC] [--threads 1]
        [--skip server|in-process|serve]
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


def previous_client(spec: str, **options):
    """The `openai:` client as it was before the raw post (commit bc9c79f), for side-by-side figures: the SDK's
    `chat.completions.create` (TypedDict transform + response model), every frame decoded and encoded again as
    PNG on every turn (on a thread), round-robin over pools of 16 connections."""
    import asyncio
    import base64
    import io
    import itertools

    import httpx
    from openai import AsyncOpenAI

    from proactivebench.eval.backends import Generation, load_backend
    from proactivebench.eval.backends.base import BackendUnavailable, _describe

    def png_url(image) -> str:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")

    def messages_of(request) -> list[dict]:
        images = iter(request.load_images())
        return [{"role": m["role"], "content": m["content"] if isinstance(m["content"], str) else [
            {"type": "image_url", "image_url": {"url": png_url(next(images))}} if item["type"] == "image"
            else {"type": "text", "text": item["text"]} for item in m["content"]]} for m in request.messages]

    backend = load_backend(spec, **options)
    state: dict = {}

    def client():
        loop = asyncio.get_running_loop()
        if state.get("loop") is not loop:
            limits = httpx.Limits(max_connections=backend.concurrency, max_keepalive_connections=16)
            state.update(loop=loop, turn=itertools.count(), clients=[
                AsyncOpenAI(base_url=backend.base_url, api_key="EMPTY", timeout=backend.options.timeout,
                            max_retries=backend.options.max_retries,
                            http_client=httpx.AsyncClient(limits=limits, timeout=backend.options.timeout))
                for _ in range(-(-backend.concurrency // 16))])
        return state["clients"][next(state["turn"]) % len(state["clients"])]

    async def agenerate(request) -> Generation:
        chosen = client()
        start = time.perf_counter()
        try:
            messages = await asyncio.to_thread(messages_of, request) if request.images else messages_of(request)
            body = backend._body(messages)
            response = await chosen.chat.completions.create(**body)
            text = response.choices[0].message.content or ""
        except backend.fatal_errors as error:
            raise BackendUnavailable(f"{backend.where}: {_describe(error)}") from error
        except Exception as error:  # noqa: BLE001
            return Generation("", error=_describe(error), latency_s=time.perf_counter() - start)
        return Generation(text, latency_s=time.perf_counter() - start)

    async def aclose() -> None:
        for each in state.pop("clients", []):
            await each.close()
        state.pop("loop", None)

    backend.agenerate, backend.aclose = agenerate, aclose
    return backend


def _time_requests(backend) -> dict:
    """Fills in, as `backend.agenerate` runs: the first request sent and the last answer received (perf_counter)
    and the order in which episodes started (request keys are "<sample_id>/<turn>")."""
    span = {"first": float("inf"), "last": 0.0, "order": {}}
    inner = backend.agenerate

    async def agenerate(request):
        span["first"] = min(span["first"], time.perf_counter())
        span["order"].setdefault(request.key.rsplit("/", 1)[0], len(span["order"]))
        try:
            return await inner(request)
        finally:
            span["last"] = time.perf_counter()

    backend.agenerate = agenerate
    return span


def fifo_makespan(chains: dict[str, float], order: dict[str, int], lanes: int) -> float:
    """The run's length with zero client and server overhead under first-come lanes (the episodes in the order
    they started, each taken by the first free lane): what any scheduler that cannot know latencies ahead gets."""
    import heapq

    free = [0.0] * lanes
    for sample_id in sorted(chains, key=order.get):
        heapq.heappush(free, heapq.heappop(free) + chains[sample_id])
    return max(free)


def bench_server(dataset: Path, scratch: Path, concurrencies: list[int], min_ms: float, max_ms: float,
                 compare: bool = True, repeat: int = 1) -> None:
    """(a) the pipelined scheduler against the stand-in server (its own process): efficiency = floor / actual;
    with `compare`, the previous client (`previous_client`) on the same server and data, alternating with the
    current one `repeat` times, so both see the same load."""
    import statistics

    import duckdb

    from proactivebench.eval.backends import load_backend
    from proactivebench.eval.runner import EvalConfig, run_eval
    from proactivebench.eval.standin import latency_for, serve

    print(f"\n(a) pipelined scheduler, stand-in OpenAI-compatible server (own process) on loopback, latency "
          f"{min_ms:.0f}-{max_ms:.0f} ms per request (a function of the prompt)")
    print("run s: the whole `run_eval` (loading the dataset, the results file, the views); pipeline s: the first "
          "request sent to the last answer received; floor: max(sum of latencies / in flight, longest chain); "
          "fifo s: zero-overhead first-free-lane schedule of the same episodes")
    print(f"{'in flight':>9} {'client':>8} {'episodes':>8} {'turns':>6} {'run s':>7} {'pipeline':>8} {'floor s':>7} "
          f"{'fifo s':>7} {'eff(run)':>8} {'eff(pipe)':>9} {'load avg':>8} same-verdicts")
    clients = ("previous", "current") if compare else ("current",)
    with serve(min_ms, max_ms) as url:
        for concurrency in concurrencies:
            seen: dict[str, list] = {client: [] for client in clients}
            reference = None
            for attempt in range(repeat):
                for client in clients:
                    results = scratch / f"server{concurrency}-{client}-{attempt}.duckdb"
                    options = {"base_url": url, "concurrency": concurrency, "max_retries": 0}
                    backend = (previous_client if client == "previous" else load_backend)("openai:standin", **options)
                    span = _time_requests(backend)
                    load = os.getloadavg()[0]
                    start = time.perf_counter()
                    summary = run_eval(EvalConfig(str(dataset), "openai:standin", backend_options=options), results,
                                       backend=backend, progress=False)
                    elapsed = time.perf_counter() - start
                    backend.close()
                    pipeline = span["last"] - span["first"]
                    con = duckdb.connect(str(results), read_only=True)
                    prompts = con.execute("SELECT sample_id, prompt FROM turns").fetchall()
                    con.close()
                    chains: dict[str, float] = {}
                    for sample_id, prompt in prompts:
                        chains[sample_id] = chains.get(sample_id, 0.0) + latency_for(prompt, min_ms, max_ms)
                    floor = max(sum(chains.values()) / concurrency, max(chains.values()))
                    fifo = fifo_makespan(chains, span["order"], concurrency)
                    turns = _turns(results)
                    reference = turns if reference is None else reference
                    seen[client].append((elapsed, pipeline, floor))
                    print(f"{concurrency:>9} {client:>8} {summary.episodes:>8} {len(prompts):>6} {elapsed:>7.2f} "
                          f"{pipeline:>8.2f} {floor:>7.2f} {fifo:>7.2f} {floor / elapsed:>8.2f} "
                          f"{floor / pipeline:>9.2f} {load:>8.1f} {turns == reference}")
            medians = {c: (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs), runs[0][2])
                       for c, runs in seen.items()}
            line = " | ".join(f"{c}: eff(run) {f / e:.2f}, eff(pipe) {f / p:.2f}" for c, (e, p, f) in medians.items())
            print(f"{'':>9} median of {repeat}: {line}"
                  + (f" | current / previous speed {medians['previous'][0] / medians['current'][0]:.2f}x"
                     if compare else ""))


def bench_in_process(dataset: Path, spec: str, backend, scratch: Path, batch_sizes: list[int], repeat: int = 1) -> None:
    """(b) the in-process runner at each batch size against the plain one-at-a-time loop, same model and prompts;
    the plain loop and each batch size take turns `repeat` times (the box is shared) and medians are compared."""
    import statistics

    from proactivebench.eval.runner import EvalConfig, run_eval

    print(f"\n(b) in-process runner vs the plain one-at-a-time loop ({spec.split('/')[-1]}), same model, same prompts; "
          f"{repeat} alternating round(s)")
    print(f"{'':>12} {'episodes/s':>11} {'turns/s':>8} {'seconds':>8} {'vs plain':>8} {'load avg':>8} same-verdicts")
    times: dict[str, list[float]] = {}
    episodes = plain_verdicts = None
    for attempt in range(repeat):
        load = os.getloadavg()[0]
        plain_s, verdicts = plain_loop(dataset, backend)
        plain_verdicts = plain_verdicts or verdicts
        episodes = len({v[0] for v in verdicts})
        times.setdefault("plain loop", []).append(plain_s)
        print(f"{'plain loop':>12} {episodes / plain_s:>11.2f} {len(verdicts) / plain_s:>8.2f} {plain_s:>8.1f} "
              f"{1.0:>7.2f}x {load:>8.1f} {verdicts == plain_verdicts}")
        for batch_size in batch_sizes:
            results = scratch / f"b{batch_size}.duckdb"
            results.unlink(missing_ok=True)
            load = os.getloadavg()[0]
            start = time.perf_counter()
            run_eval(EvalConfig(str(dataset), spec, batch_size=batch_size), results, backend=backend, progress=False)
            elapsed = time.perf_counter() - start
            turns = _turns(results)
            times.setdefault(f"batch {batch_size}", []).append(elapsed)
            print(f"{f'batch {batch_size}':>12} {episodes / elapsed:>11.2f} {len(turns) / elapsed:>8.2f} {elapsed:>8.1f} "
                  f"{plain_s / elapsed:>7.2f}x {load:>8.1f} {turns == plain_verdicts}")
    median = {name: statistics.median(values) for name, values in times.items()}
    plain = median.pop("plain loop")
    best = min(median, key=median.get)
    print(f"medians of {repeat}: plain {plain:.1f} s | " + " | ".join(f"{n} {t:.1f} s ({plain / t:.2f}x)"
                                                                       for n, t in median.items())
          + f" | batch 1: {plain / median.get('batch 1', float('inf')):.2f}x the plain loop, best ({best}): "
            f"{plain / median[best]:.2f}x")


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


def bench_history_messages(episodes: int = 20, turns: int = 8, size: int = 224) -> None:
    """(d) history requests to a server: the client builds turn t's messages with every earlier frame resized;
    per-turn decode + resize + PNG encode (the earlier client) against each (frame, size) encoded once."""
    import io

    from PIL import Image

    from proactivebench.engine import decode_image
    from proactivebench.eval.backends import Request
    from proactivebench.eval.backends.openai_server import DataURLCache, data_url, to_openai_messages
    from proactivebench.eval.history import frame_image, resize_short_edge, user_message

    def jpeg(seed: int) -> bytes:
        buffer = io.BytesIO()
        Image.effect_noise((640, 480), 40 + seed % 20).convert("RGB").save(buffer, "JPEG", quality=90)
        return buffer.getvalue()

    rows = [[{"bytes": jpeg(e * turns + t), "path": None} for t in range(turns)] for e in range(episodes)]

    def per_turn(frames, i):
        return lambda: resize_short_edge(decode_image(frames[i]), size)

    timings = {}
    for name, source, url in (("per-turn encode", per_turn, data_url), ("cached", None, None)):
        cache = DataURLCache()
        make = source or (lambda frames, i: frame_image(frames, i, size))
        start = time.perf_counter()
        for frames in rows:
            for turn in range(turns):
                images = [make(frames, i) for i in range(turn + 1)]
                request = Request([user_message("q") for _ in images], images)
                to_openai_messages(request, url or cache)
        timings[name] = time.perf_counter() - start
    requests = episodes * turns
    print(f"\n(d) history requests, {episodes} episodes x {turns} turns of 640x480 JPEG frames resized to {size} px, "
          f"client-side message building:")
    for name, seconds in timings.items():
        print(f"{name:>16}: {seconds:.2f} s ({1000 * seconds / requests:.1f} ms per request)")
    print(f"{'':>16}  cached / per-turn speed {timings['per-turn encode'] / timings['cached']:.1f}x")


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
    parser.add_argument("--skip", nargs="*", default=[], choices=("server", "in-process", "serve", "history"))
    parser.add_argument("--no-compare", action="store_true", help="(a) without the previous client's runs")
    parser.add_argument("--repeat", type=int, default=3, help="(a) runs per client, (b) rounds of plain loop and batch sizes, alternating (a loaded box)")
    args = parser.parse_args()

    import torch

    from proactivebench.eval.backends import load_backend
    from proactivebench.eval.runner import EvalConfig, run_eval

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        os.environ["HF_DATASETS_CACHE"] = str(scratch / "cache")
        print(f"{os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f}, torch threads {torch.get_num_threads()}")
        if "history" not in args.skip:
            bench_history_messages()
        if "server" not in args.skip:
            bench_server(build_dataset(scratch / "server", args.server_episodes), scratch, args.concurrency,
                         *args.latency_ms, compare=not args.no_compare, repeat=args.repeat)
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
            bench_in_process(dataset, spec, backend, scratch, args.batch_sizes, args.repeat)
        if "serve" not in args.skip and model_dir is not None:
            bench_transformers_serve(dataset, model_dir, scratch, max(args.concurrency))


if __name__ == "__main__":
    main()
