"""Registries fill themselves: a package's modules are imported and each registers what it defines, so adding a
source, a raw builder or a backend is adding a module, never editing a hand-kept import list."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def import_submodules(package: str) -> list[ModuleType]:
    """Every module of `package` (not sub-packages, not `_private` ones), imported, in name order."""
    parent = importlib.import_module(package)
    names = sorted(
        info.name for info in pkgutil.iter_modules(parent.__path__) if not info.ispkg and not info.name.startswith("_")
    )
    return [importlib.import_module(f"{package}.{name}") for name in names]
