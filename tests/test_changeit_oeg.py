"""ChangeIt's OEG answer list as the paper's judge saw it: the reference's first call, duplicates included.

When rewinding is possible at the first frame, the state-0 correct options keep "Rewind the video." and the
reference's `get_open_ended_gen_answers` appends it again (docs/protocol.md §4.6, §6.2); the judge prompt and the
parse of its 0/1 list both use that first-call list.
"""

import itertools

import datasets
import pytest

from proactivebench.builders.official import import_official
from proactivebench.samples.release import write_release
from proactivebench.builders.scenarios import Entry
from proactivebench.sources import get_source
from proactivebench.eval import Episode
from proactivebench.eval.judge import SYSTEM_PROMPT, judge_messages, parse_judgment

ABSTAIN, WAIT, REWIND = "I cannot answer this question.", "Wait for the object to appear.", "Rewind the video."


def reference_first_call(options, first_image, step, num_images, answer):
    """The reference's first `get_open_ended_gen_answers()` on a fresh ChangeIt environment (docs/protocol.md §4.6),
    restated: the non-abstain options, pruned for frame `first_image` on a copy (Rewind when it cannot rewind, else
    the first "Wait for the" option when it cannot wait), then "Rewind the video." appended."""
    correct = [o for o in options if "cannot" not in o.lower() and "do not" not in o.lower()]
    if first_image - step < 0:
        correct = [o for o in correct if o != REWIND]
    elif first_image + step >= num_images:
        correct.pop(next(i for i, o in enumerate(correct) if "Wait for the" in o))
    correct.append(REWIND)
    return ",".join(a.replace(".", "") for a in correct + [answer]) + "."


def _entry(options, first_image, step, num_images=10):
    return Entry(id=0, image_template="v/{image}.jpg", first_image=first_image, num_images=num_images,
                 reference_image=num_images - 1, prompt="Which object is shown?", options=list(options),
                 categories=["Apple.", "Pear.", "Onion.", "Potato."], answer="Apple.",
                 extra={"step_size": step, "max_steps": 5}, where="test")


@pytest.mark.parametrize("order", list(itertools.permutations([ABSTAIN, WAIT, REWIND])))
def test_oeg_string_is_the_references_first_call(order):
    scenario = get_source("changeit")
    for first_image, step in itertools.product(range(10), range(1, 6)):
        ours = scenario.oeg_string(_entry(order, first_image, step))
        assert ours == reference_first_call(order, first_image, step, 10, "Apple."), (first_image, step)
    # Rewinding possible at the first frame: Rewind twice; at frame 0: once.
    assert scenario.oeg_string(_entry(order, 4, 4)).count("Rewind the video") == 2
    assert scenario.oeg_string(_entry(order, 0, 4)).count("Rewind the video") == 1


@pytest.fixture
def rewind_at_start(tmp_path):
    """A release with one ChangeIt entry that starts mid-video (frame 4, step 4): Rewind is valid at the start."""
    entry = {
        "id": 0, "prompt": "Which object is shown?", "image_template": "ChangeIt/apple/vid0/{image}.jpg",
        "first_image": 4, "num_images": 10, "reference_image": 9, "step_size": 4, "max_steps": 5,
        "options": [ABSTAIN, WAIT, REWIND], "categories": ["Apple.", "Pear.", "Onion.", "Potato."],
        "answer": "Apple.",
    }
    release = write_release(tmp_path / "test", {"changeit": [entry]})
    import_official(release, tmp_path / "bench")
    return datasets.load_dataset(str(tmp_path / "bench"), "changeit", split="test")[0]


def test_judge_prompt_and_parse_use_the_duplicate(rewind_at_start):
    row = rewind_at_start
    assert row["oeg_answers"] == ["Wait for the object to appear", "Rewind the video", "Rewind the video", "Apple"]
    assert row["oeg_proactive_count"] == 2  # the paper's PREDICTION_THR for CIT

    messages = judge_messages(Episode(row).oeg_prompt(), row["oeg_answers"], "GEN")
    # Byte for byte what the reference's get_oeg_judge_messages renders (docs/protocol.md §6.3) for this sample.
    assert messages == [
        {"content": SYSTEM_PROMPT, "role": "system"},
        {
            "content": "### User Prompt:\nThis is a frame extracted from a video. Answer the following question. "
            "Which object is shown?\n### Correct Answers (List):\n['Wait for the object to appear', "
            "'Rewind the video', 'Rewind the video', 'Apple']\n### System Output:\nGEN",
            "role": "user",
        },
    ]

    def parse(raw):
        verdict = parse_judgment(raw, len(row["oeg_answers"]), row["oeg_proactive_count"])
        return verdict.proactive_suggestion, verdict.category_prediction, verdict.aggregate

    # Four bits, as the judge was asked for; the second Rewind lies past the threshold, so a judge marking only
    # it counts as a category prediction, exactly as in the reference's parse.
    assert parse("0,0,1,0") == (0, 1, 1)
    assert parse("0,1,1,0") == (1, 1, 1)
    assert parse("0,0,0,1") == (0, 1, 1)
    assert parse("0,0,0,0") == (0, 0, 0)
    assert parse("0,1,0") == (0, 0, 0)  # three bits: the deduplicated list's length is not accepted
