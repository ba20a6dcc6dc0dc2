"""The `proactivebench` command. Each stage registers its subcommands from its own module (a registry, not an
if-chain): a module listed in COMMAND_MODULES exposes `register(subparsers)`, and each subcommand sets
`func(args) -> int | None` through `set_defaults`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

# Order = order in `--help`.
COMMAND_MODULES = (
    "proactivebench.samples.commands",  # sample-data
    "proactivebench.builders.commands",  # build, import-official
    "proactivebench.curation.commands",  # curate first-turn / filter, publish
    "proactivebench.eval.commands",  # eval, judge
    "proactivebench.eval.report_commands",  # report
    "proactivebench.curation.browse_commands",  # browse
    "proactivebench.train.commands",  # train-grpo
    "proactivebench.demo",  # demo
)


class CommandError(Exception):
    """Bad input or a failed step: printed as one line, exit code 2."""


def _optional_import(name: str):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name == name:  # that stage is not installed in this tree; anything else is a real error
            return None
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="proactivebench",
        description="Build, curate, publish and evaluate ProactiveBench.",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="log debug messages and full tracebacks")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = _optional_import(name)
        if module is not None:
            module.register(subparsers)
    return parser


NOISY_LOGGERS = ("httpx", "httpx2", "httpcore", "httpcore2", "openai", "aiohttp")


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    if not args.verbose:  # HTTP clients log every request at INFO: one line per turn would bury the progress bar
        for name in NOISY_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (CommandError, ValueError, OSError) as error:
        if args.verbose:
            raise
        print(f"error: {_one_line(error)}", file=sys.stderr)
        return 2


def _one_line(error: BaseException) -> str:
    """An OS error names its file first (a folder where a file should be, a file where a folder should be)."""
    if isinstance(error, OSError) and error.filename and error.strerror:
        return f"{error.filename}: {error.strerror}"
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


if __name__ == "__main__":
    sys.exit(main())
