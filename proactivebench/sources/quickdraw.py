"""QuickDraw (details): more strokes per valid request; no move on the last turn (docs/protocol.md §4.5)."""

from __future__ import annotations

from .spec import SAMPLE_PROMPT, Entry, FrameRef, LinearSpec, strip_periods


class QuickDrawSpec(LinearSpec):
    name = "quickdraw"
    official_name = "QuickDraw"
    acronym = "QD"
    scenario = "details"
    position = 4
    license = "CC BY 4.0"
    citation = "Ha and Eck, A Neural Representation of Sketch Drawings, ICLR 2018"
    homepage = "https://github.com/googlecreativelab/quickdraw-dataset"
    action_space = ("stop", "details")
    hint_text = "Hint: Adding more details to the quickdraw could help with classification."
    oeg_threshold = 1
    cot_prompt = (  # ours, as for VSOD
        "I cannot tell what this drawing shows yet. Adding more details to the drawing might make it recognisable. "
        "So, first, I need to add more details and then answer the question. Therefore, the answer is:"
    )
    # The paper trains on QuickDraw (a subset disjoint from the benchmark) and COCO train: first in line.
    train_rank = 0
    train_image_marker = "quickdraw"

    def frame_path(self, entry: Entry, image_id: int) -> str:
        return entry.image_template.format(image=str(image_id).zfill(4))

    def frame(self, entry: Entry, turn: int, last_turn: bool) -> FrameRef:
        return FrameRef(self.frame_path(entry, entry.first_image + turn))

    def reference(self, entry: Entry) -> FrameRef:
        return FrameRef(self.frame_path(entry, entry.reference_image))

    def oeg_string(self, entry: Entry) -> str:
        return "Add more details to the drawing, " + strip_periods(entry.answer) + "."

    def release_sample(self) -> list[dict]:
        return [
            {
                "prompt": SAMPLE_PROMPT, "id": 0, "image_template": "QuickDraw/bed/0/{image}.png", "first_image": 0,
                "num_images": 3, "reference_image": 2,
                "options": ["I cannot answer this question.", "Make this drawing more complete."],
                "categories": ["The eiffel tower.", "Potato.", "Bed.", "Tooth."], "answer": "Bed.",
            }
        ]

    def release_images(self, entry: Entry) -> list[str]:
        return [self.frame_path(entry, i) for i in range(entry.num_images)]
