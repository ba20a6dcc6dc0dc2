"""ImageNet-C raw builder: corruption folders → image-quality episodes; wnid mapping; bad input; determinism."""

from __future__ import annotations

import re
import shutil

import pytest

from build_helpers import assert_frames_decode, assert_no_leftovers, build, episodes, frame_name, write_sample
from proactivebench.builders.build_runner import BuildError
from proactivebench.builders.sources.imagenet_c import FIX_FOR, SAMPLE_CORRUPTIONS, read_mapping


@pytest.fixture
def raw(tmp_path):
    return write_sample(tmp_path / "sample", "imagenet_c", per_source=len(SAMPLE_CORRUPTIONS))


def test_shipped_mapping_has_the_thousand_classes():
    mapping = read_mapping()
    assert len(mapping) == 1000 and len({w for w, _ in mapping}) == 1000
    assert mapping[0] == ("n01440764", "tench") and dict(mapping)["n02111500"] == "Great Pyrenees"


def test_episodes_follow_the_scenario(raw, tmp_path):
    report = build("imagenet_c", raw, tmp_path / "out")
    assert report.episodes == len(SAMPLE_CORRUPTIONS) and report.images == 5 * report.episodes
    names = dict(read_mapping())
    for record in episodes(tmp_path / "out", "imagenet_c"):
        assert_frames_decode(record)
        corruption, wnid = record.meta["corruption"], record.meta["wnid"]
        fix = record.meta["quality_answer"]
        assert fix == FIX_FOR[corruption]
        assert record.answer == names[wnid].replace(" ", "_").capitalize() + "."
        quality = [i for i, o in enumerate(record.options) if o.kind == "proactive"]
        assert len(quality) == 4 and len(record.options) == 5
        assert len({record.options[i].action for i in quality}) == 4  # distractors ask for other fixes
        valid = record.options.index(next(o for o in record.options if o.text == fix))
        state = record.first_state
        for level in (5, 4, 3, 2, 1):
            assert f"{corruption}/{level}/{wnid}/" in frame_name(record, state)
            moves = record.states[state].moves
            if level > 1:
                assert [m.option for m in moves] == [valid]  # the matching fix is the only valid one
                state = moves[0].to
            else:
                assert not moves
        assert f"/1/{wnid}/" in record.frames[record.reference_frame].name
        assert record.max_turns == 5 and record.oeg_answers == [fix.rstrip("."), record.answer.rstrip(".")]


def test_num_proc_and_seed(raw, tmp_path):
    build("imagenet_c", raw, tmp_path / "one", seed=7)
    build("imagenet_c", raw, tmp_path / "two", seed=7, num_proc=2)
    shard = "data/imagenet_c/test-00000-of-00001.parquet"
    assert (tmp_path / "one" / shard).read_bytes() == (tmp_path / "two" / shard).read_bytes()


def test_unknown_wnid_is_bad_input(raw, tmp_path):
    for folder in list(raw.glob("gaussian_noise/*/n*")):
        folder.rename(folder.with_name("n99999999"))
    out = tmp_path / "out"
    with pytest.raises(BuildError, match=r"n99999999.*unknown wnid 'n99999999'"):
        build("imagenet_c", raw, out)
    assert_no_leftovers(out, "imagenet_c")
    report = build("imagenet_c", raw, out, on_error="skip")
    assert report.episodes == len(SAMPLE_CORRUPTIONS) - 1
    assert report.skipped[0].key.startswith("gaussian_noise/n99999999/")


def test_user_mapping_file_replaces_the_shipped_one(raw, tmp_path):
    wnid = next(raw.glob("contrast/5/n*")).name
    (raw / "LOC_synset_mapping.txt").write_text(f"{wnid} my thing, other name\nn00000001 a\nn00000002 b\nn00000003 c\n")
    report = build("imagenet_c", raw, tmp_path / "out", on_error="skip")
    assert report.episodes == 1 and len(report.skipped) == len(SAMPLE_CORRUPTIONS) - 1
    assert episodes(tmp_path / "out", "imagenet_c")[0].answer == "My_thing."


def test_missing_severity_and_truncated_image_are_bad_input(raw, tmp_path):
    shutil.rmtree(next(raw.glob("pixelate/3/n*")))
    victim = next(raw.glob("brightness/4/n*/*.JPEG"))
    victim.write_bytes(victim.read_bytes()[:120])
    with pytest.raises(BuildError, match=rf"image {re.escape(str(victim))} does not decode"):
        build("imagenet_c", raw, tmp_path / "out")  # the first bad item in build order stops the build
    report = build("imagenet_c", raw, tmp_path / "out", on_error="skip")
    reasons = sorted(s.reason for s in report.skipped)
    assert len(reasons) == 2 and any(victim.name in r and "does not decode" in r for r in reasons)
    assert any("pixelate" in r and "missing severity level(s) [3]" in r for r in reasons)


def write_clean_val(folder, wnids=("n02085620", "n02111500"), per_class=2):
    """Clean validation images in wnid folders (ImageFolder style), 300x260 like a small photo."""
    import random

    from PIL import ImageDraw

    from proactivebench.builders.sources._common import draw_object, encode, scene

    for w, wnid in enumerate(wnids):
        for k in range(per_class):
            rng = random.Random(f"{wnid}{k}")
            image = scene(rng, (300, 260))
            draw_object(ImageDraw.Draw(image), rng, (90, 60, 210, 220))
            path = folder / "val" / wnid / f"ILSVRC2012_val_{w * 10 + k + 1:08d}.JPEG"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(encode(image, "JPEG", 90))
    return folder


def test_generated_corruptions_from_clean_images(tmp_path, monkeypatch):
    import imagecorruptions  # noqa: F401 - scripts/install.sh installs it; its absence is a real failure

    from proactivebench.builders.sources import imagenet_c

    monkeypatch.setattr(imagenet_c, "BENCHMARK_CORRUPTIONS", ("gaussian_noise", "motion_blur", "contrast"))
    raw = write_clean_val(tmp_path / "clean")
    report = build("imagenet_c", raw, tmp_path / "a", seed=1)
    build("imagenet_c", raw / "val", tmp_path / "b", seed=1)
    assert report.episodes == 4 and report.images == 4 * 6  # levels 5..1 and the clean reference
    shard = "data/imagenet_c/test-00000-of-00001.parquet"
    assert (tmp_path / "a" / shard).read_bytes() == (tmp_path / "b" / shard).read_bytes()
    for record in episodes(tmp_path / "a", "imagenet_c"):
        assert_frames_decode(record)
        assert record.meta["generated"] and record.meta["quality_answer"] == FIX_FOR[record.meta["corruption"]]
        assert record.frames[record.reference_frame].name == record.meta["image_template"].format(level=0)
        assert {f.open().size for f in record.frames} == {(224, 224)}
        assert frame_name(record, record.first_state).split("/")[1] == "5"


def test_generation_without_the_package_is_a_clear_error(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "imagecorruptions", None)  # import fails as if not installed
    raw = write_clean_val(tmp_path / "clean", per_class=1)
    with pytest.raises(ValueError, match="pip install --no-deps imagecorruptions-imaug"):
        build("imagenet_c", raw, tmp_path / "out")
