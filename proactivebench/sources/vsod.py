"""VSOD (temporal occlusion): video frames, rewind / wait, circular (docs/protocol.md §4.2)."""

from __future__ import annotations

from .spec import VIDEO_PRE_PROMPT, Entry, FrameRef, SourceSpec, StateSpec, strip_periods


class VSODSpec(SourceSpec):
    name = "vsod"
    official_name = "OcclusionDataSet-MM20"
    acronym = "VSOD"
    scenario = "temporal_occlusion"
    position = 1
    license = "research use (see the authors' page)"
    citation = "Liao et al., Occlusion Detection for Automatic Video Editing, ACM MM 2020"
    homepage = "https://junhua-liao.github.io/Occlusion-Detection/"
    action_space = ("stop", "rewind", "forward")
    hint_text = (
        "Hint: If there is an occlusion, waiting for it to disappear or rewinding the video might reveal what's "
        "behind it."
    )
    pre_prompt = VIDEO_PRE_PROMPT
    oeg_threshold = 3
    # Ours: the reference gives CoT prefixes for ROD and MVP-N only (docs/protocol.md §5.2); the same three
    # sentences, "I cannot ... / <action> might ... / So, first, I need to <action> and then answer".
    cot_prompt = (
        "I cannot see what is hidden by the occlusion. Waiting for the occlusion to disappear or rewinding the video "
        "might reveal what is behind it. So, first, I need to wait or rewind the video and then answer the question. "
        "Therefore, the answer is:"
    )
    train_rank = 3

    def check(self, entry: Entry) -> None:
        entry.require("strong_occlusions", (bool, int))

    def release_drop(self, entry: Entry) -> str | None:
        # The reference keeps strong occlusions only, by Python equality: 0 == False goes too (docs/protocol.md §10.13).
        weak = "strong_occlusions" in entry.extra and entry.extra["strong_occlusions"] == False  # noqa: E712
        return "weak_occlusion" if weak else None

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

    def release_sample(self) -> list[dict]:
        options = ["I cannot answer this question.", "Rewind the video.", "Wait for the occlusion to disappear."]
        return [
            {
                "id": 6, "prompt": "Can you say who is speaking?", "image_template": "OcclusionDataSet-MM20/v006/{image}.jpg",
                "first_image": 1, "num_images": 5, "reference_image": 3, "strong_occlusions": True,
                "options": options, "categories": ["Anna li.", "Bob ray.", "Ge you.", "Tom x."], "answer": "Ge you.",
            },
            {
                "id": 7, "prompt": "How many people are there?", "image_template": "OcclusionDataSet-MM20/v007/{image}.jpg",
                "first_image": 0, "num_images": 4, "reference_image": 2, "strong_occlusions": False,
                "options": list(options), "categories": ["One.", "Two.", "Three.", "Four."], "answer": "Two.",
            },
        ]

    def release_images(self, entry: Entry) -> list[str]:
        return [self.frame_path(entry, i) for i in range(entry.num_images)]
