"""The backend interface: a batch of requests (a chat with images) in, one generated text per request out.

A request is a chat in the transformers content-list form (`{"type": "image"}` items mark where images go)
plus the images in order, so every backend, and any later multi-turn or few-shot mode, shares one message
format. A failing request never sinks its batch: the batch is retried one request at a time and only the
failing one comes back with `error` set (the runner records it as an error turn).
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Callable, Sequence

log = logging.getLogger(__name__)

ImageSource = Any  # a PIL image, or a zero-argument callable returning one (decoded only if a backend needs pixels)


@dataclass(frozen=True, eq=False)
class StoredImage:
    """A frame as the dataset stores it (PNG / JPEG bytes): an `ImageSource` that decodes on call, and whose bytes
    a server backend can send as they are instead of decoding and encoding them again every turn."""

    data: bytes

    def __call__(self):
        from proactivebench.engine import decode_image

        return decode_image(self.data)


@dataclass(frozen=True, eq=False)
class DerivedImage:
    """A stored frame transformed when decoded (a history or few-shot image resized to `tag` px): an `ImageSource`
    whose result is named by (its bytes, `tag`), so a server backend encodes it once however many turns and
    episodes send it again."""

    data: bytes
    transform: Callable[[Any], Any]
    tag: Any

    def __call__(self):
        from proactivebench.engine import decode_image

        return self.transform(decode_image(self.data))


def frame_source(frames: Sequence[Any], index: int) -> ImageSource:
    """Frame `index` of a row's frames as an `ImageSource`: a `StoredImage` when the frame carries its bytes."""
    frame = frames[index]
    data = frame.get("bytes") if isinstance(frame, dict) else None
    if data:
        return StoredImage(bytes(data))
    from proactivebench.engine import decode_image

    return lambda: decode_image(frame)


@dataclass
class Request:
    messages: list[dict]  # [{"role": ..., "content": str | [{"type": "image"} | {"type": "text", "text": ...}]}]
    images: list[ImageSource] = field(default_factory=list)  # one per image item, in order
    context: Any = None  # the live Episode (baselines read its graph instead of the pixels)
    key: str = ""  # a stable identity, e.g. "<sample_id>/<turn>", for seeded randomness independent of batching

    def load_images(self) -> list:
        return [image() if callable(image) else image for image in self.images]

    @property
    def prompt(self) -> str:
        """The text of the last user message (the single-turn prompt)."""
        for message in reversed(self.messages):
            if message["role"] == "user":
                content = message["content"]
                if isinstance(content, str):
                    return content
                return "".join(item.get("text", "") for item in content if item.get("type") == "text")
        return ""


@dataclass
class Generation:
    text: str
    error: str = ""  # non-empty when the backend call failed for this request
    latency_s: float = 0.0  # wall time of the backend call that produced it (shared by a batch)


def single_turn(prompt: str, images: Sequence[ImageSource] = (), context: Any = None, key: str = "") -> Request:
    """One user message: the images first, then the text (the reference's order, docs/protocol.md §1.5)."""
    content = [{"type": "image"} for _ in images] + [{"type": "text", "text": prompt}]
    return Request([{"role": "user", "content": content}], list(images), context, key)


class BackendUnavailable(ValueError):
    """The backend itself failed (server unreachable, bad credentials, unknown model): stop the run, resume later,
    rather than record every remaining turn as an error."""


class Backend(ABC):
    """Subclasses implement `_generate(requests) -> texts`; `generate` adds timing and error isolation."""

    kind: str = ""  # the spec prefix: hf, openai, baseline
    needs_images: bool = True  # False lets the runner skip decoding frames
    default_batch_size: int = 8
    fatal_errors: tuple[type[BaseException], ...] = ()  # errors that mean the backend, not the request, is broken

    def __init__(self, spec: str):
        self.spec = spec

    @abstractmethod
    def _generate(self, requests: Sequence[Request]) -> list[str]: ...

    def config(self) -> dict:
        """Everything that changes the outputs, for the run's config_json."""
        return {"spec": self.spec, "kind": self.kind}

    @property
    def where(self) -> str:
        """What a fatal error names: the spec, and for a server its URL."""
        return self.spec

    @property
    def model_name(self) -> str:
        return self.spec.split(":", 1)[1] if ":" in self.spec else self.spec

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        if not requests:
            return []
        start = time.perf_counter()
        try:
            texts = self._generate(requests)
        except self.fatal_errors as error:
            raise BackendUnavailable(f"{self.where}: {_describe_unavailable(error)}") from error
        except Exception as error:  # noqa: BLE001 - isolate the failing request below
            if len(requests) == 1:
                log.debug("backend call failed", exc_info=True)
                return [Generation("", error=_describe(error), latency_s=time.perf_counter() - start)]
            return [g for request in requests for g in self.generate([request])]
        elapsed = time.perf_counter() - start
        if len(texts) != len(requests):
            raise RuntimeError(f"{self.spec}: {len(texts)} outputs for {len(requests)} requests")
        return [Generation(text, latency_s=elapsed) for text in texts]

    def close(self) -> None:
        """Release what the backend holds (a server connection, a model)."""


def _describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:500]


def _root_cause(error: BaseException) -> BaseException:
    """The first error of the chain an error was raised from (HTTP clients wrap the socket's error twice)."""
    root, seen = error, {id(error)}
    while (below := root.__cause__ or (None if root.__suppress_context__ else root.__context__)) is not None \
            and id(below) not in seen:
        root = below
        seen.add(id(root))
    return root


def _describe_unavailable(error: BaseException) -> str:
    """A fatal error with its root cause when that says more ("Connection error." alone does not say what failed)."""
    root = _root_cause(error)
    described = _describe(error)
    if root is not error and str(root).strip() and str(root).strip() != str(error).strip():
        described += f" ({_describe(root)})"
    return described[:500]


# --- option ranges: one rule per option name, shared by every backend's option dataclass -------------------------

OPTION_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "max_new_tokens": (lambda v: v >= 1, "must be at least 1"),
    "temperature": (lambda v: v >= 0, "must be 0 (greedy) or more"),
    "top_p": (lambda v: 0 < v <= 1, "must be in (0, 1]"),
    "timeout": (lambda v: v > 0, "must be more than 0 seconds"),
    "max_retries": (lambda v: v >= 0, "must be 0 or more"),
    "concurrency": (lambda v: v >= 1, "must be at least 1"),
}


def check_option_ranges(options: Any) -> None:
    """Refuse an out-of-range option of a backend's option dataclass in one line (`--timeout 0` would make every
    request fail, `--max-new-tokens 0` generate nothing, a negative temperature error on every request)."""
    for name, (ok, rule) in OPTION_RULES.items():
        value = getattr(options, name, None)
        if value is not None and not ok(value):
            flag = "--" + name.replace("_", "-")
            raise ValueError(f"{flag} {value}: {rule}")


# --- the spec registry ----------------------------------------------------------------------------------------

BackendFactory = Callable[..., Backend]
BACKENDS: dict[str, BackendFactory] = {}


def register_backend(kind: str):
    def decorate(factory: BackendFactory) -> BackendFactory:
        BACKENDS[kind] = factory
        return factory

    return decorate


def parse_spec(spec: str) -> tuple[str, str]:
    kind, sep, target = spec.partition(":")
    if not sep or not target:
        raise ValueError(
            f"model spec {spec!r} must look like hf:<id or dir>, openai:<model> or baseline:<name>"
        )
    return kind, target


def discover_backends() -> dict[str, BackendFactory]:
    """Every backend of this package: each module registers its factory on import (no list to keep)."""
    from proactivebench.discovery import import_submodules

    import_submodules(__package__)
    return BACKENDS


def check_spec(spec: str) -> BackendFactory:
    """The factory for a spec, or a one-line error; cheap (loads no model), so commands can fail fast."""
    discover_backends()

    kind, _ = parse_spec(spec)
    try:
        return BACKENDS[kind]
    except KeyError:
        raise ValueError(f"unknown backend {kind!r} in {spec!r}; expected one of {', '.join(sorted(BACKENDS))}") from None


def load_backend(spec: str, **options) -> Backend:
    """`hf:<id or dir>[+<adapter dir>]`, `openai:<model>`, `baseline:<name>`; options go to the backend."""
    factory = check_spec(spec)
    kind, target = parse_spec(spec)
    check_option_ranges(SimpleNamespace(**options))  # also options a kind ignores: a bad value is never silent
    known = {name for f in BACKENDS.values() for name in getattr(f, "OPTIONS", ())}
    unknown = sorted(k for k in options if k not in known)
    if unknown:  # a typo (e.g. in a roster file's options) is an error, not an option silently dropped
        raise ValueError(f"unknown backend option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    accepted = getattr(factory, "OPTIONS", None)
    if accepted is not None:
        # One option set serves every kind (the CLI, curation and GRPO pass the same dict): drop what a kind
        # does not use rather than fail on, say, max_new_tokens for a baseline.
        dropped = sorted(k for k in options if k not in accepted)
        if dropped:
            log.debug("%s ignores options %s", kind, ", ".join(dropped))
        options = {k: v for k, v in options.items() if k in accepted and v is not None}
    return factory(target, **options)
