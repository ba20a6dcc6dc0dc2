"""MVP-N (viewpoint): rotate through the valid views; the informative view on the last turn (docs/protocol.md §4.3)."""

from __future__ import annotations

from .spec import SAMPLE_PROMPT, Entry, FrameRef, LinearSpec


class MVPNSpec(LinearSpec):
    name = "mvpn"
    official_name = "MVP-N"
    acronym = "MVP-N"
    scenario = "viewpoint"
    position = 2
    license = "non-commercial research use"
    citation = (
        "Wang et al., MVP-N: A Dataset and Benchmark for Real-World Multi-View Object Classification, "
        "NeurIPS 2022 Datasets and Benchmarks"
    )
    homepage = "https://github.com/SMNUResearch/MVP-N"
    action_space = ("stop", "rotate")
    hint_text = "Hint: rotating the object could provide a more informative view."
    oeg_threshold = 2
    cot_prompt = (
        "I cannot tell which object is this. Rotating the object or changing the viewpoint might provide a more "
        "informative view. So, first, I need to rotate the object or change the viewpoint and then answer the "
        "question. Therefore, the answer is:"
    )
    icl_resize = 112
    shot_policy = "lowest_move_walk"
    train_rank = 4

    def check(self, entry: Entry) -> None:
        valid_images = entry.require("valid_images", list)
        if len(valid_images) < entry.num_images or not all(isinstance(v, int) for v in valid_images):
            raise entry.fail(f"valid_images {valid_images!r} must hold num_images={entry.num_images} ints")

    def frame_path(self, entry: Entry, image_id: int, informative: int) -> str:
        return entry.image_template.format(informative=informative, image=str(image_id).zfill(4))

    def frame(self, entry: Entry, turn: int, last_turn: bool) -> FrameRef:
        # After k rotations the view is valid_images[k]; the informative version only on the last turn.
        image_id = entry.first_image if turn == 0 else entry.extra["valid_images"][turn]
        return FrameRef(self.frame_path(entry, image_id, int(last_turn)))

    def reference(self, entry: Entry) -> FrameRef:
        return FrameRef(self.frame_path(entry, entry.reference_image, 1))

    def oeg_string(self, entry: Entry) -> str:
        return "Rotate the object, Move the camera."

    def release_sample(self) -> list[dict]:
        return [
            {
                "prompt": SAMPLE_PROMPT, "id": 5, "image_template": "MVP-N/obj/{informative}/{image}.png", "first_image": 3,
                "num_images": 3, "reference_image": 9, "valid_images": [3, 7, 9],
                "options": ["Rotate the object.", "I do not know what is this object."],
                "categories": ["Shampoo.", "Lotion.", "Soap.", "Gel."], "answer": "Soap.",
            }
        ]

    def release_images(self, entry: Entry) -> list[str]:
        return [self.frame_path(entry, i, k) for i in entry.extra["valid_images"] for k in (0, 1)]
