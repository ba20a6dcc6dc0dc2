"""COCO 2014 raw builder on its native-layout sample: crop walks against the reference's rules, splits, bad input."""

from __future__ import annotations

import io
import json
import math
import shutil
from pathlib import Path

import pytest
from PIL import Image

from proactivebench.builders import build_runner as runner
from proactivebench.sources.coco import MOVE_OPTIONS, ZOOM_OPTION
from proactivebench.builders.sources import coco
from proactivebench.cli import main
from proactivebench.store import iter_rows, split_files

PER_SPLIT = 12  # enough images for cardinal, diagonal and zoom walks with seed 0


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("coco") / "coco"
    coco.COCOSource().write_sample(folder, PER_SPLIT, seed=0)
    return folder


@pytest.fixture(scope="module")
def built(raw, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("coco-out") / "bench"
    runner.build_source("coco", raw, out, split="test", progress=False)
    runner.build_source("coco", raw, out, split="train", progress=False)
    return out


def rows(out: Path, split: str = "test") -> list[dict]:
    return list(iter_rows(out, ["coco"], split=split))


def annotations(raw: Path, folder: str) -> dict:
    return json.loads((raw / "annotations" / f"instances_{folder}.json").read_text())


def reference_view(meta: dict, hs: float, vs: float) -> tuple[float, float, float, float]:
    """The reference's crop transform, written out from docs/protocol.md §4.7."""
    c, d = meta["crop"], meta["direction"]
    top = c["top"] - vs if ("up" in d or "zoom" in d) else c["top"]
    left = c["left"] - hs if ("left" in d or "zoom" in d) else c["left"]
    lower = c["height"] + vs if ("down" in d or "zoom" in d) else c["height"]
    right = c["width"] + hs if ("right" in d or "zoom" in d) else c["width"]
    if d == "zoom":
        lower, right = lower + c["top"], right + c["left"]
    return left, top, right, lower


def test_sample_is_native_coco(raw):
    for folder in ("val2014", "train2014"):
        document = annotations(raw, folder)
        assert set(document) == {"info", "licenses", "images", "annotations", "categories"}
        assert len(document["categories"]) == 80 and document["categories"][-1]["id"] == 90
        for image in document["images"]:
            assert image["file_name"] == f"COCO_{folder}_{image['id']:012d}.jpg"
            with Image.open(raw / folder / image["file_name"]) as picture:
                assert picture.format == "JPEG" and picture.size == (image["width"], image["height"])


def test_walks_follow_the_camera_movement_rules(built, raw):
    episodes = rows(built)
    document = annotations(raw, "val2014")
    degenerate = {a["image_id"] for a in document["annotations"] if coco.degenerate(a)}  # dropped by rule
    singles = [i for i in document["images"] if i["id"] not in degenerate
               and sum(a["image_id"] == i["id"] for a in document["annotations"]) == 1]
    assert sorted(r["source_id"] for r in episodes) == sorted(i["id"] for i in singles)
    directions = set()
    for row in episodes:
        meta = json.loads(row["meta"])
        d, g, h0, v0 = meta["direction"], meta["granularity"], meta["horizontal_step"], meta["vertical_step"]
        directions.add(d)
        assert 3 <= g <= 5 and isinstance(h0, int) and isinstance(v0, int)
        moves = [ZOOM_OPTION] if d == "zoom" else [MOVE_OPTIONS[x] for x in d.split("_")]
        texts = [o["text"] for o in row["options"]]
        assert sorted(t for t, o in zip(texts, row["options"]) if o["kind"] == "proactive") == sorted(moves)
        assert len(texts) == len(moves) + 1
        assert row["max_turns"] == (g + 1 if d == "zoom" else 2 * g if "_" in d else g)
        # every state is (horizontal moves, vertical moves); walk the graph and check each crop and pruning
        axes = 2 if "_" in d else 1
        per_axis = g if d == "zoom" else g - 1
        assert len(row["states"]) == (per_axis + 1) ** axes
        seen = {row["first_state"]: (0, 0)}
        stack = [row["first_state"]]
        x, y, w, h = meta["bbox"]
        final_views, done = [], set()
        while stack:
            index = stack.pop()
            if index in done:
                continue
            done.add(index)
            nh, nv = seen[index]
            state = row["states"][index]
            hs = h0 * (nh + 1) if ("left" in d or "right" in d or d == "zoom") else h0
            vs = v0 * (nv + 1) if ("up" in d or "down" in d or d == "zoom") else v0
            view = reference_view(meta, hs, vs)
            frame = Image.open(io.BytesIO(row["frames"][state["frame"]]["bytes"]))
            assert frame.format == "PNG" and frame.size == (view[2] - view[0], view[3] - view[1])
            assert min(frame.size) >= coco.MIN_VIEW
            if index == row["first_state"]:
                assert sorted(state["shown"]) == list(range(len(texts)))
                inter = max(0, min(view[2], x + w) - max(view[0], x)) * max(0, min(view[3], y + h) - max(view[1], y))
                area = (view[2] - view[0]) * (view[3] - view[1])
                assert inter / (area + w * h - inter) <= coco.MAX_START_IOU
            exhausted = {"h": nh >= per_axis, "v": nv >= per_axis}
            for m in state["moves"]:
                action = row["options"][m["option"]]["action"]
                step = {"left": (1, 0), "right": (1, 0), "up": (0, 1), "down": (0, 1), "zoom": (1, 1)}[action]
                target = (nh + step[0], nv + step[1])
                assert not (exhausted["h"] and step[0]) and not (exhausted["v"] and step[1])
                assert seen.setdefault(m["to"], target) == target
                stack.append(m["to"])
            shown_moves = {row["options"][i]["action"] for i in state["shown"]} - {"stop"}
            expected = {a for a in ("left", "right", "up", "down", "zoom") if a in d}
            expected -= {a for a in ("left", "right") if exhausted["h"]} | {a for a in ("up", "down") if exhausted["v"]}
            if d == "zoom" and exhausted["h"]:
                expected.discard("zoom")
            assert shown_moves == expected
            if not state["moves"]:
                final_views.append(view)
        # every state is reached; the one with no move left shows the whole object
        assert done == set(range(len(row["states"]))) and len(final_views) == 1
        last = final_views[0]
        assert last[0] <= x and last[1] <= y and last[2] >= x + w and last[3] >= y + h
        # the reference is the full image, byte for byte
        assert row["frames"][row["reference_frame"]]["bytes"] == (raw / meta["image_template"]).read_bytes()
        assert row["hint"] == ("Hint: zooming out could help with classification." if d == "zoom"
                               else "Hint: moving the camera could help with classification.")
    assert "zoom" in directions and {"left", "right", "up", "down"} & directions and any("_" in d for d in directions)


def test_categories_use_supercategory_negatives(built, raw):
    document = annotations(raw, "val2014")
    superof = {coco.sentence(c["name"]): c["supercategory"] for c in document["categories"]}
    for row in rows(built):
        assert len(set(row["categories"])) == 4 and row["answer"] in row["categories"]
        group = superof[row["answer"]]
        size = sum(1 for s in superof.values() if s == group)
        same = sum(superof[c] == group for c in row["categories"])
        assert same == min(4, size)


def test_train_split_comes_from_train2014(built, raw):
    test, train = rows(built, "test"), rows(built, "train")
    assert len(train) == PER_SPLIT
    assert all(json.loads(r["meta"])["image_template"].startswith("train2014/COCO_train2014_") for r in train)
    assert all(json.loads(r["meta"])["image_template"].startswith("val2014/COCO_val2014_") for r in test)
    assert not {r["source_id"] for r in test} & {r["source_id"] for r in train}


def test_deterministic_bytes(raw, tmp_path):
    for name in ("a", "b"):
        runner.build_source("coco", raw, tmp_path / name, seed=7, progress=False)
    first = [p.read_bytes() for p in split_files(tmp_path / "a", "coco", "test")]
    assert first and first == [p.read_bytes() for p in split_files(tmp_path / "b", "coco", "test")]


def test_accepts_the_parent_folder(raw, tmp_path):
    report = runner.build_source("coco", raw.parent, tmp_path / "out", limit=1, progress=False)
    assert report.root == str(raw.resolve()) and report.episodes == 1


@pytest.fixture
def copy(raw, tmp_path) -> Path:
    folder = tmp_path / "coco"
    shutil.copytree(raw, folder)
    return folder


def test_degenerate_boxes_are_rule_drops_and_border_boxes_are_clipped(copy, tmp_path):
    """Real instances_*.json files hold degenerate boxes: an image with one is dropped by rule, reason in
    build_report.json, under the default --on-error fail; a box past the border is clamped to the image."""
    path = copy / "annotations" / "instances_val2014.json"
    document = json.loads(path.read_text())
    images = {i["id"]: i for i in document["images"]}
    counts = {}
    for a in document["annotations"]:
        counts[a["image_id"]] = counts.get(a["image_id"], 0) + 1
    singles = [a for a in document["annotations"] if counts[a["image_id"]] == 1 and a["id"] < coco.DEGENERATE_ANNOTATION_IDS]
    zero_w, negative_h, zero_area, outside, past_border, extra_box = singles[:6]
    zero_w["bbox"][2] = 0.0
    negative_h["bbox"][3] = -3.0
    zero_area["area"] = 0.0
    outside["bbox"][0] = images[outside["image_id"]]["width"] + 5.0
    image = images[past_border["image_id"]]
    past_border["bbox"] = [image["width"] - 40.5, 30.2, 100.0, 120.0]  # runs 60 px past the right border
    document["annotations"].append({**extra_box, "id": 999_999, "bbox": [5.0, 5.0, 0.4, 10.0], "area": 4.0})
    path.write_text(json.dumps(document))

    out = tmp_path / "out"
    assert main(["build", "coco", "--raw-dir", str(copy), "--out", str(out)]) == 0  # default --on-error fail
    report = json.loads((out / "build_report.json").read_text())["coco"]["test"]
    assert report["on_error"] == "fail" and report["skipped"] == []
    dropped = {d["key"]: d["reason"] for d in report["dropped"]}
    expected = {
        zero_w["image_id"]: "degenerate box", negative_h["image_id"]: "degenerate box",
        zero_area["image_id"]: "(area 0.0)", outside["image_id"]: "lies outside the",
        extra_box["image_id"]: "degenerate box [5.0, 5.0, 0.4, 10.0]",
    }
    for image_id, words in expected.items():
        name = images[image_id]["file_name"]
        reason = dropped.pop(f"val2014/{name}")
        assert words in reason and str(path) in reason and str(copy / "val2014" / name) in reason, reason
    # What is left are the sample's own degenerate images.
    assert len(dropped) == len(coco.DEGENERATE_SAMPLES) and all("degenerate box" in r for r in dropped.values())
    built_rows = {r["source_id"]: r for r in rows(out)}
    assert report["episodes"] == len(built_rows) == PER_SPLIT - 5  # the past-border box still builds
    meta = json.loads(built_rows[past_border["image_id"]]["meta"])
    x0, y0 = math.floor(image["width"] - 40.5), 30
    assert meta["bbox_clipped"] is True and meta["bbox"] == [x0, y0, image["width"] - x0, 151 - y0]
    assert all("bbox_clipped" not in json.loads(r["meta"]) for k, r in built_rows.items() if k != past_border["image_id"])


def test_sample_degenerate_images_leave_the_other_episodes_unchanged(raw, built, tmp_path):
    """The sample's degenerate images are extra: without them the build writes the same bytes."""
    plain = tmp_path / "plain"
    shutil.copytree(raw, plain)
    for folder in ("val2014", "train2014"):
        path = plain / "annotations" / f"instances_{folder}.json"
        document = json.loads(path.read_text())
        gone = {a["image_id"] for a in document["annotations"] if a["id"] >= coco.DEGENERATE_ANNOTATION_IDS}
        document["images"] = [i for i in document["images"] if i["id"] not in gone]
        document["annotations"] = [a for a in document["annotations"] if a["image_id"] not in gone]
        path.write_text(json.dumps(document))
    report = runner.build_source("coco", plain, tmp_path / "out", progress=False)
    assert report.dropped == []
    ours = [p.read_bytes() for p in split_files(tmp_path / "out", "coco", "test")]
    assert ours == [p.read_bytes() for p in split_files(built, "coco", "test")]


def test_malformed_box_is_still_bad_input(copy, tmp_path):
    path = copy / "annotations" / "instances_val2014.json"
    document = json.loads(path.read_text())
    bad = document["annotations"][0]
    bad["bbox"] = [1.0, 2.0, "wide", 4.0]
    path.write_text(json.dumps(document))
    with pytest.raises(runner.BuildError, match=rf"instances_val2014\.json: annotation {bad['id']} .*malformed bbox"):
        runner.build_source("coco", copy, tmp_path / "out", progress=False)


def test_truncated_image_fails_or_is_skipped(copy, tmp_path):
    document = annotations(copy, "val2014")
    victim = copy / "val2014" / document["images"][0]["file_name"]
    victim.write_bytes(victim.read_bytes()[:600])
    out = tmp_path / "out"
    with pytest.raises(runner.BuildError, match=rf"{victim.name}.*does not decode"):
        runner.build_source("coco", copy, out, progress=False)
    assert not out.exists() or not any(out.rglob("*"))  # nothing half-written
    report = runner.build_source("coco", copy, out, on_error="skip", progress=False)
    assert [s.key for s in report.skipped] == [f"val2014/{victim.name}"]


def test_missing_annotation_file(copy, tmp_path):
    (copy / "annotations" / "instances_train2014.json").unlink()
    with pytest.raises(ValueError, match="instances_train2014.json: missing"):
        runner.build_source("coco", copy, tmp_path / "out", split="train", progress=False)
    (copy / "annotations" / "instances_val2014.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a valid annotation file"):
        runner.build_source("coco", copy, tmp_path / "out", progress=False)


def test_plans_for_every_direction_keep_the_reference_geometry():
    """Each direction on a mid-image box: the start view is low-IoU, the last holds the box (docs/protocol.md §4.7)."""
    import random

    box = (200, 150, 420, 330)
    for direction in coco.DIRECTIONS:
        for g in (3, 4, 5):
            plan = coco.plan_crop(box, 640, 480, direction, g, random.Random(f"{direction}{g}"))
            assert plan is not None, direction
            meta = {"crop": plan["crop"], "direction": direction}
            h0, v0 = plan["horizontal_step"], plan["vertical_step"]
            assert reference_view(meta, h0, v0) == plan["start"]
            assert coco.iou(plan["start"], box) <= coco.MAX_START_IOU
            moves = g if direction == "zoom" else g - 1
            hs = h0 * (moves + 1) if any(d in direction for d in ("left", "right", "zoom")) else h0
            vs = v0 * (moves + 1) if any(d in direction for d in ("up", "down", "zoom")) else v0
            left, top, right, lower = reference_view(meta, hs, vs)
            assert left <= box[0] and top <= box[1] and right >= box[2] and lower >= box[3], direction
