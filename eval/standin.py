"""A stand-in OpenAI-compatible chat server with per-request latency, for benchmarks and tests of the runner.

Like a real engine under load, each request takes its own time: `latency_for(prompt)` seconds, between
`min_ms` and `max_ms`, a deterministic function of the prompt text, so a benchmark can recompute from the
results file what the floor of a run was (the sum of latencies, the longest episode's chain). The answer is a
deterministic choice among the prompt's letters, weighted towards "A" so that episodes take several turns.

    python -m proactivebench.eval.standin --port 8123 [--min-ms 20 --max-ms 400]

Starlette + uvicorn (the `serve` extra).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Iterator

from proactivebench.seeding import stable_unit

LETTERS = re.compile(r"^([A-Z])\. ", re.MULTILINE)


def latency_for(prompt: str, min_ms: float = 20, max_ms: float = 400) -> float:
    return (min_ms + (max_ms - min_ms) * stable_unit("latency" + prompt)) / 1000


def answer_for(prompt: str) -> str:
    letters = LETTERS.findall(prompt) or ["A"]
    draw = stable_unit("answer" + prompt)
    return letters[0] if draw < 0.6 else letters[int(draw * 997) % len(letters)]


def prompt_of(body: dict) -> str:
    content = body["messages"][-1]["content"]
    if isinstance(content, str):
        return content
    return "".join(item.get("text", "") for item in content if item.get("type") == "text")


def make_app(min_ms: float, max_ms: float):
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def completions(request: Request) -> JSONResponse:
        body = await request.json()
        prompt = prompt_of(body)
        await asyncio.sleep(latency_for(prompt, min_ms, max_ms))
        return JSONResponse({
            "id": "standin", "object": "chat.completion", "created": int(time.time()), "model": body.get("model", ""),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": answer_for(prompt)}}],
        })

    async def models(request: Request) -> JSONResponse:
        return JSONResponse({"object": "list", "data": [{"id": "standin", "object": "model"}]})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[
        Route("/v1/chat/completions", completions, methods=["POST"]),
        Route("/v1/models", models), Route("/health", health),
    ])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server_process(command: list[str], port: int, timeout: float = 60, **popen) -> Iterator[str]:
    """Start a server command, wait until `http://127.0.0.1:<port>/health` answers, yield its base URL (`.../v1`),
    stop it afterwards. Serves the stand-in and `transformers serve` alike."""
    process = subprocess.Popen(command, **popen)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{command[0]}: server did not start on port {port}") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def serve(min_ms: float = 20, max_ms: float = 400, timeout: float = 60):
    """The stand-in in its own process on a free loopback port; yields its base URL."""
    port = free_port()
    command = [sys.executable, "-m", "proactivebench.eval.standin", "--port", str(port), "--min-ms", str(min_ms),
               "--max-ms", str(max_ms)]
    return server_process(command, port, timeout, stdout=subprocess.DEVNULL)


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--min-ms", type=float, default=20)
    parser.add_argument("--max-ms", type=float, default=400)
    args = parser.parse_args()
    uvicorn.run(make_app(args.min_ms, args.max_ms), host="127.0.0.1", port=args.port, log_level="warning",
                backlog=4096, timeout_keep_alive=30)


if __name__ == "__main__":
    main()
