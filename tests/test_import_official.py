"""import-official: splits by the official filter, load_dataset round trip, and bad input with nothing written."""

import re
import copy
import io
import json

import datasets
import numpy as np
import pytest
from PIL import Image

from proactivebench.builders.official import import_official, official_filter_ids
from proactivebench.samples.release import golden_entries, write_release
from proactivebench.builders.scenarios import EntryError
from proactivebench.cli import main
from proactivebench.store import count_rows, layout


def test_official_filter_ids_shipped_as_package_data():
    ids = official_filter_ids()
    assert sum(len(v) for v in ids.values()) == 7557
    assert {k: len(v) for k, v in ids.items()} == {
        "rod": 88, "vsod": 42, "mvpn": 2591, "imagenet_c": 1095, "quickdraw": 2105, "changeit": 396, "coco": 1240,
    }


def test_splits_follow_the_filter_and_weak_vsod_is_dropped(imported_dir):
    counts = count_rows(imported_dir)
    assert counts["coco"] == {"test": 3, "excluded": 1}
    assert counts["vsod"] == {"test": 1}  # id 7 has strong_occlusions = False
    report = json.loads((imported_dir / "import_report.json").read_text())
    assert report["dropped"]["vsod"] == {"weak_occlusion": 1}


def test_load_dataset_default_and_per_source(imported_dir, release_dir):
    everything = datasets.load_dataset(str(imported_dir), split="test")
    assert len(everything) == 10
    rod = datasets.load_dataset(str(imported_dir), "rod", split="test")
    assert sorted(rod["sample_id"]) == ["rod-000000", "rod-000001"]
    assert len(datasets.load_dataset(str(imported_dir), "coco", split="full")) == 4
    # Frames decode to exactly the pixels that went in.
    row = rod.cast_column("frames", datasets.List(datasets.Image(decode=False)))[0]
    for frame in row["frames"]:
        stored = np.asarray(Image.open(io.BytesIO(frame["bytes"])))
        original = np.asarray(Image.open(release_dir / frame["path"]))
        assert np.array_equal(stored, original)
        assert frame["bytes"] == (release_dir / frame["path"]).read_bytes()


def test_reimport_replaces_rather_than_duplicates(release_dir, tmp_path):
    out = tmp_path / "bench"
    import_official(release_dir, out)
    import_official(release_dir, out)
    assert count_rows(out)["rod"] == {"test": 2}


def _bad_release(tmp_path, mutate):
    entries = copy.deepcopy(golden_entries())
    mutate(entries)
    return write_release(tmp_path / "release", entries)


def _assert_nothing_written(out, before):
    assert layout(out) == before
    assert not [p for p in out.rglob("*") if ".staging" in p.name]


@pytest.fixture
def existing_out(release_dir, tmp_path):
    """An output folder that already holds a good import: a failed import must leave it as it was."""
    out = tmp_path / "bench"
    import_official(release_dir, out, sources=["rod"])
    return out, layout(out)


def test_malformed_jsonl_line(tmp_path, existing_out):
    out, before = existing_out
    data = _bad_release(tmp_path, lambda e: None)
    path = data / "QuickDraw_preprocessed.jsonl"
    path.write_text(path.read_text() + '{"id": 5, "prompt": \n')
    with pytest.raises(EntryError, match=r"QuickDraw_preprocessed\.jsonl:2: malformed JSON"):
        import_official(data, out)
    _assert_nothing_written(out, before)


def test_answer_not_in_categories(tmp_path, existing_out):
    out, before = existing_out
    data = _bad_release(tmp_path, lambda e: e["mvpn"][0].update(answer="Towel."))
    with pytest.raises(EntryError, match=r"MVP-N_preprocessed\.jsonl:1: answer 'Towel\.' is not in categories"):
        import_official(data, out)
    _assert_nothing_written(out, before)


def test_missing_image_file(tmp_path, existing_out):
    out, before = existing_out
    data = _bad_release(tmp_path, lambda e: None)
    (data / "QuickDraw/bed/0/0001.png").unlink()
    with pytest.raises(EntryError, match=r"QuickDraw_preprocessed\.jsonl:1: missing image file .*0001\.png"):
        import_official(data, out)
    _assert_nothing_written(out, before)


def test_image_template_escaping_the_data_folder(tmp_path, existing_out):
    out, before = existing_out
    data = _bad_release(tmp_path, lambda e: None)
    lines = (data / "QuickDraw_preprocessed.jsonl").read_text().splitlines()
    record = json.loads(lines[0])
    record["image_template"] = "../outside/{image}.png"
    (data / "QuickDraw_preprocessed.jsonl").write_text(json.dumps(record) + "\n")
    with pytest.raises(EntryError, match=r"jsonl:1: image path '\.\./outside/0000\.png' escapes the data folder"):
        import_official(data, out)
    _assert_nothing_written(out, before)


def test_unknown_dataset_file_name(tmp_path, existing_out):
    out, before = existing_out
    data = _bad_release(tmp_path, lambda e: None)
    (data / "Pascal-VOC_preprocessed.jsonl").write_text("{}\n")
    with pytest.raises(EntryError, match=r"Pascal-VOC_preprocessed\.jsonl: unknown dataset file name 'Pascal-VOC'"):
        import_official(data, out)
    _assert_nothing_written(out, before)


def test_coco_crop_entirely_outside_the_image(tmp_path, existing_out):
    out, before = existing_out
    crop = {"top": 5000, "left": 5000, "height": 5200, "width": 5300}
    data = _bad_release(tmp_path, lambda e: e["coco"][2].update(crop=crop))
    with pytest.raises(EntryError, match=r"coco2014_preprocessed\.jsonl:3: crop .* lies entirely outside image"):
        import_official(data, out)
    _assert_nothing_written(out, before)


def test_corrupt_image_names_the_file(tmp_path, existing_out):
    out, before = existing_out
    data = _bad_release(tmp_path, lambda e: None)
    (data / "MVP-N/obj/0/0003.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(EntryError, match=rf"MVP-N_preprocessed\.jsonl:1: image {re.escape(str((data / 'MVP-N/obj/0/0003.png').resolve()))} does not decode"):
        import_official(data, out)
    _assert_nothing_written(out, before)


def test_cli_reports_bad_input_on_one_line(tmp_path, capsys):
    data = _bad_release(tmp_path, lambda e: e["mvpn"][0].update(answer="Towel."))
    code = main(["import-official", "--data-dir", str(data), "--out", str(tmp_path / "out")])
    last = capsys.readouterr().err.strip().splitlines()[-1]  # progress bars come before it
    assert code == 2 and last.startswith("error: ") and "answer 'Towel.' is not in categories" in last


def test_cli_import_prints_counts(release_dir, tmp_path, capsys):
    assert main(["import-official", "--data-dir", str(release_dir), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "coco: test     3  excluded     1" in out
