"""The `sample-data` subcommand: the bundled sample of every source in its native download layout."""

from __future__ import annotations

import argparse
from pathlib import Path

from proactivebench.sources import SOURCE_NAMES


def register(subparsers: argparse._SubParsersAction) -> None:
    sample = subparsers.add_parser(
        "sample-data",
        help="write a small sample of every source in its native download layout",
        description="Write OUT/<source>/ for each source, laid out exactly as the source's download unpacks "
        "(folders, file names, annotation formats), with small generated pictures. `proactivebench build SOURCE "
        "--raw-dir OUT/<source>` builds it.",
    )
    sample.add_argument("out", type=Path, metavar="OUT", help="output folder")
    sample.add_argument("--sources", nargs="+", choices=SOURCE_NAMES, help="only these sources (default: all)")
    sample.add_argument("--per-source", type=int, default=4, metavar="N", help="episodes per source (default 4)")
    sample.add_argument("--seed", type=int, default=0, help="seed of the generated pictures (default 0)")
    sample.set_defaults(func=run_sample_data)


def run_sample_data(args: argparse.Namespace) -> int:
    from .native import write_sample_data  # lazy: `--help` stays fast

    written = write_sample_data(args.out, args.sources, args.per_source, args.seed)
    for source, folder in written.items():
        print(f"{source:>11}: {folder}")
    return 0
