"""ChangeIt (temporal): rewind / wait by a step, no wrap; the impossible way is not shown (docs/protocol.md §4.6)."""

from __future__ import annotations

from .spec import VIDEO_PRE_PROMPT, Entry, FrameRef, SourceSpec, StateSpec, strip_periods

REWIND = "Rewind the video."
WAIT_PREFIX = "Wait for the"


class ChangeItSpec(SourceSpec):
    name = "changeit"
    official_name = "ChangeIt"
    acronym = "CIT"
    scenario = "temporal"
    position = 5
    license = "MIT (annotations); videos are YouTube content"
    citation = (
        "Soucek et al., Look for the Change: Learning Object States and State-Modifying Actions from "
        "Untrimmed Web Videos, CVPR 2022"
    )
    homepage = "https://github.com/soCzech/ChangeIt"
    action_space = ("stop", "rewind", "forward")
    hint_text = (
        "Hint: If you cannot answer the question, waiting for it to appear or rewinding the video could help with "
        "classification."
    )
    pre_prompt = VIDEO_PRE_PROMPT
    oeg_threshold = 2
    cot_prompt = (  # ours, as for VSOD
        "I cannot answer from this frame of the video. Waiting for the object or action to appear or rewinding the "
        "video might show it. So, first, I need to wait or rewind the video and then answer the question. "
        "Therefore, the answer is:"
    )
    train_rank = 6

    def check(self, entry: Entry) -> None:
        if entry.require("step_size", int) < 1:
            raise entry.fail("step_size must be at least 1")
        if entry.require("max_steps", int) < 1:
            raise entry.fail("max_steps must be at least 1")

    def max_turns(self, entry: Entry) -> int:
        return entry.extra["max_steps"]

    def pruned(self, entry: Entry, image_id: int, indices: tuple[int, ...]) -> tuple[int, ...]:
        """The reference removes at most one option: Rewind at the start, else the first Wait near the end."""
        step = entry.extra["step_size"]
        kept = list(indices)
        if image_id - step < 0:
            kept = [i for i in kept if entry.options[i] != REWIND]
        elif image_id + step >= entry.num_images:
            waits = [i for i in kept if WAIT_PREFIX in entry.options[i]]
            if waits:
                kept.remove(waits[0])
        return tuple(kept)

    def start(self, entry: Entry):
        return entry.first_image

    def describe(self, entry: Entry, image_id) -> StateSpec:
        return StateSpec(
            FrameRef(entry.image_template.format(image=str(image_id))),
            shown=self.pruned(entry, image_id, tuple(range(len(entry.options)))),
            valid=self.pruned(entry, image_id, self.non_abstain(entry)),
            accepts_answer=True,
        )

    def transition(self, entry: Entry, image_id, action: str):
        step = entry.extra["step_size"]
        target = image_id - step if action == "rewind" else image_id + step
        # The reference asserts here (a video shorter than a step both ways); the option becomes invalid instead.
        return target if 0 <= target < entry.num_images else None

    def reference(self, entry: Entry) -> FrameRef:
        return FrameRef(entry.image_template.format(image=str(entry.reference_image)))

    def oeg_string(self, entry: Entry) -> str:
        first = self.pruned(entry, entry.first_image, self.non_abstain(entry))
        # The reference's first call appends Rewind to the state-0 correct options, which keep their own Rewind
        # when rewinding is possible there: the judge then sees (and parses) Rewind twice, the second copy among
        # the items past the threshold (docs/protocol.md §4.6, §6.2). Later calls grow that list
        # (docs/protocol.md §10.10); the judge prompt used the first, so that one is kept.
        answers = [entry.options[i] for i in first] + [REWIND]
        return ",".join(strip_periods(x) for x in answers + [entry.answer]) + "."

    def release_sample(self) -> list[dict]:
        return [
            {
                "id": 0, "prompt": "Which object is shown?", "image_template": "ChangeIt/apple/vid0/{image}.jpg",
                "first_image": 0, "num_images": 10, "reference_image": 9, "step_size": 4, "max_steps": 5,
                "options": ["I cannot answer this question.", "Wait for the object to appear.", "Rewind the video."],
                "categories": ["Apple.", "Pear.", "Onion.", "Potato."], "answer": "Apple.",
            }
        ]

    def release_images(self, entry: Entry) -> list[str]:
        return [entry.image_template.format(image=str(i)) for i in range(entry.num_images)]
