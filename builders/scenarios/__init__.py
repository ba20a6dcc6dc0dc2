"""Per-scenario knowledge, one module each, shared by the raw-source builders and the release importer."""

from __future__ import annotations

from proactivebench.sources import get_source

from .base import Entry, EntryError, FrameReader, FrameRef, Scenario, StateSpec, entry_to_episode
from .changeit import ChangeItScenario
from .coco import COCOScenario
from .imagenet_c import ImageNetCScenario
from .mvpn import MVPNScenario
from .quickdraw import QuickDrawScenario
from .rod import RODScenario
from .vsod import VSODScenario

SCENARIO_RULES: dict[str, Scenario] = {
    s.source: s
    for s in (
        RODScenario(), VSODScenario(), MVPNScenario(), ImageNetCScenario(), QuickDrawScenario(),
        ChangeItScenario(), COCOScenario(),
    )
}


def scenario_for(source: str) -> Scenario:
    get_source(source)  # a clear error for an unknown name
    return SCENARIO_RULES[source]


__all__ = [
    "Entry", "EntryError", "FrameReader", "FrameRef", "Scenario", "StateSpec", "entry_to_episode", "SCENARIO_RULES",
    "scenario_for",
]
