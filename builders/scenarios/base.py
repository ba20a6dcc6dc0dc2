"""The generic walk that turns one entry into an episode, given its source's spec (`proactivebench.sources`).

An `Entry` is the authors' jsonl record (docs/protocol.md §1.7). Builders of the raw sources produce the same
entries, with image paths relative to the raw folder, so the importer and the builders share everything
below and differ only in where the frame bytes come from (`FrameReader`).

A spec describes the reference environment as a small state machine over hashable keys: `start`,
`describe(key)` and `transition(key, action)`. `entry_to_episode` walks it breadth first up to the turn budget,
so the stored state graph is exactly the set of situations the reference can reach.
"""

from __future__ import annotations

import io
from typing import Hashable, Protocol

from proactivebench.graph import walk
from proactivebench.schema import EpisodeRecord, Frame, Move, State
from proactivebench.sources.spec import Entry, EntryError, FrameRef, SourceSpec, StateSpec, oeg_items


class FrameReader(Protocol):
    def read(self, path: str, where: str) -> bytes: ...

    # Optional: `origin(path) -> str`, the file on disk (or the archive member, video second...) a frame path
    # stands for, so an error names what the user can open; without it the frame path is named.


def origin(reader: FrameReader, path: str) -> str:
    """The file on disk behind a frame path, for messages."""
    describe = getattr(reader, "origin", None)
    return describe(path) if describe is not None else path


def entry_to_episode(entry: Entry, scenario: SourceSpec, reader: FrameReader) -> EpisodeRecord:
    scenario.check(entry)
    if entry.answer not in entry.categories:
        raise entry.fail(f"answer {entry.answer!r} is not in categories {entry.categories!r}")
    options = scenario.options(entry)
    max_turns = scenario.max_turns(entry)

    specs: dict[Hashable, StateSpec] = {}
    edges: dict[Hashable, list[tuple[int, Hashable]]] = {}

    def spec(key: Hashable) -> StateSpec:
        if key not in specs:
            specs[key] = scenario.describe(entry, key)
        return specs[key]

    def moves_from(key: Hashable) -> list[tuple[int, Hashable]]:
        edges[key] = []
        for option in spec(key).valid:
            target = scenario.transition(entry, key, options[option].action)
            if target is not None:
                edges[key].append((option, target))
        return edges[key]

    # Every state the reference can reach within the budget, numbered in the order the walk sees them. A state
    # first seen on the last turn is kept (a last-turn move must point somewhere) but not walked further; the
    # start's moves are stored even with a one-turn budget, hence at least two turns here.
    keys = list(walk(scenario.start(entry), moves_from, max(max_turns, 2)).depth)
    index = {key: i for i, key in enumerate(keys)}

    frame_index: dict[FrameRef, int] = {}
    frames: list[Frame] = []

    def frame_of(ref: FrameRef) -> int:
        if ref not in frame_index:
            frame_index[ref] = len(frames)
            frames.append(materialize(ref, reader, entry.where))
        return frame_index[ref]

    states = []
    for key in keys:
        here = spec(key)
        moves = [Move(option, index[target]) for option, target in edges.get(key, [])]
        states.append(State(frame_of(here.frame), list(here.shown), moves, here.accepts_answer))
    reference_frame = frame_of(scenario.reference(entry))

    oeg = oeg_items(scenario.oeg_string(entry))
    record = EpisodeRecord(
        sample_id=f"{scenario.name}-{entry.id:06d}",
        source=scenario.name,
        source_id=entry.id,
        scenario=scenario.scenario,
        question=entry.prompt,
        pre_prompt=scenario.pre_prompt,
        hint=scenario.hint(entry),
        reference_question=scenario.reference_question,
        options=options,
        categories=list(entry.categories),
        answer=entry.answer,
        frames=frames,
        states=states,
        first_state=0,  # the walk sees its start first
        reference_frame=reference_frame,
        max_turns=max_turns,
        oeg_answers=oeg,
        oeg_proactive_count=min(scenario.oeg_threshold, len(oeg)),
        meta={
            "image_template": entry.image_template,
            "first_image": entry.first_image,
            "num_images": entry.num_images,
            "reference_image": entry.reference_image,
            **{k: v for k, v in entry.extra.items()},
            **scenario.meta(entry),
        },
    )
    try:
        return record.validate()
    except ValueError as error:
        raise entry.fail(str(error)) from None


def materialize(ref: FrameRef, reader: FrameReader, where: str) -> Frame:
    data = reader.read(ref.path, where)
    if ref.crop is None:
        check_decodes(data, origin(reader, ref.path), where)
        return Frame(data, ref.path)
    from PIL import Image

    try:
        image = Image.open(io.BytesIO(data)).convert("RGB")
    except Exception as error:  # PIL raises several types for corrupt files
        raise EntryError(f"{where}: image {origin(reader, ref.path)} does not decode: {error}") from None
    left, upper, right, lower = ref.crop
    width, height = image.size
    if right <= 0 or lower <= 0 or left >= width or upper >= height or right <= left or lower <= upper:
        raise EntryError(
            f"{where}: crop {ref.crop} lies entirely outside image {ref.path!r} of size {width}x{height}"
        )
    # PIL rounds float boxes and pads the outside with black, exactly as the reference's transform does.
    cropped = image.crop(ref.crop)
    buffer = io.BytesIO()
    cropped.save(buffer, format="PNG")
    return Frame(buffer.getvalue(), ref.name)


def check_decodes(data: bytes, path: str, where: str) -> None:
    """`path` names the file on disk (or what the bytes came from) in the error."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format == "JPEG":
                # Decode at 1/8 scale: libjpeg still entropy-decodes every scan to the end, so a truncated or
                # corrupt stream fails exactly as in a full decode, but most of the inverse DCT and upsampling
                # is skipped (a third to a half of the time). The stored bytes are untouched.
                image.draft(image.mode, (1, 1))
            image.load()
    except Exception as error:
        raise EntryError(f"{where}: image {path} does not decode: {error}") from None
