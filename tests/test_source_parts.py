"""Every registered source has all its parts (docs/adding_a_source.md): the spec's fields and scenario rules, a
raw builder with its native sample writer, a release sample the importer accepts, a CoT prompt and a shot policy
the few-shot mode knows, a train rank. The checks also run on planted incomplete specs, to show they catch them."""

from __future__ import annotations

import types

import pytest

import proactivebench.sources as sources_registry
from proactivebench.builders.build_runner import raw_source_names
from proactivebench.builders.official import import_official
from proactivebench.builders.raw import RAW_SOURCES, RawSource
from proactivebench.eval.fewshot import TRAJECTORIES
from proactivebench.samples.release import write_release
from proactivebench.sources import SOURCES, SourceSpec
from proactivebench.sources.quickdraw import QuickDrawSpec
from proactivebench.sources.spec import LinearSpec
from proactivebench.store import count_rows

RAW_METHODS = ("locate", "items", "to_entry", "write_sample")


def source_problems(spec: SourceSpec, tmp_path) -> list[str]:
    """What the source `spec.name` lacks, one line per missing part."""
    problems = [f"spec: {part}" for part in spec.missing_parts()]
    if spec.shot_policy not in TRAJECTORIES:
        problems.append(f"few-shot: no trajectory rule {spec.shot_policy!r}")
    if not spec.cot_prompt.strip():
        problems.append("few-shot: an empty cot_prompt")
    if spec.name not in raw_source_names():
        problems.append("no raw builder (builders/sources/<key>.py registering a RawSource)")
    else:
        builder = type(RAW_SOURCES[spec.name])
        problems += [
            f"raw builder: {name}() not implemented" for name in RAW_METHODS
            if getattr(builder, name) is getattr(RawSource, name)
        ]
    try:
        records = spec.release_sample()
    except NotImplementedError:
        return problems + ["release sample: release_sample() not implemented"]
    if not records:
        return problems + ["release sample: no records"]
    try:
        release = write_release(tmp_path / "release", {spec.name: records})
        report = import_official(release, tmp_path / "bench", sources=[spec.name])
    except Exception as error:  # a missing rule or image surfaces here; name it
        return problems + [f"release sample does not import: {type(error).__name__}: {error}"]
    rows = count_rows(tmp_path / "bench").get(spec.name, {})
    dropped = report.dropped.get(spec.name, {})
    if not rows or sum(rows.values()) + sum(dropped.values()) != len(records):
        problems.append(f"release sample: {len(records)} records became rows {rows}, dropped {dropped}")
    return problems


@pytest.mark.parametrize("name", list(SOURCES))
def test_every_registered_source_has_all_its_parts(name, tmp_path):
    assert source_problems(SOURCES[name], tmp_path) == []


def test_registry_order_and_unique_keys():
    specs = list(SOURCES.values())
    assert [s.position for s in specs] == sorted(s.position for s in specs)
    assert len({s.train_rank for s in specs}) == len(specs)
    assert len({s.official_name for s in specs}) == len({s.acronym for s in specs}) == len(specs)


def test_a_spec_with_missing_parts_is_reported(tmp_path):
    class Planted(QuickDrawSpec):  # no raw builder, an empty CoT prompt, an unknown shot policy
        name = "planted"
        cot_prompt = ""
        shot_policy = "teleport"

    problems = source_problems(Planted(), tmp_path)
    assert any("no raw builder" in p for p in problems)
    assert any("cot_prompt" in p for p in problems)
    assert any("shot_policy 'teleport'" in p for p in problems)


def test_a_spec_without_rules_or_facts_is_reported():
    class Bare(LinearSpec):  # frame() left out is fine for the check; the facts and release parts are not
        name = "bare"
        official_name = "Bare"
        action_space = ("stop", "details")

    missing = Bare.missing_parts()
    for part in ("acronym", "scenario", "position", "cot_prompt", "train_rank", "reference()", "oeg_string()",
                 "release_sample()", "release_images()"):
        assert part in missing


def test_the_registry_refuses_an_incomplete_spec_naming_it(monkeypatch):
    class Bare(SourceSpec):
        name = "bare"

    module = types.ModuleType("proactivebench.sources.bare")
    Bare.__module__ = module.__name__
    module.Bare = Bare
    monkeypatch.setattr(sources_registry, "import_submodules", lambda package: [module])
    with pytest.raises(TypeError, match=r"proactivebench\.sources\.bare\.Bare lacks official_name, .*start\(\)"):
        sources_registry._discover()
