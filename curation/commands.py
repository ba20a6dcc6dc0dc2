"""Subcommands of the curation stage: `curate first-turn | filter | roster | publish` and `publish`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from proactivebench.eval.backends.options import add_backend_arguments, backend_options
from proactivebench.filter_rule import DEFAULT_THRESHOLD


def register(subparsers: argparse._SubParsersAction) -> None:
    curate = subparsers.add_parser(
        "curate",
        help="first-turn predictions of a model roster and the paper's 25%% filter",
        description="Turn built episodes into the benchmark: predict the first MCQA turn of every episode for "
        "each roster model, then exclude the samples that too many models solve at once.",
    )
    steps = curate.add_subparsers(dest="curate_command", metavar="STEP", required=True)

    first = steps.add_parser(
        "first-turn",
        help="the first MCQA turn of every test/excluded episode for one model (or the roster)",
        description="Write <out>/<model>.parquet (model, sample_id, source, output, verdict, correct) for the "
        "first turn of every test and excluded episode. Resumable: rerun the same command after an interruption. "
        "A first turn that ended in a backend error (a server answering 500, a timeout) is not a prediction: "
        "rerunning the same command retries it, and one that fails again stays recorded as an error.",
    )
    first.add_argument("--dataset", type=Path, required=True, help="hub-layout episode folder")
    who = first.add_mutually_exclusive_group(required=True)
    who.add_argument("--model", help="hf:<id or dir>, openai:<model> or baseline:<name>")
    who.add_argument(
        "--roster", nargs="?", const="", metavar="FILE",
        help="every model of a roster file in turn (default: the paper's 22, proactivebench/data/roster.json)",
    )
    first.add_argument("--out", type=Path, required=True, help="folder of prediction files")
    first.add_argument("--batch-size", type=int, help="requests per backend call (default: the backend's)")
    first.add_argument("--hint", action="store_true", help="add the scenario hint to the question")
    first.add_argument("--limit", type=int, help="predict at most N more episodes per model (smoke runs)")
    add_backend_arguments(first)
    first.set_defaults(func=run_first_turn)

    filt = steps.add_parser(
        "filter",
        help="exclude samples that at least THRESHOLD of the roster solves at the first turn (one DuckDB query)",
        description="Join the prediction files with the dataset's test+excluded pool and write a new folder: "
        "test = solve rate < threshold, excluded = the rest, first_turn_solve_rate in every row, train copied. "
        "Refuses predictions that do not cover the same samples for every model, or that repeat rows.",
    )
    filt.add_argument("--dataset", type=Path, required=True, help="hub-layout episode folder (the pre-filter pool)")
    filt.add_argument("--predictions", type=Path, required=True, help="folder of <model>.parquet prediction files")
    filt.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                      help=f"exclusion threshold (default: the paper's {DEFAULT_THRESHOLD})")
    filt.add_argument("--out", type=Path, required=True, help="new hub-layout folder to write")
    filt.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    filt.set_defaults(func=run_filter)

    roster = steps.add_parser("roster", help="print the model roster (one SPEC a line, for shell loops)")
    roster.add_argument("file", nargs="?", help="roster file (default: the paper's 22)")
    roster.set_defaults(func=run_roster)

    _add_publish(steps, "publish")
    _add_publish(subparsers, "publish")


def _add_publish(subparsers: argparse._SubParsersAction, name: str) -> None:
    publish = subparsers.add_parser(
        name,
        help="render the dataset card, check the folder; upload to the Hub only with --push",
        description="Render README.md from dataset_card.md (configs, counts, features, per-source licenses), then "
        "check the folder: schema, shard and row-group sizes, every image decodes, card counts = rows on disk. "
        "Refuses on any problem. Without --push nothing leaves the machine (the upload plan is printed).",
    )
    publish.add_argument("--dataset", type=Path, required=True, help="hub-layout folder to publish")
    publish.add_argument("--repo-id", help="ORG/NAME of the Hub dataset repo")
    publish.add_argument("--push", action="store_true", help="upload (token from HF_TOKEN or `hf auth login`)")
    publish.add_argument("--private", action="store_true", help="create the repo private")
    publish.add_argument("--template", type=Path, help="card template (default: dataset_card.md of this project)")
    publish.add_argument(
        "--keep-card", action="store_true", help="publish the folder's README.md as it is (still checked against the data)"
    )
    publish.add_argument("--num-proc", type=int, default=1, help="processes that check shards (decode frames) in parallel")
    publish.set_defaults(func=run_publish)


def run_first_turn(args: argparse.Namespace) -> int:
    from proactivebench.eval.commands import backend_errors_line

    from .first_turn import RosterEntry, first_turn, load_roster, resolve_options

    common = dict(batch_size=args.batch_size, hint=args.hint, limit=args.limit)
    # Options are resolved per model, when its turn comes: a missing API key stops the loop there, after the
    # models before it are done (each file is resumable).
    jobs = load_roster(args.roster or None) if args.roster is not None else [RosterEntry(args.model)]
    failed = []
    for entry in jobs:
        options = {**resolve_options(entry.options), **backend_options(args)}
        spec = entry.spec
        report = first_turn(args.dataset, spec, args.out, backend_options=options, **common)
        errors = f", {report.errors} backend errors (rerun to retry them)" if report.errors else ""
        if report.retried:
            errors = f", {report.retried} earlier backend errors retried" + errors
        print(
            f"{spec}: {report.predicted} predicted, {report.skipped} already done, "
            f"{report.correct}/{report.total} correct at the first turn{errors} -> {report.path}"
        )
        if report.errors:
            failed.append(backend_errors_line(report.errors, report.predicted, spec, options.get("base_url")))
    if failed:  # a failure, not a prediction: the exit status says so (as in `eval`)
        print(f"error: {failed[0]}" + (f" (and {len(failed) - 1} more models)" if len(failed) > 1 else ""),
              file=sys.stderr)
        return 1
    return 0


def run_filter(args: argparse.Namespace) -> int:
    from .filter import REPORT_NAME, filter_dataset

    report = filter_dataset(args.dataset, args.predictions, args.out, args.threshold, overwrite=args.overwrite)
    print(f"{len(report.models)} models, threshold {args.threshold:g}: a sample is excluded when >= "
          f"{args.threshold:.0%} of them answer it right at the first turn")
    print(report.table())
    print(f"wrote {args.out} (counts: {args.out / REPORT_NAME})")
    return 0


def run_roster(args: argparse.Namespace) -> int:
    from .first_turn import load_roster

    for entry in load_roster(args.file):
        print(entry.spec)
    return 0


def run_publish(args: argparse.Namespace) -> int:
    from .publish import publish

    result = publish(
        args.dataset, args.repo_id, push_to_hub=args.push, render=not args.keep_card, template=args.template,
        private=args.private, num_proc=args.num_proc,
    )
    checks = result.checks
    print(
        f"checked {checks.shards} shards, {checks.rows} rows, {checks.frames} frames "
        f"(largest shard {checks.largest_shard / 1024**2:.1f} MB, largest row group "
        f"{checks.largest_row_group / 1024**2:.1f} MiB); card {result.card} agrees with the data"
    )
    if result.plan is not None:
        print(result.plan.describe())
    print(f"pushed to https://huggingface.co/datasets/{args.repo_id}" if result.pushed else "nothing uploaded (no --push)")
    return 0
