"""ImageNet-C (image quality): a level less per valid fix; only `quality_answer` is valid (docs/protocol.md §4.4)."""

from __future__ import annotations

from .spec import SAMPLE_PROMPT, Entry, FrameRef, LinearSpec, strip_periods

LEVELS = (1, 2, 3, 4, 5)


class ImageNetCSpec(LinearSpec):
    name = "imagenet_c"
    official_name = "ImageNet-C"
    acronym = "IN-C"
    scenario = "image_quality"
    position = 3
    license = "CC BY 4.0 (corruptions); ImageNet terms apply"
    citation = (
        "Hendrycks and Dietterich, Benchmarking Neural Network Robustness to Common Corruptions and "
        "Perturbations, ICLR 2019"
    )
    homepage = "https://github.com/hendrycks/robustness"
    action_space = (
        "stop", "brightness", "contrast", "saturate", "blur", "noise", "jpeg_compression", "pixelate", "artifacts",
    )
    hint_text = "Hint: enhancing the image quality could help with classification."
    oeg_threshold = 1
    cot_prompt = (  # ours, as for VSOD
        "I cannot tell what is in this image because of its poor quality. Enhancing the image quality might reveal "
        "the object. So, first, I need to enhance the image and then answer the question. Therefore, the answer is:"
    )
    train_rank = 5

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

    def release_sample(self) -> list[dict]:
        return [
            {
                "prompt": SAMPLE_PROMPT, "id": 2,
                "image_template": "ImageNet-C/gaussian_blur/{level}/n02992211/ILSVRC2012_val_00000001.JPEG",
                "first_image": 5, "num_images": 5, "reference_image": 1, "quality_answer": "Deblur the image.",
                "options": ["Denoise the image.", "Increase image resolution.", "Reduce brightness.", "I cannot tell.",
                            "Deblur the image."],
                "categories": ["Violin.", "Guitar.", "Banjo.", "Cello."], "answer": "Cello.",
            }
        ]

    def release_images(self, entry: Entry) -> list[str]:
        return [entry.image_template.format(level=level) for level in LEVELS]
