"""ROD (occlusion): a 14-frame occluder sweep, circular, no answer on the first turn (docs/protocol.md §4.1)."""

from __future__ import annotations

from .spec import SAMPLE_PROMPT, Entry, FrameRef, SourceSpec, StateSpec

# The one ROD frame missing from the source; the reference shows a neighbour instead (docs/protocol.md §4.1).
MISSING_FRAME = "natural_bluebl_greenr-banana-s6"


SAMPLE_OPTIONS = ["Move the red blocks to the left.", "Move the red blocks to the right.", "I cannot tell."]


class RODSpec(SourceSpec):
    name = "rod"
    official_name = "Realistic-Occlusion-Dataset"
    acronym = "ROD"
    scenario = "occlusion"
    position = 0
    license = "other (see the ROD card)"
    citation = "Lee et al., Hardwiring ViT Patch Selectivity into CNNs using Patch Mixing, arXiv:2306.17848, 2023"
    homepage = "https://huggingface.co/datasets/arielnlee/Realistic-Occlusion-Dataset"
    action_space = ("stop", "left", "right")
    hint_text = "Hint: moving the occluding object might reveal what is behind it."
    reference_question = "What type of object is in the image?"
    oeg_threshold = 2
    cot_prompt = (
        "I cannot see what is behind the occluding object. Moving the occluding object might reveal its position. "
        "So, first, I need to move the occluding object and then answer the question. Therefore, the answer is:"
    )
    icl_resize = 512
    shot_policy = "one_random_move"
    train_rank = 2

    # key: (is_first_turn, image id, last action); the last action only matters for the missing frame.
    def start(self, entry: Entry):
        return (True, entry.first_image, None)

    def frame_path(self, entry: Entry, image_id: int, last_action: str | None) -> str:
        path = entry.image_template.format(image=image_id)
        if MISSING_FRAME in path:
            path = path.replace("s6", "s5" if last_action == "left" else "s7")
        return path

    def describe(self, entry: Entry, key) -> StateSpec:
        first_turn, image_id, last_action = key
        everything = tuple(range(len(entry.options)))
        return StateSpec(
            FrameRef(self.frame_path(entry, image_id, last_action)),
            shown=everything,
            valid=self.non_abstain(entry),
            accepts_answer=not first_turn,
        )

    def transition(self, entry: Entry, key, action: str):
        _, image_id, _ = key
        step = -1 if action == "left" else 1
        target = (image_id + step) % entry.num_images
        # Fold the last action away where it does not change the frame, so each frame is one state.
        remembered = action if MISSING_FRAME in entry.image_template.format(image=target) else None
        return (False, target, remembered)

    def reference(self, entry: Entry) -> FrameRef:
        return FrameRef(entry.image_template.format(image=entry.reference_image))

    def oeg_string(self, entry: Entry) -> str:
        return "Move the blocks, Move the camera."

    def release_sample(self) -> list[dict]:
        return [
            {
                "prompt": SAMPLE_PROMPT, "id": 0, "image_template": "ROD/natural_bluebl_greenr-banana-s{image}.jpg",
                "first_image": 7, "num_images": 14, "reference_image": 0, "options": SAMPLE_OPTIONS,
                "categories": ["Screwdriver.", "Banana.", "Vase.", "Spatula."], "answer": "Banana.",
            },
            {
                "prompt": SAMPLE_PROMPT, "id": 1, "image_template": "ROD/kitchen_white_box-cup-s{image}.jpg",
                "first_image": 7, "num_images": 14, "reference_image": 0, "options": SAMPLE_OPTIONS[::-1],
                "categories": ["Cup.", "Plate.", "Hammer.", "Mouse."], "answer": "Cup.",
            },
        ]

    def release_images(self, entry: Entry) -> list[str]:
        paths = [entry.image_template.format(image=i) for i in range(entry.num_images)]
        return [p for p in paths if MISSING_FRAME not in p]  # that frame is missing from the source
