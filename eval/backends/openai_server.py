"""`openai:<model>`: any OpenAI-compatible chat server (vLLM, SGLang, `transformers serve`, the OpenAI API).

Images travel as data URLs, lossless: a frame stored as an RGB PNG or JPEG goes as its own bytes (the server
decodes the very file the dataset holds), anything else (a resized history frame, an RGBA or 16-bit PNG) is
encoded as PNG from the decoded pixels. Each frame's data URL is built once and reused while its episode runs.

The runner drives the backend through `agenerate` (one request per episode turn, `concurrency` in flight: see
eval/scheduler.py); `generate` (a batch, on a thread pool) serves callers that hold a batch, e.g. the judge.
Both post the chat body to `/chat/completions` through the `openai` client's own request path (`client.post`),
which retries 408/409/429/5xx and connection errors with exponential backoff (`max_retries`, honouring
Retry-After), bounds every call by `timeout` and raises the SDK's typed errors; the SDK's per-request
`TypedDict` transform and response model are skipped, as they cost more CPU than a request on loopback
(benchmarks/bench_eval.py (a)). On a plain-HTTP server (a local or self-hosted engine) `agenerate` sends each
request's first attempt straight through aiohttp (`_FirstAttempt`, half the client CPU again); anything but a
clean answer goes to the SDK with one retry less, so errors, retries and their messages are the SDK's.

Default concurrency: 64 for a local or self-hosted server (vLLM / SGLang batch whatever is in flight, so the
engine stays full), 8 for the OpenAI API itself (rate limits: the 429 backoff takes over beyond that).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from .base import (
    Backend, BackendUnavailable, DerivedImage, Generation, Request, StoredImage, _describe, _describe_unavailable, _root_cause,
    check_option_ranges, register_backend,
)
from .options import cli_flag

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
SERVER_CONCURRENCY = 64  # a local vLLM / SGLang / transformers server
API_CONCURRENCY = 8  # the OpenAI API (and other rate-limited hosted APIs at api.openai.com)
URL_CACHE_BYTES = 64 * 1024**2  # data URLs of the frames of the episodes in flight


@dataclass
class OpenAIOptions:
    base_url: str | None = field(default=None, metadata=cli_flag(
        "server URL, e.g. http://127.0.0.1:8000/v1 (default $OPENAI_BASE_URL, then the OpenAI API)", metavar="URL"))
    api_key: str | None = None  # default: $OPENAI_API_KEY ("EMPTY" for local servers that ignore it)
    max_new_tokens: int = 50
    temperature: float = 0.0  # greedy
    top_p: float | None = None
    seed: int | None = 0
    concurrency: int | None = field(default=None, metadata=cli_flag(
        f"requests in flight, each episode advancing on its own answer (default {SERVER_CONCURRENCY} for a local "
        f"server, {API_CONCURRENCY} for api.openai.com)", metavar="N"))
    timeout: float = field(default=120.0, metadata=cli_flag("seconds per request (default 120)", metavar="SECONDS"))
    max_retries: int = field(default=5, metadata=cli_flag(
        "retries on 429/5xx/connection errors (default 5; a local plain-HTTP server gets at least one)"))
    extra_body: dict = field(default_factory=dict)  # server-specific fields, e.g. {"top_k": 1} for vLLM

    def __post_init__(self):
        check_option_ranges(self)


PASSTHROUGH = {"PNG": "image/png", "JPEG": "image/jpeg"}


def _stored_mime(data: bytes) -> str | None:
    """The MIME type under which stored bytes can travel as they are: an 8-bit RGB PNG or an RGB JPEG (what
    `decode_image` would turn into the same pixels without a conversion); None for anything else."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            kind, mode = image.format, image.mode
    except Exception:  # noqa: BLE001 - not an image PIL reads lazily: decode and re-encode (which names the error)
        return None
    if mode != "RGB" or (kind == "PNG" and data[24:25] != b"\x08"):  # IHDR bit depth: 16-bit PNGs get converted
        return None
    return PASSTHROUGH.get(kind)


def data_url(image) -> str:
    """An image source (a PIL image, a `StoredImage`, a callable) as a lossless data URL."""
    if isinstance(image, StoredImage):
        mime = _stored_mime(image.data)
        if mime:
            return f"data:{mime};base64," + base64.b64encode(image.data).decode("ascii")
    if callable(image):
        image = image()
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)  # lossless at any level; 1 is the fastest to encode
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _cache_key(image) -> tuple | None:
    """What names a data URL: a stored frame by the identity of its bytes, a derived one (resized) with its tag."""
    if isinstance(image, StoredImage):
        return (id(image.data),)
    if isinstance(image, DerivedImage):
        return (id(image.data), image.tag)
    return None


class DataURLCache:
    """Data URLs of stored and derived frames by the identity of their bytes (an episode's row holds the same bytes
    object every turn, frames repeat across turns, history turns re-send every earlier frame, few-shot examples
    recur across episodes), least recently used first out past `max_bytes`."""

    def __init__(self, max_bytes: int = URL_CACHE_BYTES):
        self.max_bytes, self.size = max_bytes, 0
        self.urls: OrderedDict[tuple, tuple[bytes, str]] = OrderedDict()  # key -> (data kept alive, url)
        self.lock = threading.Lock()  # `generate` builds messages on a thread pool

    def holds(self, image) -> bool:
        key = _cache_key(image)
        with self.lock:
            return key is not None and key in self.urls

    def __call__(self, image) -> str:
        key = _cache_key(image)
        if key is None:
            return data_url(image)
        with self.lock:
            hit = self.urls.get(key)
            if hit is not None and hit[0] is image.data:
                self.urls.move_to_end(key)
                return hit[1]
        url = data_url(image)
        with self.lock:
            if key not in self.urls:
                self.urls[key] = (image.data, url)
                self.size += len(url)
            while self.size > self.max_bytes and len(self.urls) > 1:
                _, (_, old) = self.urls.popitem(last=False)
                self.size -= len(old)
        return url


def to_openai_messages(request: Request, url=data_url) -> list[dict]:
    """The chat with each `{"type": "image"}` item replaced by the next image as an `image_url` data URL."""
    images = iter(request.images)
    messages = []
    for message in request.messages:
        content = message["content"]
        if not isinstance(content, str):
            content = [
                {"type": "image_url", "image_url": {"url": url(next(images))}}
                if item["type"] == "image"
                else {"type": "text", "text": item["text"]}
                for item in content
            ]
        messages.append({"role": message["role"], "content": content})
    return messages


def _needs_pixels(request: Request, urls: DataURLCache) -> bool:
    """Whether building the messages decodes or encodes pixels (CPU work better kept off the event loop)."""
    return any(not isinstance(image, StoredImage) and not urls.holds(image) for image in request.images)


def _describe_fatal(error: BaseException) -> str:
    """What stops a run. The SDK's aiohttp transport maps a failed connect to a timeout ("Request timed out."):
    name it as the connection error it is."""
    import openai

    root = _root_cause(error)
    if isinstance(error, openai.APITimeoutError) and isinstance(root, OSError) and not isinstance(root, TimeoutError):
        return f"APIConnectionError: {_describe(root)}"
    return _describe_unavailable(error)


def _behind_proxy(url: str) -> bool:
    """Whether the environment's proxy settings (HTTP_PROXY / ALL_PROXY, less NO_PROXY) apply to `url`."""
    import urllib.request
    from urllib.parse import urlsplit

    proxies = urllib.request.getproxies()
    if not ({"http", "all"} & set(proxies)):
        return False
    return not urllib.request.proxy_bypass(urlsplit(url).hostname or "")


class _FirstAttempt:
    """A request's first attempt on a plain-HTTP server, posted with aiohttp directly: at 128 requests in flight the
    SDK's request path (building an httpx request, then adapting it to aiohttp) is most of the client's CPU, and
    the client's CPU is what delays answers (benchmarks/bench_eval.py (a)). Same URL, headers and body as the SDK
    sends. Any outcome but a 200 with an answer gives None, and the caller hands the request to the SDK, whose
    retries, backoff and typed errors stay the one error path (a deterministic 4xx is thus sent twice)."""

    def __init__(self, url: str, headers: dict[str, str], timeout: float):
        """Called in the running loop (`_async_client`): the aiohttp session belongs to it."""
        import aiohttp

        self.url, self.headers = url, headers
        self.client_errors = (aiohttp.ClientError, asyncio.TimeoutError, ValueError, LookupError, TypeError)
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),  # bounded by the lanes: one request in flight each
            # No environment lookups per request (they doubled the client's CPU): `_async_client` uses this path
            # only for a URL no proxy applies to.
            timeout=aiohttp.ClientTimeout(total=timeout), trust_env=False,
        )

    async def __call__(self, body: dict) -> str | None:
        try:
            async with self.session.post(self.url, data=json.dumps(body), headers=self.headers) as response:
                if log.isEnabledFor(logging.DEBUG):  # `--verbose`: one line per request, as the SDK logs its own
                    log.debug('HTTP Request: POST %s "%s %s"', self.url, response.status, response.reason)
                if response.status != 200:
                    return None
                return _content(json.loads(await response.read()))
        except self.client_errors:
            return None

    async def close(self) -> None:
        await self.session.close()


def _content(payload: dict) -> str:
    """The text of a `/chat/completions` response body (raw JSON: no response model is built)."""
    return payload["choices"][0]["message"]["content"] or ""


def _answer(response: Any) -> str:
    return _content(response.json())


class OpenAIBackend(Backend):
    kind = "openai"
    default_batch_size = 16

    def __init__(self, model: str, options: OpenAIOptions | None = None):
        import openai
        from openai import OpenAI

        super().__init__(f"openai:{model}")
        # After the client's retries: no server, bad key, unknown model. Anything else is the request's fault.
        self.fatal_errors = (
            openai.APIConnectionError, openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError,
        )
        self.model = model
        self.options = options or OpenAIOptions()
        self.base_url = self.options.base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        api_key = self.options.api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self.client = OpenAI(
            base_url=self.base_url, api_key=api_key, timeout=self.options.timeout, max_retries=self.options.max_retries
        )
        self.concurrency = self.options.concurrency or (
            API_CONCURRENCY if "api.openai.com" in self.base_url else SERVER_CONCURRENCY
        )
        self.default_batch_size = self.concurrency
        self._api_key = api_key
        self._async = None  # (event loop, its async client, its `_FirstAttempt` or None)
        self.urls = DataURLCache()
        self.pool = ThreadPoolExecutor(max_workers=max(1, self.concurrency))

    @property
    def where(self) -> str:  # "Connection error." alone names no server
        return f"{self.spec} at {self.base_url}"

    @property
    def model_name(self) -> str:
        return self.model

    def config(self) -> dict:
        options = asdict(self.options)
        options.pop("api_key")  # never store a secret in the results
        options["base_url"] = self.base_url
        options["concurrency"] = self.concurrency
        return {**super().config(), **options}

    def _body(self, messages: list[dict]) -> dict:
        """The `/chat/completions` JSON body (what `chat.completions.create` would send, `extra_body` merged)."""
        opts = self.options
        body = {"model": self.model, "messages": messages, "temperature": opts.temperature,
                "max_tokens": opts.max_new_tokens}
        if opts.top_p is not None:
            body["top_p"] = opts.top_p
        if opts.seed is not None:
            body["seed"] = opts.seed
        return {**body, **opts.extra_body}

    def _one(self, request: Request) -> str:
        import httpx

        body = self._body(to_openai_messages(request, self.urls))
        return _answer(self.client.post("/chat/completions", cast_to=httpx.Response, body=body))

    def _async_client(self):
        """The async client of this event loop (async clients belong to their loop). Its transport is aiohttp, the
        SDK's own `DefaultAioHttpClient`: about half the CPU per request of httpx's pool, which is what bounds a
        run with many requests in flight (benchmarks/bench_eval.py (a)). Connections: one per lane at most, as
        each lane has one request in flight."""
        from openai import AsyncOpenAI, DefaultAioHttpClient

        loop = asyncio.get_running_loop()
        if self._async is None or self._async[0] is not loop:
            client = AsyncOpenAI(base_url=self.base_url, api_key=self._api_key, timeout=self.options.timeout,
                                 max_retries=self.options.max_retries,
                                 http_client=DefaultAioHttpClient(timeout=self.options.timeout))
            first = None
            # TLS, proxies, auth providers and the OpenAI API keep the SDK's path.
            if self.base_url.startswith("http://") and not _behind_proxy(self.base_url):
                headers = {key: value for key, value in {**client.default_headers, **client.auth_headers}.items()
                           if isinstance(value, str)}  # the SDK's `Omit` markers are headers it leaves out
                first = _FirstAttempt(str(client.base_url).rstrip("/") + "/chat/completions", headers,
                                      self.options.timeout)
                # After a failed first attempt: `max_retries` counts the attempts after the first, as without it.
                client = client.with_options(max_retries=max(0, self.options.max_retries - 1))
            self._async = (loop, client, first)
        return self._async[1], self._async[2]

    async def agenerate(self, request: Request) -> Generation:
        """One request, awaited: an error of the request comes back as `error`; a dead server raises."""
        import httpx

        client, first = self._async_client()
        start = time.perf_counter()
        try:
            if _needs_pixels(request, self.urls):  # decoding / encoding pixels is CPU work: off the event loop
                messages = await asyncio.to_thread(to_openai_messages, request, self.urls)
            else:  # stored frames: cached data URLs
                messages = to_openai_messages(request, self.urls)
            body = self._body(messages)
            text = await first(body) if first is not None else None
            if text is None:
                text = _answer(await client.post("/chat/completions", cast_to=httpx.Response, body=body))
        except self.fatal_errors as error:
            raise BackendUnavailable(f"{self.where}: {_describe_fatal(error)}") from error
        except Exception as error:  # noqa: BLE001 - this request's failure, recorded as an error turn
            return Generation("", error=_describe(error), latency_s=time.perf_counter() - start)
        return Generation(text, latency_s=time.perf_counter() - start)

    async def aclose(self) -> None:
        if self._async is not None:
            _, client, first = self._async
            self._async = None
            if first is not None:
                await first.close()
            await client.close()

    def _generate(self, requests: Sequence[Request]) -> list[str]:
        return [self._one(request) for request in requests]  # called with one request by `generate`

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        # Each request is its own HTTP call: isolate errors and time them one by one, concurrently.
        return list(self.pool.map(lambda request: Backend.generate(self, [request])[0], requests))

    def close(self) -> None:
        self.pool.shutdown(wait=False)
        self.client.close()


@register_backend("openai")
def make_openai(target: str, **options) -> OpenAIBackend:
    return OpenAIBackend(target, OpenAIOptions(**options))


make_openai.OPTION_CLASS = OpenAIOptions
make_openai.OPTIONS = tuple(OpenAIOptions.__dataclass_fields__)
