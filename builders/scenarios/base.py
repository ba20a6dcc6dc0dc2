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
from collections import deque
from typing import Hashable, Protocol

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

    keys: dict[Hashable, int] = {}
    key_list: list[Hashable] = []
    specs: list[StateSpec] = []
    depth: list[int] = []
    moves: list[list[Move]] = []

    def add(key: Hashable, turn: int) -> int:
        if key not in keys:
            keys[key] = len(specs)
            key_list.append(key)
            specs.append(scenario.describe(entry, key))
            depth.append(turn)
            moves.append([])
        return keys[key]

    start = add(scenario.start(entry), 1)
    queue = deque([start])
    expanded: set[int] = set()
    while queue:
        index = queue.popleft()
        if index in expanded:
            continue
        expanded.add(index)
        key = key_list[index]
        for option in specs[index].valid:
            target_key = scenario.transition(entry, key, options[option].action)
            if target_key is None:
                continue
            target = add(target_key, depth[index] + 1)
            moves[index].append(Move(option, target))
            # Beyond the budget a state is never reached: it is kept (a last-turn move must point somewhere)
            # but not walked further.
            if depth[target] < max_turns:
                queue.append(target)

    frame_index: dict[FrameRef, int] = {}
    frames: list[Frame] = []

    def frame_of(ref: FrameRef) -> int:
        if ref not in frame_index:
            frame_index[ref] = len(frames)
            frames.append(materialize(ref, reader, entry.where))
        return frame_index[ref]

    states = []
    for index, spec in enumerate(specs):
        states.append(State(frame_of(spec.frame), list(spec.shown), moves[index], spec.accepts_answer))
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
        first_state=start,
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
