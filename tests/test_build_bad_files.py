"""Builder inputs where a file is not what it should be (issue 17, item 6): a folder or a looping link in place of
a file, a non-UTF-8 CSV, an empty category file. Each gives exit 2 with one line naming the file (no traceback)
and writes no episode; an empty or drawing-less QuickDraw file is reported, never silently left out."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from proactivebench.cli import main

from build_helpers import build, write_sample


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PROACTIVEBENCH_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("samples")
    for source in ("quickdraw", "coco", "vsod", "mvpn", "changeit"):
        write_sample(folder, source, per_source=2)
    return folder


@pytest.fixture
def raw(samples, tmp_path):
    def copy(source: str) -> Path:
        shutil.copytree(samples / source, tmp_path / source, symlinks=True)
        return tmp_path / source
    return copy


def refused(source: str, raw: Path, out: Path, capsys, *extra: str) -> str:
    """Run the build through the CLI; assert exit 2, one line, no traceback, no episode written; the line."""
    code = main(["build", source, "--raw-dir", str(raw), "--out", str(out), *extra])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err
    assert not list(out.rglob("*.parquet"))
    return lines[0]


def _first_coco_image(raw: Path) -> Path:
    document = json.loads((raw / "annotations" / "instances_val2014.json").read_text())
    return raw / "val2014" / document["images"][0]["file_name"]


@pytest.mark.parametrize("kind", ["folder", "loop"])
def test_quickdraw_category_file_that_is_a_folder_or_a_loop(kind, raw, tmp_path, capsys):
    folder = raw("quickdraw")
    bad = folder / "zebra.ndjson"
    if kind == "folder":
        bad.mkdir()
    else:
        os.symlink("zebra.ndjson", bad)
    line = refused("quickdraw", folder, tmp_path / "out", capsys)
    assert str(bad) in line and "not a readable file" in line


@pytest.mark.parametrize("kind", ["folder", "loop"])
def test_coco_image_that_is_a_folder_or_a_loop(kind, raw, tmp_path, capsys):
    folder = raw("coco")
    image = _first_coco_image(folder)
    image.unlink()
    if kind == "folder":
        image.mkdir()
    else:
        os.symlink(image.name, image)
    line = refused("coco", folder, tmp_path / "out", capsys)
    assert str(image) in line and ("is a folder" if kind == "folder" else "is a link that loops") in line
    # With --on-error skip the image is a recorded skip and the rest builds.
    assert main(["build", "coco", "--raw-dir", str(folder), "--out", str(tmp_path / "skip"), "--on-error", "skip"]) == 0
    skipped = json.loads((tmp_path / "skip" / "build_report.json").read_text())["coco"]["test"]["skipped"]
    assert len(skipped) == 1 and str(image) in skipped[0]["reason"]


@pytest.mark.parametrize("kind", ["folder", "loop"])
def test_coco_annotation_file_that_is_a_folder_or_a_loop(kind, raw, tmp_path, capsys):
    folder = raw("coco")
    annotations = folder / "annotations" / "instances_train2014.json"
    annotations.unlink()
    if kind == "folder":
        annotations.mkdir()
    else:
        os.symlink(annotations.name, annotations)
    line = refused("coco", folder, tmp_path / "out", capsys, "--split", "train")
    assert str(annotations) in line and "not a readable file" in line


@pytest.mark.parametrize("source, relative", [
    ("vsod", "OcclusionDataSet-MM20/labels.csv"),
    ("mvpn", "classes.csv"),
    ("changeit", "categories.csv"),
])
def test_a_csv_that_is_not_utf8_names_the_file(source, relative, raw, tmp_path, capsys):
    folder = raw(source)
    path = folder / relative
    text = path.read_text(encoding="utf-8") if path.exists() else "class,name\n0010,Caf\u00e9 latte\n"
    path.write_bytes(text.replace("e", "\u00e9", 1).encode("latin-1"))
    line = refused(source, folder, tmp_path / "out", capsys)
    assert str(path) in line and "not UTF-8 text" in line


def test_an_empty_category_file_is_an_error_not_a_vanished_class(raw, tmp_path, capsys):
    folder = raw("quickdraw")
    victim = sorted(folder.glob("*.ndjson"))[0]
    victim.write_text("")
    line = refused("quickdraw", folder, tmp_path / "out", capsys)
    assert str(victim) in line and "empty file" in line
    report = build("quickdraw", folder, tmp_path / "skip", on_error="skip")
    assert [s.key for s in report.skipped] == [victim.name] and "empty file" in report.skipped[0].reason
    assert report.episodes > 0


def test_a_category_file_without_an_eligible_drawing_is_a_recorded_drop(raw, tmp_path):
    folder = raw("quickdraw")
    victim = sorted(folder.glob("*.ndjson"))[0]
    lines = [json.loads(line) for line in victim.read_text().splitlines()]
    victim.write_text("".join(json.dumps({**r, "recognized": False}) + "\n" for r in lines))
    report = build("quickdraw", folder, tmp_path / "out")  # default --on-error fail: a rule, not an error
    assert [d.key for d in report.dropped] == [victim.name]
    assert str(victim) in report.dropped[0].reason and "no eligible drawing" in report.dropped[0].reason


@pytest.mark.parametrize("out_name", ["out", "new/nested/out"])
def test_a_failed_build_leaves_no_new_output_folder(out_name, raw, tmp_path, capsys):
    folder = raw("coco")
    image = _first_coco_image(folder)
    image.write_bytes(image.read_bytes()[:300])  # truncated: the build fails on it
    before = sorted(p.name for p in tmp_path.iterdir())
    refused("coco", folder, tmp_path / out_name, capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # neither `out` nor `new/` was left behind
    # A folder that was there before stays, with what it held.
    existing = tmp_path / "kept"
    existing.mkdir()
    (existing / "notes.txt").write_text("mine")
    refused("coco", folder, existing, capsys)
    assert sorted(p.name for p in existing.iterdir()) == ["notes.txt"]
