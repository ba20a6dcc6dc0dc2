"""`openai:<model>`: any OpenAI-compatible chat server (vLLM, SGLang, `transformers serve`, the OpenAI API).

Images travel as PNG data URLs (lossless: the server sees the frame's exact pixels). The runner drives it
through `agenerate` (the `openai` async client, one request per episode turn, `concurrency` in flight: see
eval/scheduler.py); `generate` (a batch, on a thread pool) serves callers that hold a batch, e.g. the judge.
The `openai` client retries 408/409/429/5xx and connection errors with exponential backoff (`max_retries`,
honouring Retry-After) and bounds every call by `timeout`.

Default concurrency: 64 for a local or self-hosted server (vLLM / SGLang batch whatever is in flight, so the
engine stays full), 8 for the OpenAI API itself (rate limits: the 429 backoff takes over beyond that).
"""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Sequence

from .base import Backend, BackendUnavailable, Generation, Request, _describe, check_option_ranges, register_backend
from .options import cli_flag

DEFAULT_BASE_URL = "https://api.openai.com/v1"
SERVER_CONCURRENCY = 64  # a local vLLM / SGLang / transformers server
API_CONCURRENCY = 8  # the OpenAI API (and other rate-limited hosted APIs at api.openai.com)
CONNECTIONS_PER_CLIENT = 16


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
    max_retries: int = field(default=5, metadata=cli_flag("retries on 429/5xx/connection errors (default 5)"))
    extra_body: dict = field(default_factory=dict)  # server-specific fields, e.g. {"top_k": 1} for vLLM

    def __post_init__(self):
        check_option_ranges(self)


def data_url(image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def to_openai_messages(request: Request) -> list[dict]:
    """The chat with each `{"type": "image"}` item replaced by the next image as an `image_url` data URL."""
    images = iter(request.load_images())
    messages = []
    for message in request.messages:
        content = message["content"]
        if not isinstance(content, str):
            content = [
                {"type": "image_url", "image_url": {"url": data_url(next(images))}}
                if item["type"] == "image"
                else {"type": "text", "text": item["text"]}
                for item in content
            ]
        messages.append({"role": message["role"], "content": content})
    return messages


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
        self._async = None  # (event loop, [AsyncOpenAI], counter): async clients belong to the loop they run in
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

    def _kwargs(self) -> dict:
        opts = self.options
        kwargs = {"temperature": opts.temperature, "max_tokens": opts.max_new_tokens}
        if opts.top_p is not None:
            kwargs["top_p"] = opts.top_p
        if opts.seed is not None:
            kwargs["seed"] = opts.seed
        if opts.extra_body:
            kwargs["extra_body"] = opts.extra_body
        return kwargs

    def _one(self, request: Request) -> str:
        response = self.client.chat.completions.create(
            model=self.model, messages=to_openai_messages(request), **self._kwargs()
        )
        return response.choices[0].message.content or ""

    def _async_client(self):
        """Round-robin over small clients: httpcore's pool scans every connection for every request, so one
        pool of 128 connections spends more CPU than the requests (measured: benchmarks/bench_eval.py (a))."""
        from openai import AsyncOpenAI

        loop = asyncio.get_running_loop()
        if self._async is None or self._async[0] is not loop:
            import httpx

            count = -(-self.concurrency // CONNECTIONS_PER_CLIENT)
            clients = [
                AsyncOpenAI(
                    base_url=self.base_url, api_key=self._api_key, timeout=self.options.timeout,
                    max_retries=self.options.max_retries,
                    http_client=httpx.AsyncClient(limits=httpx.Limits(max_connections=self.concurrency,
                                                                      max_keepalive_connections=CONNECTIONS_PER_CLIENT),
                                                  timeout=self.options.timeout),
                )
                for _ in range(count)
            ]
            self._async = (loop, clients, itertools.count())
        _, clients, turn = self._async
        return clients[next(turn) % len(clients)]

    async def agenerate(self, request: Request) -> Generation:
        """One request, awaited: an error of the request comes back as `error`; a dead server raises."""
        client = self._async_client()
        start = time.perf_counter()
        try:
            # PNG encoding is CPU work: off the event loop, so the other lanes keep going.
            messages = await asyncio.to_thread(to_openai_messages, request) if request.images else to_openai_messages(request)
            response = await client.chat.completions.create(model=self.model, messages=messages, **self._kwargs())
            text = response.choices[0].message.content or ""
        except self.fatal_errors as error:
            raise BackendUnavailable(f"{self.where}: {_describe(error)}") from error
        except Exception as error:  # noqa: BLE001 - this request's failure, recorded as an error turn
            return Generation("", error=_describe(error), latency_s=time.perf_counter() - start)
        return Generation(text, latency_s=time.perf_counter() - start)

    async def aclose(self) -> None:
        if self._async is not None:
            for client in self._async[1]:
                await client.close()
            self._async = None

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
