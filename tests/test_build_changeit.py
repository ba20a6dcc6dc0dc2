"""ChangeIt raw builder on its native-layout sample (CSVs + mp4 written with OpenCV): walks, frames, bad input."""

from __future__ import annotations

import re
import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from proactivebench.builders import build_runner as runner
from proactivebench.sources.changeit import REWIND
from proactivebench.builders.sources import changeit
from proactivebench.store import iter_rows, split_files

VIDEOS = 5


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cit") / "changeit"
    changeit.ChangeItSource().write_sample(folder, VIDEOS, seed=0)
    return folder


@pytest.fixture(scope="module")
def built(raw, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cit-out") / "bench"
    runner.build_source("changeit", raw, out, progress=False)
    return out


def rows(out: Path) -> list[dict]:
    return list(iter_rows(out, ["changeit"]))


def labels_of(raw: Path, meta: dict) -> list[int]:
    with open(raw / meta["annotation"], newline="") as handle:
        return [int(label) for _, label in csv.reader(handle)]


def second_of(frame: dict) -> int:
    return int(Path(frame["path"]).stem)


def test_sample_is_the_repository_layout(raw):
    with open(raw / "categories.csv", newline="") as handle:
        header, *categories = list(csv.reader(handle))
    assert header == ["DIR_NAME", "ACTION_NAME", "CENTERING_PARAM"] and len(categories) >= 4
    annotations = sorted(raw.glob("annotations/*/*.fps1.csv"))
    assert len(annotations) == VIDEOS
    for path in annotations:
        category, video_id = path.parent.name, path.name[: -len(".fps1.csv")]
        assert len(video_id) == 11
        assert (raw / "downloads" / category / f"{video_id}.mp4").is_file()
        listed = [row[0] for row in csv.reader(open(raw / "videos" / f"{category}.csv", newline=""))]
        assert video_id in listed and len(listed) > 1  # the csv lists unannotated videos too
        seconds = [int(row[0]) for row in csv.reader(open(path, newline=""))]
        assert seconds == list(range(len(seconds)))


def test_walks_follow_the_temporal_rules(built, raw):
    episodes = rows(built)
    assert len(episodes) == 2 * VIDEOS
    assert sorted(r["source_id"] for r in episodes) == list(range(2 * VIDEOS))
    for row in episodes:
        meta = json.loads(row["meta"])
        labels = labels_of(raw, meta)
        step, n = meta["step_size"], meta["num_images"]
        assert n == len(labels) and row["max_turns"] == meta["max_steps"]
        relevant = {1, 2, 3} if meta["question_type"] == "object" else {2}
        texts = [o["text"] for o in row["options"]]
        rewind, wait = texts.index(REWIND), next(i for i, t in enumerate(texts) if t.startswith("Wait for the"))
        assert {row["options"][rewind]["action"], row["options"][wait]["action"]} == {"rewind", "forward"}
        assert row["pre_prompt"].startswith("This is a frame extracted from a video.")
        # the first frame is second 0 and does not show the answer; Rewind is not offered there
        first = row["states"][row["first_state"]]
        assert second_of(row["frames"][first["frame"]]) == 0 and labels[0] not in relevant
        assert rewind not in first["shown"]
        for state in row["states"]:
            s = second_of(row["frames"][state["frame"]])
            assert s % step == 0 and state["accepts_answer"]
            assert (rewind in state["shown"]) == (s - step >= 0)
            assert (wait in state["shown"]) == (s - step < 0 or s + step < n)  # the reference drops one at most
            for move in state["moves"]:
                target = second_of(row["frames"][row["states"][move["to"]]["frame"]])
                assert target == s + (step if move["option"] == wait else -step)
        # waiting `waits` times from the start lands on the reference frame, inside the relevant segment
        reference = second_of(row["frames"][row["reference_frame"]])
        assert reference == meta["reference_image"] and labels[reference] in relevant
        index = row["first_state"]
        for _ in range(reference // step):
            index = next(m["to"] for m in row["states"][index]["moves"] if m["option"] == wait)
        assert row["states"][index]["frame"] == row["reference_frame"]
        assert reference // step <= row["max_turns"] - 1
        for frame in row["frames"]:
            with Image.open(io.BytesIO(frame["bytes"])) as image:
                image.load()
                assert image.format == "JPEG" and image.size == changeit.SAMPLE_SIZE
        names = [c.lower() for c in row["categories"]]
        assert len(set(names)) == 4 and row["answer"] in row["categories"]
        assert row["oeg_answers"][-1] == row["answer"].replace(".", "")


def test_decoded_frames_show_the_video(built, raw):
    """The reference of an action question shows the knife (light pixels), second 0 only the table."""
    for row in rows(built):
        meta = json.loads(row["meta"])
        if meta["question_type"] != "action":
            continue
        light = lambda frame: sum(  # noqa: E731
            1 for p in Image.open(io.BytesIO(frame["bytes"])).convert("L").getdata() if p > 185
        )
        first = row["frames"][row["states"][row["first_state"]]["frame"]]
        assert light(row["frames"][row["reference_frame"]]) > 50 > light(first)


def test_deterministic_bytes(raw, tmp_path):
    for name in ("a", "b"):
        runner.build_source("changeit", raw, tmp_path / name, seed=5, progress=False)
    first = [p.read_bytes() for p in split_files(tmp_path / "a", "changeit", "test")]
    assert first and first == [p.read_bytes() for p in split_files(tmp_path / "b", "changeit", "test")]


@pytest.fixture
def copy(raw, tmp_path) -> Path:
    folder = tmp_path / "ChangeIt"
    shutil.copytree(raw, folder)
    return folder


def test_extracted_frames_are_used_byte_exact(copy, built, tmp_path):
    video = sorted(copy.glob("downloads/*/*.mp4"))[0]
    category, video_id = video.parent.name, video.stem
    labels = labels_of(copy, {"annotation": f"annotations/{category}/{video_id}.fps1.csv"})
    frames = copy / "frames" / category / video_id
    frames.mkdir(parents=True)
    for second, data in changeit.decode_seconds(video, set(range(len(labels))), "test").items():
        (frames / f"{second}.jpg").write_bytes(data)
    video.unlink()
    out = tmp_path / "out"
    report = runner.build_source("changeit", tmp_path, out, progress=False)  # the parent folder is accepted
    assert report.root == str(copy.resolve()) and report.episodes == 2 * VIDEOS
    ours = [r for r in rows(out) if json.loads(r["meta"])["video_id"] == video_id]
    assert len(ours) == 2
    for row in ours:
        for frame in row["frames"]:
            assert frame["path"].startswith(f"frames/{category}/{video_id}/")
            assert frame["bytes"] == (copy / frame["path"]).read_bytes()
    # decoding the video or reading its extracted frames gives the same episode
    before = {r["sample_id"]: r for r in rows(built)}
    assert [f["bytes"] for f in ours[0]["frames"]] == [f["bytes"] for f in before[ours[0]["sample_id"]]["frames"]]


def test_missing_video_is_dropped_and_reported(copy, tmp_path):
    video = sorted(copy.glob("downloads/*/*.mp4"))[0]
    video.unlink()
    report = runner.build_source("changeit", copy, tmp_path / "out", progress=False)
    assert report.episodes == 2 * (VIDEOS - 1) and report.skipped == []
    assert [d.key for d in report.dropped] == [f"{video.parent.name}/{video.stem}/object",
                                               f"{video.parent.name}/{video.stem}/action"]


def test_malformed_csv_line_fails_or_is_skipped(copy, tmp_path):
    annotation = sorted(copy.glob("annotations/*/*.fps1.csv"))[1]
    lines = annotation.read_text().splitlines(keepends=True)
    lines[2] = "2;1\n"
    annotation.write_text("".join(lines))
    out = tmp_path / "out"
    with pytest.raises(runner.BuildError, match=rf"{annotation.name}:3: malformed CSV line"):
        runner.build_source("changeit", copy, out, progress=False)
    assert not out.exists() or not any(out.rglob("*"))  # nothing half-written
    report = runner.build_source("changeit", copy, out, on_error="skip", progress=False)
    assert len(report.skipped) == 2 and all(f"{annotation.name}:3" in s.reason for s in report.skipped)
    assert report.episodes == 2 * (VIDEOS - 1)


def test_truncated_video_fails_or_is_skipped(copy, tmp_path):
    video = sorted(copy.glob("downloads/*/*.mp4"))[0]
    video.write_bytes(video.read_bytes()[: video.stat().st_size // 3])
    out = tmp_path / "out"
    with pytest.raises(runner.BuildError, match=rf"{video.stem}/\w+: .*{video.name}"):
        runner.build_source("changeit", copy, out, progress=False)
    assert not out.exists() or not any(out.rglob("*"))  # nothing half-written
    report = runner.build_source("changeit", copy, out, on_error="skip", progress=False)
    assert [s.key.split("/")[1] for s in report.skipped] == [video.stem] * 2
    assert report.episodes == 2 * (VIDEOS - 1)


def test_truncated_extracted_frame_fails_naming_the_file(copy, tmp_path):
    video = sorted(copy.glob("downloads/*/*.mp4"))[0]
    frames = copy / "frames" / video.parent.name / video.stem
    frames.mkdir(parents=True)
    labels = (copy / "annotations" / video.parent.name / f"{video.stem}.fps1.csv").read_text().splitlines()
    for second, data in changeit.decode_seconds(video, set(range(len(labels))), "test").items():
        (frames / f"{second}.jpg").write_bytes(data[: len(data) // 2] if second == 0 else data)
    out = tmp_path / "out"
    with pytest.raises(runner.BuildError, match=rf"image {re.escape(str(frames / '0.jpg'))} does not decode"):
        runner.build_source("changeit", copy, out, progress=False)
    assert not out.exists() or not any(out.rglob("*"))  # nothing half-written


def test_bad_folder_and_train_split(copy, tmp_path):
    with pytest.raises(ValueError, match="categories.csv"):
        runner.build_source("changeit", tmp_path / "ChangeIt" / "videos", tmp_path / "out", progress=False)
    with pytest.raises(ValueError, match="only a test split"):
        runner.build_source("changeit", copy, tmp_path / "out", split="train", progress=False)
    (copy / "categories.csv").write_text("DIR_NAME,ACTION_NAME\napple\n")
    with pytest.raises(ValueError, match=r"categories\.csv:2: malformed CSV line"):
        runner.build_source("changeit", copy, tmp_path / "out", progress=False)


def test_question_pools_follow_the_paper():
    """[paper] 15 object and 11 action questions; each wait option is the reference's FORWARD ("Wait for the")."""
    from proactivebench.actions import is_abstain, parse_action

    sizes = {q.name: len(set(q.questions)) for q in changeit.QUESTION_TYPES}
    assert sizes == {"object": 15, "action": 11}
    for question_type in changeit.QUESTION_TYPES:
        assert question_type.wait_option.startswith("Wait for the")
        assert parse_action(question_type.wait_option, ("stop", "rewind", "forward")) == "forward"
    assert parse_action(REWIND, ("stop", "rewind", "forward")) == "rewind"
    assert all(is_abstain(text) for text in changeit.ABSTAIN)


def test_each_video_is_decoded_once_for_both_questions(raw, built, tmp_path, monkeypatch):
    """The object and action episodes of a video share one decoding, and the bytes are those of separate ones."""
    calls = []
    decode = changeit.decode_seconds
    monkeypatch.setattr(changeit, "decode_seconds", lambda path, seconds, where: calls.append(path) or
                        decode(path, seconds, where))
    changeit._DECODED.clear()
    out = tmp_path / "out"
    runner.build_source("changeit", raw, out, progress=False)
    assert sorted(calls) == sorted(raw.glob("downloads/*/*.mp4"))
    assert split_files(out, "changeit", "test")[0].read_bytes() == split_files(built, "changeit", "test")[0].read_bytes()


def test_shared_decoding_falls_back_to_the_episodes_own_seconds(raw):
    """A second only the other question needs (past the video's end) does not fail this episode."""
    video = sorted(raw.glob("downloads/*/*.mp4"))[0]
    changeit._DECODED.clear()
    frames = changeit.VideoFrames(video, "v/{image}.jpg", {0, 1}, shared={0, 1, 10_000})
    assert frames.read("v/1.jpg", "test") == changeit.decode_seconds(video, {1}, "test")[1]
    with pytest.raises(ValueError, match="was not planned"):
        frames.read("v/2.jpg", "test")
    alone = changeit.VideoFrames(video, "v/{image}.jpg", {10_000})
    with pytest.raises(ValueError, match=r"second 10000 is needed"):
        alone.read("v/10000.jpg", "test")
