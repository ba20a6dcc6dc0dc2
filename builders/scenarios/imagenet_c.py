"""ImageNet-C (image quality): a level less per valid fix; only `quality_answer` is valid (docs/protocol.md §4.4)."""

from __future__ import annotations

from .base import Entry, FrameRef, LinearScenario, strip_periods

LEVELS = (1, 2, 3, 4, 5)


class ImageNetCScenario(LinearScenario):
    source = "imagenet_c"
    action_space = (
        "stop", "brightness", "contrast", "saturate", "blur", "noise", "jpeg_compression", "pixelate", "artifacts",
    )
    hint_text = "Hint: enhancing the image quality could help with classification."
    oeg_threshold = 1

    def check(self, entry: Entry) -> None:
        quality = entry.require("quality_answer", str)
        if quality not in entry.options:
            raise entry.fail(f"quality_answer {quality!r} is not among the options {entry.options!r}")
        last_level = entry.first_image - (entry.num_images - 1)
        if entry.first_image not in LEVELS or last_level not in LEVELS:
            raise entry.fail(
                f"first_image={entry.first_image} with num_images={entry.num_images} leaves the levels 1..5"
            )

    def frame(self, entry: Entry, turn: int, last_turn: bool) -> FrameRef:
        return FrameRef(entry.image_template.format(level=entry.first_image - turn))

    def valid_moves(self, entry: Entry) -> tuple[int, ...]:
        return (entry.options.index(entry.extra["quality_answer"]),)  # the other quality options are distractors

    def reference(self, entry: Entry) -> FrameRef:
        return FrameRef(entry.image_template.format(level=entry.reference_image))

    def oeg_string(self, entry: Entry) -> str:
        return ", ".join(strip_periods(a) for a in [entry.extra["quality_answer"], entry.answer]) + "."

    def meta(self, entry: Entry) -> dict:
        return {"severity_by_turn": [entry.first_image - t for t in range(entry.num_images)]}
