"""The source datasets: one `SourceSpec` per module of this package, found at import (docs/adding_a_source.md),
so no code branches on a source name and no list here names them."""

from __future__ import annotations

from proactivebench.discovery import import_submodules

from .spec import SourceSpec


def _discover() -> dict[str, SourceSpec]:
    specs: list[SourceSpec] = []
    for module in import_submodules(__name__):
        for value in vars(module).values():
            # A concrete spec names itself; the base classes (and specs imported from elsewhere) do not here.
            if isinstance(value, type) and issubclass(value, SourceSpec) and "name" in vars(value):
                if value.__module__ != module.__name__:
                    continue
                missing = value.missing_parts()
                if missing:
                    raise TypeError(f"{module.__name__}.{value.__name__} lacks {', '.join(missing)}")
                specs.append(value())
    specs.sort(key=lambda s: s.position)
    for field in ("name", "official_name", "acronym", "position", "train_rank"):
        values = [getattr(s, field) for s in specs]
        if len(set(values)) != len(values):
            raise TypeError(f"two sources share a {field}: {values}")
    return {s.name: s for s in specs}


SOURCES: dict[str, SourceSpec] = _discover()
SourceInfo = SourceSpec  # the name callers used for a registry entry

SOURCE_NAMES: tuple[str, ...] = tuple(SOURCES)
BY_OFFICIAL_NAME: dict[str, SourceSpec] = {s.official_name: s for s in SOURCES.values()}
SCENARIO_NAMES: tuple[str, ...] = tuple(s.scenario for s in SOURCES.values())


def get_source(name: str) -> SourceSpec:
    try:
        return SOURCES[name]
    except KeyError:
        raise ValueError(f"unknown source {name!r}; expected one of {', '.join(SOURCE_NAMES)}") from None
