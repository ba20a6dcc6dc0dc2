"""MVP-N (viewpoint): rotate through the valid views; the informative view is shown on the last turn (§4.3)."""

from __future__ import annotations

from .base import Entry, FrameRef, Scenario, StateSpec


class MVPNScenario(Scenario):
    source = "mvpn"
    action_space = ("stop", "rotate")
    hint_text = "Hint: rotating the object could provide a more informative view."
    oeg_threshold = 2
    cot_prompt = (
        "I cannot tell which object is this. Rotating the object or changing the viewpoint might provide a more "
        "informative view. So, first, I need to rotate the object or change the viewpoint and then answer the "
        "question. Therefore, the answer is:"
    )
    icl_resize = 112

    def check(self, entry: Entry) -> None:
        valid_images = entry.require("valid_images", list)
        if len(valid_images) < entry.num_images or not all(isinstance(v, int) for v in valid_images):
            raise entry.fail(f"valid_images {valid_images!r} must hold num_images={entry.num_images} ints")

    def frame_path(self, entry: Entry, image_id: int, informative: int) -> str:
        return entry.image_template.format(informative=informative, image=str(image_id).zfill(4))

    # key: the turn; the view after k rotations is valid_images[k].
    def start(self, entry: Entry):
        return 0

    def describe(self, entry: Entry, turn) -> StateSpec:
        image_id = entry.first_image if turn == 0 else entry.extra["valid_images"][turn]
        last_turn = turn + 1 == entry.num_images
        return StateSpec(
            FrameRef(self.frame_path(entry, image_id, int(last_turn))),
            shown=tuple(range(len(entry.options))),
            valid=() if last_turn else self.non_abstain(entry),
            accepts_answer=True,
        )

    def transition(self, entry: Entry, turn, action: str):
        return turn + 1

    def reference(self, entry: Entry) -> FrameRef:
        return FrameRef(self.frame_path(entry, entry.reference_image, 1))

    def oeg_string(self, entry: Entry) -> str:
        return "Rotate the object, Move the camera."
