"""Engine details beyond the golden traces: error turns, metrics, observations."""

import pytest
from PIL import Image

from proactivebench.eval import Episode, summarize


def test_error_turn_ends_the_episode_wrong_with_zero_suggestions(imported_rows):
    episode = Episode(imported_rows["rod-000000"])
    episode.step("A")
    episode.step_error("ValueError: image too small")
    result = episode.result
    assert not result.correct and result.stop_reason == "error" and result.num_turns == 2
    assert result.turns[-1].error == "ValueError: image too small"

    first = Episode(imported_rows["rod-000000"])
    first.step_error("boom")
    assert first.result.proactive_suggestions == 0  # never the reference's ps = -1


def test_metrics_match_the_paper_definition(imported_rows):
    results = []
    for answers in (["A", "A", "B", "B", "B", "Banana."], ["E"], ["B"] * 14):
        episode = Episode(imported_rows["rod-000000"])
        for answer in answers:
            episode.step(answer)
        results.append(episode.result)
    score = summarize(results)
    assert score.episodes == 3
    assert score.acc == pytest.approx(100 / 3)
    assert score.psr == pytest.approx((5 + 0 + 13) / 3)
    assert score.line() == "acc: 33.3% - ps rate: 6.0"


def test_observation_image_and_done_guards(imported_rows):
    episode = Episode(imported_rows["quickdraw-000000"])
    observation = episode.observe()
    assert isinstance(observation.image, Image.Image) and observation.image.mode == "RGB"
    with pytest.raises(RuntimeError):
        episode.result
    episode.step("E")
    with pytest.raises(RuntimeError):
        episode.observe()


def test_oeg_prompt(imported_rows):
    vsod = Episode(imported_rows["vsod-000006"])
    assert vsod.oeg_prompt() == (
        "This is a frame extracted from a video. Answer the following question. Can you say who is speaking?"
    )
    assert vsod.oeg_prompt(generic_hint=True).endswith(
        "speaking? If you cannot answer this question, please tell me what I should do to help you."
    )
