"""The openai: backend against real servers on loopback: `transformers serve` with the tiny model (outputs equal
the hf: backend's), and a small HTTP server that answers 429/503 first (retries with backoff) or 400 (an error
turn, the rest of the batch unharmed)."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from proactivebench.eval.backends import load_backend, single_turn
from proactivebench.eval.backends.openai_server import to_openai_messages
from proactivebench.eval.runner import EvalConfig, run_eval
from proactivebench.eval.standin import free_port, server_process

SERVER_START_TIMEOUT = 150


def _completion(text: str) -> bytes:
    return json.dumps({
        "id": "x", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
    }).encode()


class _Flaky(BaseHTTPRequestHandler):
    """Fails the first `failures` POSTs with `status`; answers a prompt containing "BAD" with 400, else echoes."""

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server = self.server
        with server.lock:
            server.calls += 1
            server.bodies.append(body)
            server.headers.append({k.lower(): v for k, v in self.headers.items()})
            fail = server.failures > 0
            server.failures -= 1
        text = body["messages"][-1]["content"][-1]["text"]
        if fail or "BAD" in text:
            self.send_response(server.status if fail else 400)
            self.send_header("Content-Type", "application/json")
            self.send_header("retry-after-ms", "20")  # keep the client's backoff short in the test
            self.end_headers()
            self.wfile.write(b'{"error": {"message": "nope"}}')
            return
        payload = _completion(f"echo {text}")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def flaky_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    server.lock, server.calls, server.bodies, server.failures, server.status = threading.Lock(), 0, [], 0, 503
    server.headers = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("status", [429, 503])
def test_retries_with_backoff_on_429_and_5xx(flaky_server, status):
    flaky_server.failures, flaky_server.status = 2, status
    backend = load_backend("openai:m", base_url=f"http://127.0.0.1:{flaky_server.server_port}/v1", max_retries=3,
                           concurrency=1, timeout=10)
    (out,) = backend.generate([single_turn("hello", [Image.new("RGB", (8, 8), "red")])])
    assert out.error == "" and out.text == "echo hello" and flaky_server.calls == 3
    body = flaky_server.bodies[-1]
    assert body["model"] == "m" and body["max_tokens"] == 50 and body["temperature"] == 0.0
    image_url = body["messages"][0]["content"][0]["image_url"]["url"]
    assert image_url.startswith("data:image/png;base64,")
    pixels = Image.open(io.BytesIO(base64.b64decode(image_url.split(",", 1)[1])))
    assert pixels.size == (8, 8) and pixels.getpixel((0, 0)) == (255, 0, 0)  # lossless
    backend.close()


def test_a_failing_request_is_an_error_the_others_answer(flaky_server):
    backend = load_backend("openai:m", base_url=f"http://127.0.0.1:{flaky_server.server_port}/v1", max_retries=0)
    outs = backend.generate([single_turn(t, []) for t in ("one", "BAD two", "three")])
    assert [o.text for o in outs] == ["echo one", "", "echo three"]
    assert "BadRequestError" in outs[1].error and outs[0].error == outs[2].error == ""
    exhausted = load_backend("openai:m", base_url=f"http://127.0.0.1:{flaky_server.server_port}/v1", max_retries=1)
    flaky_server.failures = 5
    (out,) = exhausted.generate([single_turn("x", [])])
    assert "InternalServerError" in out.error  # retries exhausted: recorded, not raised
    assert "api_key" not in exhausted.config() and exhausted.config()["max_retries"] == 1


def test_messages_keep_image_order():
    images = [Image.new("RGB", (2, 2), c) for c in ("red", "blue")]
    request = single_turn("q", images)
    messages = to_openai_messages(request)
    assert [item["type"] for item in messages[0]["content"]] == ["image_url", "image_url", "text"]


@pytest.fixture(scope="module")
def served_tiny_llava(tiny_llava_dir, tmp_path_factory):
    """`transformers serve` on loopback with the tiny LLaVA (a real OpenAI-compatible server, offline)."""
    home = tmp_path_factory.mktemp("hf-home")
    (home / "hub").mkdir()  # without it /v1/models answers 500
    port = free_port()
    env = {**os.environ, "HF_HOME": str(home), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [str(Path(sys.executable).parent / "transformers"), "serve", str(tiny_llava_dir), "--host", "127.0.0.1",
               "--port", str(port), "--device", "cpu"]
    with open(home / "serve.log", "wb") as log:
        try:
            with server_process(command, port, SERVER_START_TIMEOUT, env=env, stdout=log, stderr=subprocess.STDOUT) as url:
                yield url
        except RuntimeError as error:
            raise RuntimeError(f"{error}: {(home / 'serve.log').read_text()[-2000:]}") from None


def test_transformers_serve_matches_the_hf_backend(served_tiny_llava, tiny_llava_dir, imported_dir, tmp_path,
                                                   one_torch_thread):
    options = {"max_new_tokens": 5}
    sources = ("quickdraw", "imagenet_c", "mvpn")
    served = run_eval(
        EvalConfig(str(imported_dir), f"openai:{tiny_llava_dir}", sources=sources, batch_size=4,
                   backend_options={**options, "base_url": served_tiny_llava, "concurrency": 2, "timeout": 60}),
        tmp_path / "served.duckdb", progress=False,
    )
    local = run_eval(
        EvalConfig(str(imported_dir), f"hf:{tiny_llava_dir}", sources=sources, batch_size=4, backend_options=options),
        tmp_path / "local.duckdb", progress=False,
    )
    assert served.errors == 0 and served.episodes == local.episodes == 3
    import duckdb

    outputs = []
    for path in (tmp_path / "served.duckdb", tmp_path / "local.duckdb"):
        con = duckdb.connect(str(path), read_only=True)
        outputs.append(con.execute("SELECT sample_id, turn, output, option_verdict, category_verdict FROM turns "
                                   "ORDER BY sample_id, turn").fetchall())
        backend = con.execute("SELECT backend FROM runs").fetchone()[0]
        con.close()
    assert outputs[0] == outputs[1]  # same model, same greedy tokens, through HTTP and data URLs
    assert all(output for _, _, output, _, _ in outputs[0])
    assert backend == "hf"


def test_unreachable_server_stops_the_run_resumably(imported_dir, tmp_path):
    from proactivebench.eval.backends import BackendUnavailable

    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    config = EvalConfig(str(imported_dir), "openai:m", sources=("rod",),
                        backend_options={"base_url": url, "max_retries": 0, "timeout": 5})
    with pytest.raises(BackendUnavailable, match="APIConnectionError") as stopped:
        run_eval(config, tmp_path / "r.duckdb", progress=False)
    # Named as what failed (the aiohttp transport maps a refused connect to a timeout) and where.
    message = str(stopped.value)
    assert "timed out" not in message and ("Connect call failed" in message or "Connection refused" in message)
    assert url in message
    import duckdb

    con = duckdb.connect(str(tmp_path / "r.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM turns").fetchone()[0] == 0  # no error turns for a dead server
    con.close()


def _encoded(image: Image.Image, kind: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=kind)
    return buffer.getvalue()


def test_stored_frames_travel_as_stored_and_once_per_frame(monkeypatch):
    """An RGB PNG / JPEG frame goes as its own bytes (no decode, no new PNG); anything else as a PNG of the pixels
    `decode_image` gives; a frame's data URL is built once while its bytes are the same object."""
    from proactivebench.eval.backends import StoredImage
    from proactivebench.eval.backends import openai_server
    from proactivebench.eval.backends.openai_server import DataURLCache

    photo = Image.new("RGB", (16, 12), (10, 200, 30))
    jpeg, png = _encoded(photo, "JPEG"), _encoded(photo, "PNG")
    rgba = _encoded(Image.new("RGBA", (4, 4), (255, 0, 0, 128)), "PNG")
    urls = to_openai_messages(single_turn("q", [StoredImage(jpeg), StoredImage(png), StoredImage(rgba)]))
    sent = [item["image_url"]["url"] for item in urls[0]["content"][:3]]
    assert sent[0] == "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()
    assert sent[1] == "data:image/png;base64," + base64.b64encode(png).decode()
    assert sent[2].startswith("data:image/png;base64,")
    converted = Image.open(io.BytesIO(base64.b64decode(sent[2].split(",", 1)[1])))
    assert converted.mode == "RGB" and converted.getpixel((0, 0)) == (255, 0, 0)  # decode_image's RGB conversion

    built = []
    monkeypatch.setattr(openai_server, "data_url", lambda image: built.append(image) or f"url{len(built)}")
    cache = DataURLCache()
    same = StoredImage(jpeg)
    assert cache(same) == cache(StoredImage(same.data)) == "url1" and len(built) == 1
    assert cache(StoredImage(bytes(bytearray(jpeg)))) == "url2"  # equal bytes, another object: its own entry
    small = DataURLCache(max_bytes=1)
    small(StoredImage(png)), small(StoredImage(rgba))
    assert len(small.urls) == 1  # bounded: the least recently used goes


def test_history_frames_are_resized_once_per_frame_and_size(monkeypatch):
    """History turns re-send every earlier frame resized: each (frame, size) is encoded once across the turns, the
    pixels are the reference resize of the decoded frame, and size 0 sends the stored frame."""
    from proactivebench.engine import decode_image
    from proactivebench.eval.backends import StoredImage
    from proactivebench.eval.backends import openai_server
    from proactivebench.eval.backends.openai_server import DataURLCache
    from proactivebench.eval.history import frame_image, resize_short_edge

    frames = [{"bytes": _encoded(Image.new("RGB", (40, 30), color), "PNG"), "path": None}
              for color in ("red", "green", "blue")]
    image = frame_image(frames, 1, 24)
    assert image().size == (32, 24) and image().tobytes() == resize_short_edge(decode_image(frames[1]), 24).tobytes()
    assert isinstance(frame_image(frames, 1, 0), StoredImage)
    built = []
    real = openai_server.data_url
    monkeypatch.setattr(openai_server, "data_url", lambda source: built.append(source) or real(source))
    cache = DataURLCache()
    turns = [[frame_image(frames, i, 24) for i in range(turn + 1)] for turn in range(3)]  # turn t re-sends 0..t
    urls = [[cache(source) for source in turn] for turn in turns]
    assert len(built) == 3 and urls[2][:2] == urls[1] and urls[1][:1] == urls[0]
    assert cache(frame_image(frames, 0, 32)) != urls[0][0] and len(built) == 4  # another size: its own entry
    sent = Image.open(io.BytesIO(base64.b64decode(urls[0][0].split(",", 1)[1])))
    assert sent.size == (32, 24) and sent.getpixel((0, 0)) == (255, 0, 0)


def test_async_requests_retry_and_record_errors_like_the_sync_path(flaky_server):
    """`agenerate` (the pipelined scheduler's call) posts the same body with the SDK's retries and error types."""
    import asyncio

    url = f"http://127.0.0.1:{flaky_server.server_port}/v1"
    backend = load_backend("openai:m", base_url=url, max_retries=3, concurrency=2, timeout=10,
                           extra_body={"top_k": 1})

    async def run():
        try:
            flaky_server.failures, flaky_server.status = 2, 429
            first = await backend.agenerate(single_turn("hello", [Image.new("RGB", (8, 8), "red")]))
            bad = await backend.agenerate(single_turn("BAD", []))
            return first, bad
        finally:
            await backend.aclose()

    first, bad = asyncio.run(run())
    # 429 (first attempt), 429 (the SDK's), 200; then the 400 twice: first attempt, then the SDK, which raises it.
    assert first.error == "" and first.text == "echo hello" and flaky_server.calls == 5
    body = flaky_server.bodies[2]
    assert body["model"] == "m" and body["max_tokens"] == 50 and body["seed"] == 0 and body["top_k"] == 1
    assert body["messages"][0]["content"][0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert bad.text == "" and bad.error.startswith("BadRequestError: Error code: 400")
    backend.close()


def _agenerate(backend, requests):
    import asyncio

    async def run():
        try:
            return [await backend.agenerate(request) for request in requests]
        finally:
            await backend.aclose()

    return asyncio.run(run())


def test_async_first_attempt_sends_the_sdk_request_once(flaky_server):
    """On a plain-HTTP server the first attempt skips the SDK: one call, with the body and headers it would send."""
    url = f"http://127.0.0.1:{flaky_server.server_port}/v1"
    backend = load_backend("openai:m", base_url=url, api_key="k3y", max_retries=2, timeout=10)
    request = single_turn("hello", [Image.new("RGB", (8, 8), "red")])
    (sync,) = backend.generate([request])  # the SDK's own request
    (fast,) = _agenerate(backend, [request])
    assert sync.text == fast.text == "echo hello" and fast.error == "" and flaky_server.calls == 2
    assert flaky_server.bodies[0] == flaky_server.bodies[1]
    sdk_headers, fast_headers = flaky_server.headers
    assert fast_headers["authorization"] == sdk_headers["authorization"] == "Bearer k3y"
    assert fast_headers["user-agent"] == "Async" + sdk_headers["user-agent"]  # what the SDK's async client sends
    assert fast_headers["content-type"] == "application/json"
    backend.close()


def test_async_errors_after_the_first_attempt_are_the_sdks(flaky_server):
    """A failed first attempt goes to the SDK: with no retries a 500 is sent twice and recorded as the SDK's error."""
    url = f"http://127.0.0.1:{flaky_server.server_port}/v1"
    flaky_server.failures, flaky_server.status = 5, 500
    backend = load_backend("openai:m", base_url=url, max_retries=0, timeout=10)
    (out,) = _agenerate(backend, [single_turn("x", [])])
    assert out.text == "" and out.error.startswith("InternalServerError: Error code: 500") and flaky_server.calls == 2
    backend.close()


def test_a_proxied_url_keeps_the_sdk_path(flaky_server, monkeypatch):
    """Proxy settings that apply to the server send every attempt through the SDK, which honours them."""
    from proactivebench.eval.backends.openai_server import _behind_proxy

    url = f"http://127.0.0.1:{flaky_server.server_port}/v1"
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert not _behind_proxy(url) and _behind_proxy("http://gpu-node:8000/v1")
    monkeypatch.delenv("NO_PROXY")
    assert _behind_proxy(url)
    backend = load_backend("openai:m", base_url=url, max_retries=0, timeout=10)
    import asyncio

    async def chosen():
        try:
            return backend._async_client()[1]
        finally:
            await backend.aclose()

    assert asyncio.run(chosen()) is None
    backend.close()
