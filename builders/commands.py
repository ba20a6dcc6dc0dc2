"""Subcommands of the builders stage: build, import-official."""

from __future__ import annotations

import argparse
from pathlib import Path

from proactivebench.sources import SOURCE_NAMES


def register(subparsers: argparse._SubParsersAction) -> None:
    register_raw_builders(subparsers)
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
    from proactivebench.safe_files import OutputFolder

    OutputFolder.check(args.out, "--out", {"--data-dir": args.data_dir, "--train-parquet": args.train_parquet}, inside_ok=True)
    if args.train_parquet is not None:
        from .official_train import REPORT_NAME, import_train, report_lines

        train_report = import_train(args.train_parquet, args.out, on_error=args.on_error, sources=args.sources)
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


# --- build: the raw-source builders ----------------------------------------------------------


def register_raw_builders(subparsers: argparse._SubParsersAction) -> None:
    build = subparsers.add_parser(
        "build",
        help="build one source's episodes from its native download",
        description="Read a source in the layout its original download unpacks to and write hub-layout episodes "
        "to --out/data/<source>/<split>-*.parquet, with a build report in --out/build_report.json. The output "
        "is replaced only when the build succeeds; the same --seed gives byte-identical parquet.",
    )
    build.add_argument("source", choices=SOURCE_NAMES, metavar="SOURCE", help=f"one of {', '.join(SOURCE_NAMES)}")
    build.add_argument("--raw-dir", type=Path, required=True, help="the folder the source was downloaded into")
    build.add_argument("--out", type=Path, required=True, help="hub-layout output folder")
    build.add_argument("--split", choices=("test", "train"), default="test", help="split to build (default test)")
    build.add_argument("--num-proc", type=int, default=1, metavar="N", help="worker processes (default 1)")
    build.add_argument("--seed", type=int, default=0, help="seed of questions, options and categories (default 0)")
    build.add_argument(
        "--on-error", choices=("fail", "skip"), default="fail",
        help="bad input: stop naming the file (default) or skip the item and record it in the report",
    )
    build.add_argument("--limit", type=int, metavar="N", help="build only the first N items")
    build.set_defaults(func=run_build)


def run_build(args: argparse.Namespace) -> int:
    from .build_runner import REPORT_NAME, build_source

    report = build_source(
        args.source, args.raw_dir, args.out, split=args.split, seed=args.seed, num_proc=args.num_proc,
        on_error=args.on_error, limit=args.limit,
    )
    print(f"{report.source}: read {report.root}")
    rate = report.images / report.seconds if report.seconds else 0.0
    print(
        f"{report.source}/{report.split}: {report.episodes} episodes, {report.images} images "
        f"({rate:.0f} images/s), {len(report.skipped)} skipped, {len(report.dropped)} dropped"
    )
    for item in report.skipped[:5]:
        print(f"  skipped {item.key}: {item.reason}")
    print(f"wrote {args.out} (report: {args.out / REPORT_NAME})")
    return 0
