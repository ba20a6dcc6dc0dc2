"""`proactivebench browse`: build or update the FiftyOne dataset of an episode folder, optionally serve the App."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "browse",
        help="browse episodes and model trajectories in FiftyOne",
        description=(
            "Build (or update) a persistent FiftyOne dataset with one sample per frame and a saved view "
            "'episodes' that groups frames by episode in order; with --results, per run the label of every "
            "turn on the frame it was shown and how the episode ended. Needs the `fiftyone` extra."
        ),
    )
    parser.add_argument("--dataset", type=Path, help="hub-layout episode folder")
    parser.add_argument("--results", type=Path, help="results DuckDB file of `proactivebench eval`")
    parser.add_argument("--name", help="FiftyOne dataset name (default: proactivebench-<hash of --dataset path>)")
    parser.add_argument("--cache-dir", type=Path, help="where frame images are written (default: under FiftyOne's dataset dir)")
    parser.add_argument("--splits", nargs="+", default=None, metavar="SPLIT", help="splits to include (default: all)")
    parser.add_argument("--launch", action="store_true", help="serve the App after building and wait (Ctrl-C stops)")
    parser.add_argument("--port", type=int, default=5151, help="App port (default 5151)")
    parser.add_argument("--address", default="127.0.0.1", help="App address (default 127.0.0.1, loopback only)")
    parser.add_argument(
        "--check-database", action="store_true", help="only check that FiftyOne's database starts, then exit"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from proactivebench.schema import SPLITS

    from . import browse

    if args.check_database:
        print(f"FiftyOne database OK: {browse.check_database()}")
        return 0
    if args.dataset is None:
        raise ValueError("browse needs --dataset DIR (or --check-database)")
    splits = args.splits or list(SPLITS)
    unknown = sorted(set(splits) - set(SPLITS))
    if unknown:
        raise ValueError(f"unknown split(s) {', '.join(unknown)}; expected {', '.join(SPLITS)}")
    from proactivebench.integrity import verify_folder

    if Path(args.dataset).is_dir():  # a damaged shard or an invalid row: one line, before FiftyOne starts
        verify_folder(args.dataset, [s for s in splits if s in _splits_on_disk(args.dataset)])
    result = browse.build(args.dataset, args.results, name=args.name, cache_dir=args.cache_dir, splits=splits)
    runs = f"; runs: {', '.join(result.runs)}" if result.runs else ""
    print(
        f"FiftyOne dataset {result.name}: {result.frames} frames of {result.episodes} episodes"
        f" (images in {result.cache_dir}; saved view '{browse.EPISODES_VIEW}'{runs})"
    )
    if args.launch:
        session = browse.launch(result.name, port=args.port, address=args.address)
        print(f"App at {session.url} (Ctrl-C to stop)")
        try:
            session.wait(-1)
        finally:
            session.close()
    return 0


def _splits_on_disk(dataset) -> set[str]:
    from proactivebench.store import layout

    return {split for splits in layout(dataset).values() for split in splits}
