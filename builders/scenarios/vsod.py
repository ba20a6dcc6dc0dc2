"""VSOD (temporal occlusion): video frames, rewind / wait, circular (docs/protocol.md §4.2)."""

from __future__ import annotations

from .base import Entry, FrameRef, Scenario, StateSpec, strip_periods

VIDEO_PRE_PROMPT = "This is a frame extracted from a video. Answer the following question."


class VSODScenario(Scenario):
    source = "vsod"
    action_space = ("stop", "rewind", "forward")
    hint_text = (
        "Hint: If there is an occlusion, waiting for it to disappear or rewinding the video might reveal what's "
        "behind it."
    )
    pre_prompt = VIDEO_PRE_PROMPT
    oeg_threshold = 3

    def check(self, entry: Entry) -> None:
        entry.require("strong_occlusions", (bool, int))

    def frame_path(self, entry: Entry, image_id: int) -> str:
        return entry.image_template.format(image=str(image_id).zfill(4))

    def start(self, entry: Entry):
        return entry.first_image

    def describe(self, entry: Entry, key) -> StateSpec:
        return StateSpec(
            FrameRef(self.frame_path(entry, key)),
            shown=tuple(range(len(entry.options))),
            valid=self.non_abstain(entry),
            accepts_answer=True,
        )

    def transition(self, entry: Entry, key, action: str):
        return (key + (-1 if action == "rewind" else 1)) % entry.num_images

    def reference(self, entry: Entry) -> FrameRef:
        return FrameRef(self.frame_path(entry, entry.reference_image))

    def oeg_string(self, entry: Entry) -> str:
        return (
            "Wait for the occlusion to disappear, Rewind the video, Move the camera, "
            + ", ".join(strip_periods(c) for c in [entry.answer])
            + "."
        )
