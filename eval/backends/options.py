"""Backend options as command-line flags, derived from each backend's option dataclass.

A field whose metadata carries `cli_flag(help)` becomes `--field-name` on every command that runs models (`eval`,
`judge`, `curate first-turn`), typed from its annotation; one field name shared by several backends is one flag
whose help says which backends use it. No flag list is kept by hand, and `load_backend` refuses a name no
backend declares, so a flag and an option cannot drift apart.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any

from .base import discover_backends


def cli_flag(help: str, **argparse_kwargs: Any) -> dict[str, Any]:
    """Field metadata: expose this option as a flag (`choices=`, `metavar=` pass through to argparse)."""
    return {"cli": {"help": help, **argparse_kwargs}}


@dataclass(frozen=True)
class BackendFlag:
    name: str  # the option (field) name; the flag is --name-with-dashes
    type: type
    kinds: tuple[str, ...]  # the backends that take it, in registration order
    help: str
    argparse_kwargs: dict[str, Any]

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def option_classes() -> dict[str, type]:
    """kind -> the option dataclass of each registered backend."""
    return {
        kind: factory.OPTION_CLASS for kind, factory in discover_backends().items() if hasattr(factory, "OPTION_CLASS")
    }


def _plain_type(annotation: Any) -> type:
    """`int | None` -> int; `float` -> float."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        (annotation,) = [a for a in typing.get_args(annotation) if a is not type(None)]
    return annotation


def backend_flags() -> list[BackendFlag]:
    classes = option_classes()
    flags: dict[str, BackendFlag] = {}
    for cls in classes.values():
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            cli = dict(field.metadata.get("cli") or {})
            if not cli or field.name in flags:  # the first backend's help and type stand for all
                continue
            kinds = tuple(kind for kind, other in classes.items() if field.name in other.__dataclass_fields__)
            flags[field.name] = BackendFlag(field.name, _plain_type(hints[field.name]), kinds, cli.pop("help"), cli)
    return list(flags.values())


def add_backend_arguments(parser: argparse.ArgumentParser, help_overrides: dict[str, str] | None = None) -> None:
    """One argument group with every backend flag; unset flags stay None, so each backend keeps its default."""
    group = parser.add_argument_group("backend options (each backend uses those that apply to it)")
    for flag in backend_flags():
        text = (help_overrides or {}).get(flag.name, flag.help)
        kwargs = {"metavar": {int: "N", float: "X"}.get(flag.type), **flag.argparse_kwargs}
        group.add_argument(flag.flag, type=flag.type, help=f"{', '.join(flag.kinds)}: {text}", **kwargs)


def backend_options(args: argparse.Namespace) -> dict[str, Any]:
    """The backend options a user set on the command line (flags left unset are omitted)."""
    names = [flag.name for flag in backend_flags()]
    options = {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
    if "temperature" in options:  # hf samples only when told to; a temperature above 0 means "sample"
        options["do_sample"] = options["temperature"] > 0
    return options
