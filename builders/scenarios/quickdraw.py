"""QuickDraw (details): the drawing gains strokes with each valid request; no move on the last turn (§4.5)."""

from __future__ import annotations

from .base import Entry, FrameRef, Scenario, StateSpec, strip_periods


class QuickDrawScenario(Scenario):
    source = "quickdraw"
    action_space = ("stop", "details")
    hint_text = "Hint: Adding more details to the quickdraw could help with classification."
    oeg_threshold = 1

    def frame_path(self, entry: Entry, image_id: int) -> str:
        return entry.image_template.format(image=str(image_id).zfill(4))

    def start(self, entry: Entry):
        return 0

    def describe(self, entry: Entry, turn) -> StateSpec:
        last_turn = turn + 1 == entry.num_images
        return StateSpec(
            FrameRef(self.frame_path(entry, entry.first_image + turn)),
            shown=tuple(range(len(entry.options))),
            valid=() if last_turn else self.non_abstain(entry),
            accepts_answer=True,
        )

    def transition(self, entry: Entry, turn, action: str):
        return turn + 1

    def reference(self, entry: Entry) -> FrameRef:
        return FrameRef(self.frame_path(entry, entry.reference_image))

    def oeg_string(self, entry: Entry) -> str:
        return "Add more details to the drawing, " + strip_periods(entry.answer) + "."
