"""Subcommands of the builders stage."""

from __future__ import annotations

import argparse
from pathlib import Path

from proactivebench.sources import SOURCE_NAMES


def register(subparsers: argparse._SubParsersAction) -> None:
    importer = subparsers.add_parser(
        "import-official",
        help="convert the authors' released test folder into our episodes (official filter applied)",
        description="Convert the authors' release (seven <Name>_preprocessed.jsonl files beside the extracted "
        "image folders) into hub-layout episodes: the paper's kept ids become `test`, the rest `excluded`. "
        "With --train-parquet, also (or only) their GRPO train split (parquet shards) becomes `train` episodes.",
    )
    importer.add_argument("--data-dir", type=Path, help="the release's extracted test/ folder")
    importer.add_argument(
        "--train-parquet", type=Path, metavar="DIR",
        help="folder with the authors' train-*.parquet shards (their Hub dataset's data/ folder); at least one of "
        "--data-dir and --train-parquet is required",
    )
    importer.add_argument(
        "--on-error", choices=("fail", "skip"), default="fail",
        help="a train row that cannot be converted: stop (default) or skip it and record it in the report",
    )
    importer.add_argument("--out", type=Path, required=True, help="hub-layout output folder")
    importer.add_argument("--sources", nargs="+", choices=SOURCE_NAMES, help="only these sources")
    importer.set_defaults(func=run_import_official)


def run_import_official(args: argparse.Namespace) -> int:
    if args.data_dir is None and args.train_parquet is None:
        raise ValueError("give --data-dir (the test release), --train-parquet (the train shards) or both")
    if args.train_parquet is not None:
        from .official_train import REPORT_NAME, import_train, report_lines

        train_report = import_train(args.train_parquet, args.out, on_error=args.on_error)
        print("\n".join(report_lines(train_report)))
        print(f"wrote {args.out} (report: {args.out / REPORT_NAME})")
    if args.data_dir is None:
        return 0
    from .official import import_official

    report = import_official(args.data_dir, args.out, args.sources)
    for source, counts in report.counts.items():
        dropped = ", ".join(f"{k}: {v}" for k, v in report.dropped.get(source, {}).items())
        missing = len(report.missing_official_ids.get(source, []))
        extra = f" (dropped {dropped})" if dropped else ""
        extra += f" ({missing} official ids not in the release)" if missing else ""
        print(f"{source:>11}: test {counts.get('test', 0):>5}  excluded {counts.get('excluded', 0):>5}{extra}")
    print(f"wrote {args.out} (report: {args.out / 'import_report.json'})")
    return 0
