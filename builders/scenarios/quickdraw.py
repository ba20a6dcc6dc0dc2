"""QuickDraw (details): more strokes per valid request; no move on the last turn (docs/protocol.md §4.5)."""

from __future__ import annotations

from .base import Entry, FrameRef, LinearScenario, strip_periods


class QuickDrawScenario(LinearScenario):
    source = "quickdraw"
    action_space = ("stop", "details")
    hint_text = "Hint: Adding more details to the quickdraw could help with classification."
    oeg_threshold = 1

    def frame_path(self, entry: Entry, image_id: int) -> str:
        return entry.image_template.format(image=str(image_id).zfill(4))

    def frame(self, entry: Entry, turn: int, last_turn: bool) -> FrameRef:
        return FrameRef(self.frame_path(entry, entry.first_image + turn))

    def reference(self, entry: Entry) -> FrameRef:
        return FrameRef(self.frame_path(entry, entry.reference_image))

    def oeg_string(self, entry: Entry) -> str:
        return "Add more details to the drawing, " + strip_periods(entry.answer) + "."
