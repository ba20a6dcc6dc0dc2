"""The golden traces of docs/protocol.md §12 through import → engine: correctness, turn counts, images shown."""

import io

import numpy as np
import pytest
from PIL import Image

from proactivebench.eval import Episode
from proactivebench.parsing import CORRECT, MISMATCH, WRONG

ROD = "ROD/natural_bluebl_greenr-banana-s{}.jpg"


def play(row, answers, **kwargs):
    episode = Episode(row, **kwargs)
    shown_frames, turns = [], []
    for answer in answers:
        if episode.done:
            break
        observation = episode.observe()
        shown_frames.append(row["frames"][observation.frame]["path"])
        turns.append(episode.step(answer))
    return episode, shown_frames, turns


def verdicts(turns):
    return [t.option_verdict for t in turns], [t.category_verdict for t in turns]


def test_rod_no_answer_at_first_turn(imported_rows):
    episode, frames, turns = play(imported_rows["rod-000000"], ["E"])
    assert episode.done and not episode.result.correct
    assert verdicts(turns) == ([MISMATCH], [WRONG])
    assert frames == [ROD.format(7)]
    assert episode.result.stop_reason == "premature_answer"


def test_rod_left_left_right_right_right_answer(imported_rows):
    episode, frames, turns = play(imported_rows["rod-000000"], ["A", "A", "B", "B", "B", "Banana."])
    result = episode.result
    assert result.correct and result.num_turns == 6 and result.proactive_suggestions == 5
    assert verdicts(turns) == ([CORRECT] * 5 + [MISMATCH], [MISMATCH] * 5 + [CORRECT])
    # id 6 is the missing frame: shown as s5 when reached by LEFT, as s7 when reached by RIGHT.
    assert frames == [ROD.format(i) for i in (7, 5, 5, 7, 7, 8)]


def test_rod_fourteen_rights_wrap_and_hit_the_budget(imported_rows):
    episode, frames, turns = play(imported_rows["rod-000000"], ["B"] * 20)
    result = episode.result
    assert result.num_turns == 14 and not result.correct and result.stop_reason == "max_turns"
    assert verdicts(turns) == ([CORRECT] * 14, [MISMATCH] * 14)
    expected_ids = [7, 8, 9, 10, 11, 12, 13, 0, 1, 2, 3, 4, 5, 6]
    assert frames == [ROD.format(7 if i == 6 else i) for i in expected_ids]


def test_rod_reference_mode_with_hint(imported_rows):
    row = imported_rows["rod-000000"]
    episode = Episode(row, hint=True, mode="reference")
    observation = episode.observe()
    assert row["frames"][observation.frame]["path"] == ROD.format(0)
    assert observation.prompt.startswith(
        "What type of object is in the image? Hint: moving the occluding object might reveal what is behind it. "
        "Choose from the following options. Options:\nA. Screwdriver.\nB. Banana.\nC. Vase.\nD. Spatula.\n"
    )
    episode.step("B")
    assert episode.done and episode.result.correct and episode.result.num_turns == 1


def test_vsod_traces(imported_rows):
    row = imported_rows["vsod-000006"]
    path = "OcclusionDataSet-MM20/v006/{:04d}.jpg"
    episode, frames, turns = play(row, ["B", "B", "F"])
    assert episode.result.correct and frames == [path.format(i) for i in (1, 0, 4)]

    episode, _, turns = play(row, ["C", "A"])
    assert [t.option_verdict for t in turns] == [CORRECT, WRONG] and not episode.result.correct
    assert episode.result.stop_reason == "abstain"

    episode, _, _ = play(row, ["Ge you."])
    assert episode.result.correct and episode.result.num_turns == 1

    episode, frames, _ = play(row, ["C"] * 9)
    assert frames == [path.format(i) for i in (1, 2, 3, 4, 0)]
    assert episode.result.stop_reason == "max_turns" and not episode.result.correct


def test_vsod_prompt_has_video_pre_prompt(imported_rows):
    observation = Episode(imported_rows["vsod-000006"], hint=True).observe()
    assert observation.prompt.startswith(
        "This is a frame extracted from a video. Answer the following question. Can you say who is speaking? "
        "Hint: If there is an occlusion, waiting for it to disappear or rewinding the video might reveal what's "
        "behind it. Choose from the following options. Options:\nA. I cannot answer this question.\n"
    )


def test_mvpn_informative_view_on_last_turn(imported_rows):
    row = imported_rows["mvpn-000005"]
    episode, frames, _ = play(row, ["A", "A", "E"])
    assert frames == ["MVP-N/obj/0/0003.png", "MVP-N/obj/0/0007.png", "MVP-N/obj/1/0009.png"]
    assert episode.result.correct and episode.result.num_turns == 3

    episode, _, turns = play(row, ["A", "A", "A"])
    assert turns[-1].option_verdict == WRONG and not episode.result.correct
    assert episode.result.stop_reason == "invalid_option"


def test_imagenet_c_only_the_quality_answer_is_valid(imported_rows):
    row = imported_rows["imagenet_c-000002"]
    path = "ImageNet-C/gaussian_blur/{}/n02992211/ILSVRC2012_val_00000001.JPEG"
    episode, _, turns = play(row, ["A"])
    assert turns[0].option_verdict == WRONG and episode.done and not episode.result.correct

    episode, frames, _ = play(row, ["E"] * 4 + ["I"])
    assert frames == [path.format(level) for level in (5, 4, 3, 2, 1)] and episode.result.correct

    episode, _, turns = play(row, ["E"] * 5)
    assert turns[-1].option_verdict == WRONG and not episode.result.correct
    assert row["oeg_answers"] == ["Deblur the image", "Cello"] and row["oeg_proactive_count"] == 1


def test_quickdraw_trace(imported_rows):
    row = imported_rows["quickdraw-000000"]
    episode, frames, _ = play(row, ["B", "B", "E"])
    assert frames == [f"QuickDraw/bed/0/{i:04d}.png" for i in range(3)] and episode.result.correct
    assert row["oeg_answers"] == ["Add more details to the drawing", "Bed"]


def test_changeit_prunes_options_and_letters_shift(imported_rows):
    row = imported_rows["changeit-000000"]
    episode = Episode(row)
    seen = []
    for _ in range(3):
        observation = episode.observe()
        seen.append((row["frames"][observation.frame]["path"], observation.choices[:-4]))
        episode.step("B")
    abstain, wait, rewind = "I cannot answer this question.", "Wait for the object to appear.", "Rewind the video."
    assert seen == [
        ("ChangeIt/apple/vid0/0.jpg", [abstain, wait]),
        ("ChangeIt/apple/vid0/4.jpg", [abstain, wait, rewind]),
        ("ChangeIt/apple/vid0/8.jpg", [abstain, rewind]),
    ]
    # The third B meant Rewind: back at frame 4, still running.
    assert not episode.done and row["frames"][episode.observe().frame]["path"] == "ChangeIt/apple/vid0/4.jpg"
    # Letters move: the answer is C at frame 0 (two options shown) and D at frame 4 (three shown).
    assert Episode(row).observe().choices.index("Apple.") == 2

    episode, _, turns = play(row, ["Rewind the video."])
    assert verdicts(turns) == ([MISMATCH], [MISMATCH]) and episode.result.stop_reason == "unparsed"
    assert row["oeg_answers"] == ["Wait for the object to appear", "Rewind the video", "Apple"]


def _decode(frame):
    return np.asarray(Image.open(io.BytesIO(frame["bytes"])).convert("RGB"))


def _crop_of(release_dir, box):
    image = Image.open(release_dir / "coco2014/val2014/COCO_val2014_000000000042.jpg").convert("RGB")
    return np.asarray(image.crop(box))


def test_coco_up_left_crops_and_pruning(imported_rows, release_dir):
    row = imported_rows["coco-000000"]
    assert row["max_turns"] == 6
    episode = Episode(row)
    first = episode.observe()
    assert np.array_equal(_decode(row["frames"][first.frame]), _crop_of(release_dir, (40, 80, 400, 300)))
    episode.step("C")  # left
    second = episode.observe()
    assert np.array_equal(_decode(row["frames"][second.frame]), _crop_of(release_dir, (30.0, 80, 400, 300)))
    episode.step("C")
    assert episode.observe().choices[:2] == ["I cannot tell.", "Move the camera up."]


def test_coco_zoom_and_cardinal_budgets(imported_rows, release_dir):
    zoom = imported_rows["coco-000001"]
    assert zoom["max_turns"] == 4
    episode = Episode(zoom)
    boxes = [(45, 93, 455, 407), (40.0, 86.0, 460.0, 414.0)]
    for box in boxes:
        observation = episode.observe()
        assert np.array_equal(_decode(zoom["frames"][observation.frame]), _crop_of(release_dir, box))
        episode.step("A")
    episode.step("A")
    assert episode.observe().choices[:-4] == ["I cannot tell."]  # three zooms, then the option is gone

    right = imported_rows["coco-000002"]
    assert right["max_turns"] == 3
    episode = Episode(right)
    episode.step("B")
    episode.step("B")
    assert episode.observe().choices[:-4] == ["I cannot tell."]  # two moves, then the option is gone
    assert right["frames"][right["reference_frame"]]["path"] == "coco2014/val2014/COCO_val2014_000000000042.jpg"


@pytest.mark.parametrize("sample_id", ["coco-000000", "coco-000001"])
def test_coco_reference_is_the_uncropped_image(imported_rows, release_dir, sample_id):
    row = imported_rows[sample_id]
    original = (release_dir / "coco2014/val2014/COCO_val2014_000000000042.jpg").read_bytes()
    assert row["frames"][row["reference_frame"]]["bytes"] == original  # byte-exact, no re-encoding
