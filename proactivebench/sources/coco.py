"""COCO (camera movement): a crop grows towards a direction; each reachable crop is a frame (docs/protocol.md §4.7)."""

from __future__ import annotations

from .spec import Entry, FrameRef, SourceSpec, StateSpec, strip_periods

MOVE_OPTIONS = {
    "left": "Move the camera to the left.",
    "right": "Move the camera to the right.",
    "up": "Move the camera up.",
    "down": "Move the camera down.",
}
ZOOM_OPTION = "Move farther from the object."
CROP_KEYS = ("top", "left", "height", "width")


def grown_step(step0: float, moves: int) -> float:
    """The step after `moves` moves, computed iteratively in floats exactly as the reference does."""
    step = step0
    for n in range(1, moves + 1):
        step = step / n * (n + 1)
    return step


class COCOSpec(SourceSpec):
    name = "coco"
    official_name = "coco2014"
    acronym = "COCO"
    scenario = "camera_movement"
    position = 6
    license = "CC BY 4.0 (annotations); Flickr terms for images"
    citation = "Lin et al., Microsoft COCO: Common Objects in Context, ECCV 2014"
    homepage = "https://cocodataset.org"
    action_space = ("stop", "up", "down", "left", "right", "zoom")
    oeg_threshold = 2
    cot_prompt = (  # ours, as for VSOD
        "I cannot tell what the object is from this view. Moving the camera or moving farther from the object might "
        "show it entirely. So, first, I need to move the camera and then answer the question. Therefore, the "
        "answer is:"
    )
    train_rank = 1  # after QuickDraw: ROD's left/right also fit COCO
    train_image_marker = "coco"
    release_image_size = (640, 480)  # room for the sample's crops

    def check(self, entry: Entry) -> None:
        direction = entry.require("direction", str)
        if direction != "zoom" and not any(d in direction for d in MOVE_OPTIONS):
            raise entry.fail(f"unknown direction {direction!r}")
        if entry.require("granularity", int) < 1:
            raise entry.fail("granularity must be at least 1")
        entry.require("horizontal_step", (int, float))
        entry.require("vertical_step", (int, float))
        crop = entry.require("crop", dict)
        for key in CROP_KEYS:
            if not isinstance(crop.get(key), (int, float)) or isinstance(crop.get(key), bool):
                raise entry.fail(f"crop is missing the number {key!r}")
        if not 0 <= entry.first_image < entry.num_images:
            raise entry.fail(f"first_image {entry.first_image} is not below num_images {entry.num_images}")

    def is_zoom(self, entry: Entry) -> bool:
        return "zoom" in entry.extra["direction"]

    def hint(self, entry: Entry) -> str:
        if self.is_zoom(entry):
            return "Hint: zooming out could help with classification."
        return "Hint: moving the camera could help with classification."

    def max_turns(self, entry: Entry) -> int:
        g = entry.extra["granularity"]
        if self.is_zoom(entry):
            return g + 1
        return g if "_" not in entry.extra["direction"] else 2 * g

    def limits(self, entry: Entry) -> tuple[float, float]:
        direction, g = entry.extra["direction"], entry.extra["granularity"]
        h0, v0 = entry.extra["horizontal_step"], entry.extra["vertical_step"]
        if self.is_zoom(entry):
            return h0 * (g + 1), v0 * (g + 1)
        max_v = v0 * g if ("up" in direction or "down" in direction) else 0
        max_h = h0 * g if ("left" in direction or "right" in direction) else 0
        return max_h, max_v

    def box(self, entry: Entry, hs: float, vs: float) -> tuple[float, float, float, float]:
        crop, direction = entry.extra["crop"], entry.extra["direction"]
        top = crop["top"] - vs if ("up" in direction or "zoom" in direction) else crop["top"]
        left = crop["left"] - hs if ("left" in direction or "zoom" in direction) else crop["left"]
        lower = crop["height"] + vs if ("down" in direction or "zoom" in direction) else crop["height"]
        right = crop["width"] + hs if ("right" in direction or "zoom" in direction) else crop["width"]
        if direction == "zoom":
            lower += crop["top"]
            right += crop["left"]
        return (left, top, right, lower)

    # key: (horizontal moves, vertical moves)
    def start(self, entry: Entry):
        return (0, 0)

    def steps(self, entry: Entry, key) -> tuple[float, float]:
        nh, nv = key
        return grown_step(entry.extra["horizontal_step"], nh), grown_step(entry.extra["vertical_step"], nv)

    def pruned(self, entry: Entry, key, indices: tuple[int, ...]) -> tuple[int, ...]:
        hs, vs = self.steps(entry, key)
        max_h, max_v = self.limits(entry)
        removed: set[str] = set()
        if entry.extra["direction"] == "zoom" and hs == max_h:  # float equality, as the reference
            removed.add(ZOOM_OPTION)
        else:
            if hs >= max_h:
                removed |= {MOVE_OPTIONS["left"], MOVE_OPTIONS["right"]}
            if vs >= max_v:
                removed |= {MOVE_OPTIONS["up"], MOVE_OPTIONS["down"]}
        return tuple(i for i in indices if entry.options[i] not in removed)

    def describe(self, entry: Entry, key) -> StateSpec:
        hs, vs = self.steps(entry, key)
        return StateSpec(
            FrameRef(entry.image_template, crop=self.box(entry, hs, vs)),
            shown=self.pruned(entry, key, tuple(range(len(entry.options)))),
            valid=self.pruned(entry, key, self.non_abstain(entry)),
            accepts_answer=True,
        )

    def transition(self, entry: Entry, key, action: str):
        nh, nv = key
        if action in ("left", "right"):
            return (nh + 1, nv)
        if action in ("up", "down"):
            return (nh, nv + 1)
        if action == "zoom":
            return (nh + 1, nv + 1)
        return None

    def reference(self, entry: Entry) -> FrameRef:
        return FrameRef(entry.image_template)

    def oeg_string(self, entry: Entry) -> str:
        return "Move the camera, Move farther from the object, " + strip_periods(entry.answer) + "."

    def release_sample(self) -> list[dict]:
        return [
            _sample_entry(0, "up_left", 3, 10, 20, ["I cannot tell.", "Move the camera up.", "Move the camera to the left."]),
            _sample_entry(1, "zoom", 3, 5, 7, ["Move farther from the object.", "I cannot tell."]),
            _sample_entry(2, "right", 3, 10, 20, ["I cannot tell.", "Move the camera to the right."]),
            # id 3 is not among the paper's kept ids: it lands in `excluded`.
            _sample_entry(3, "down", 4, 10, 20, ["Move the camera down.", "I cannot tell."]),
        ]

    def release_images(self, entry: Entry) -> list[str]:
        return [entry.image_template]


SAMPLE_CROP = {"top": 100, "left": 50, "height": 300, "width": 400}


def _sample_entry(sample_id: int, direction: str, g: int, h0: float, v0: float, options: list[str]) -> dict:
    return {
        "id": sample_id, "prompt": "What is the main object?", "image_template": "coco2014/val2014/COCO_val2014_000000000042.jpg",
        "first_image": 0, "num_images": 1, "reference_image": 0, "direction": direction, "granularity": g,
        "horizontal_step": h0, "vertical_step": v0, "crop": dict(SAMPLE_CROP), "options": options,
        "categories": ["Dog.", "Cat.", "Horse.", "Sheep."], "answer": "Dog.",
    }
