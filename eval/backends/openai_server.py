"""`openai:<model>`: any OpenAI-compatible chat server (vLLM, SGLang, `transformers serve`, the OpenAI API).

Images travel as PNG data URLs (lossless: the server sees the frame's exact pixels). Requests of a batch run
concurrently up to `concurrency`; the `openai` client retries 408/409/429/5xx and connection errors with
exponential backoff (`max_retries`) and bounds every call by `timeout`.
"""

from __future__ import annotations

import base64
import io
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Sequence

from .base import Backend, Generation, Request, register_backend

DEFAULT_BASE_URL = "https://api.openai.com/v1"


@dataclass
class OpenAIOptions:
    base_url: str | None = None  # default: $OPENAI_BASE_URL, then the OpenAI API
    api_key: str | None = None  # default: $OPENAI_API_KEY ("EMPTY" for local servers that ignore it)
    max_new_tokens: int = 50
    temperature: float = 0.0  # greedy
    top_p: float | None = None
    seed: int | None = 0
    concurrency: int = 8
    timeout: float = 120.0
    max_retries: int = 5
    extra_body: dict = field(default_factory=dict)  # server-specific fields, e.g. {"top_k": 1} for vLLM


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
        self.pool = ThreadPoolExecutor(max_workers=max(1, self.options.concurrency))

    @property
    def model_name(self) -> str:
        return self.model

    def config(self) -> dict:
        options = asdict(self.options)
        options.pop("api_key")  # never store a secret in the results
        options["base_url"] = self.base_url
        return {**super().config(), **options}

    def _one(self, request: Request) -> str:
        opts = self.options
        kwargs = {"temperature": opts.temperature, "max_tokens": opts.max_new_tokens}
        if opts.top_p is not None:
            kwargs["top_p"] = opts.top_p
        if opts.seed is not None:
            kwargs["seed"] = opts.seed
        if opts.extra_body:
            kwargs["extra_body"] = opts.extra_body
        response = self.client.chat.completions.create(
            model=self.model, messages=to_openai_messages(request), **kwargs
        )
        return response.choices[0].message.content or ""

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


make_openai.OPTIONS = tuple(OpenAIOptions.__dataclass_fields__)
