"""Conversation-history mode (`eval --history`, docs/protocol.md §5.1): every earlier turn stays in the chat.

The request for turn t is a real multi-turn message list, oldest first:

    user(image_0, prompt_0), assistant(output_0), ..., user(image_{t-1}, prompt_{t-1}), assistant(output_{t-1}),
    user(image_t, prompt_t)

with the model's own earlier outputs as the assistant turns (verbatim, as the engine recorded them). Every image
in the conversation, the current one included, is resized to a `size` px short edge (default 224, the paper's
setting for history runs, docs/protocol.md §3.2's resize); size 0 keeps the frames as stored. Images are decoded lazily
(callables), so the baselines, which read the episode instead of the pixels, never decode them.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from .backends import DerivedImage, Request, frame_source
from proactivebench.engine import decode_image

HISTORY_SIZE = 224  # docs/protocol.md §5.1: "all images were resized to a 224 px short edge"


def resize_short_edge(image, size: int | None):
    """The reference's resize (docs/protocol.md §3.2): short edge to `size`, the other edge scaled and truncated."""
    if not size:
        return image
    width, height = image.size
    short = min(width, height)
    return image.resize((int(width * size / short), int(height * size / short)))


def frame_image(frames, index: int, size: int | None) -> Callable[[], Any]:
    """One frame as an image source, decoded (and resized) only if a backend asks for pixels. A stored frame
    becomes a `StoredImage` (size 0) or a `DerivedImage` named by its bytes and size: a server backend then
    encodes each resized frame once, not on every turn that re-sends the conversation."""
    if not size:
        return frame_source(frames, index)
    data = frames[index].get("bytes") if isinstance(frames[index], dict) else None
    if data:
        return DerivedImage(data, functools.partial(resize_short_edge, size=size), size)
    return lambda: resize_short_edge(decode_image(frames[index]), size)


def user_message(prompt: str) -> dict:
    """A user turn: the image, then the text (the reference's single-turn order, docs/protocol.md §1.5)."""
    return {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}


def assistant_message(text: str) -> dict:
    # Content lists everywhere: processor chat templates iterate them, and the OpenAI messages array accepts them.
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


def history_turns(episode, observation, size: int | None) -> tuple[list[dict], list]:
    """(messages, images) of the episode so far plus its current turn."""
    frames = episode.row["frames"]
    messages: list[dict] = []
    images: list = []
    for turn in episode.turns:
        messages += [user_message(turn.prompt), assistant_message(turn.output)]
        images.append(frame_image(frames, turn.frame, size))
    messages.append(user_message(observation.prompt))
    images.append(frame_image(frames, observation.frame, size))
    return messages, images


def history_request_maker(size: int | None = HISTORY_SIZE) -> Callable[[Any, Any], Request]:
    """A `Mode.make_request` for history runs."""

    def make_request(episode, observation) -> Request:
        messages, images = history_turns(episode, observation, size)
        return Request(messages, images, context=episode, key=f"{episode.sample_id}/{len(episode.turns)}")

    return make_request
