"""`proactivebench eval` and `proactivebench judge` (docs/architecture.md §6)."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from proactivebench.sources import SOURCE_NAMES

from .backends.options import add_backend_arguments, backend_options

log = logging.getLogger(__name__)

SPEC_HELP = (
    "hf:<id or dir>[+<adapter dir>], openai:<model> (with --base-url or $OPENAI_BASE_URL), "
    "baseline:random|oracle|oracle-proactive|always-proactive|always-abstain"
)


def _eval(args) -> int:
    from .results import check_export_dir, export_parquet
    from .ranks import Ranks
    from .runner import EvalConfig, parse_shard, run_eval

    config = EvalConfig(
        dataset=args.dataset, model=args.model, mode=args.mode, hint=args.hint, parser=args.parser,
        ablation=args.ablation, batch_size=args.batch_size, sources=tuple(args.sources) if args.sources else None,
        split=args.split, limit=args.limit, shard=parse_shard(args.shard), seed=args.seed, revision=args.revision,
        run_id=args.run_id, backend_options=backend_options(args), history=args.history,
        history_size=args.history_size, shots=args.shots, cot=args.cot, reduce_shots=args.reduce_shots,
        shot_size=args.shot_size,
    )
    if args.export_parquet:  # refused before the run, not after it
        check_export_dir(args.export_parquet)
    summary = run_eval(config, args.results, progress=not args.no_progress)
    ranks = Ranks.from_env()
    if not ranks.main:  # under torchrun: rank 0 reports the merged run
        print(f"rank {ranks.rank}: {summary.new_episodes} episodes evaluated, merged into {args.results} by rank 0")
        return 0
    for source, (count, acc, psr) in summary.per_source.items():
        scores = f"acc {acc:.1f}% - ps rate {psr:.1f}" if acc is not None else "generated (run `judge`)"
        print(f"{source}: {count} episodes, {scores}")
    print(summary.line())
    print(f"results: {summary.results}")
    if args.export_parquet:
        for path in export_parquet(args.results, args.export_parquet):
            print(f"exported {path}")
    if summary.errors:  # a failure, not a result (docs/architecture.md §6): the exit status says so
        print(f"error: {backend_errors_line(summary.errors, summary.episodes, args.model, getattr(args, 'base_url', None))}",
              file=sys.stderr)
        return 1
    return 0


def backend_errors_line(errors: int, total: int, model: str, base_url: str | None) -> str:
    """One line for a run some of whose episodes ended in a backend error (a server's 500, garbage, a timeout)."""
    url = base_url or os.environ.get("OPENAI_BASE_URL") if model.startswith("openai:") else None
    where = f"{model} at {url}" if url else model
    return (f"{errors} of {total} episodes ended in a backend error ({where}; the messages are logged above and "
            "kept in the results): rerun the same command to retry them")


def _judge(args) -> int:
    from .judge import run_judge

    summary = run_judge(
        args.results, args.judge, run_ids=args.run_id, dataset=args.dataset, batch_size=args.batch_size,
        backend_options=backend_options(args), progress=not args.no_progress,
    )
    for line in summary.lines():
        print(line)
    return 1 if summary.failed else 0


def _merge(args) -> int:
    from .merge import merge_files

    report = merge_files(args.inputs, args.out, update=args.update)
    print(f"merged {report.inputs} file(s) into {report.out}: {report.runs} run(s), {report.episodes} episodes "
          f"({report.added_episodes} added)")
    return 0


def register(subparsers) -> None:
    from .ablation import ABLATIONS
    from proactivebench.parsing import PARSERS
    from .runner import MODES

    parser = subparsers.add_parser(
        "eval",
        help="evaluate a model on the benchmark (resumable, shardable)",
        description="Evaluate a model on a hub-layout folder or Hub dataset; results go to a DuckDB file. "
        "Rerunning the same command resumes the run: complete episodes are kept, interrupted ones run again, "
        "and episodes that ended in a backend error (server down, timeout, a request the model rejects) are "
        "failures, not results: they are retried; one that fails again is recorded again as an error. The command "
        "exits 1 while any episode of the run ended in such an error (the results are kept), 0 otherwise.",
    )
    parser.add_argument("--dataset", required=True, help="hub-layout folder or Hub repo id")
    parser.add_argument("--model", required=True, help=SPEC_HELP)
    parser.add_argument("--mode", choices=tuple(MODES), default="mcqa",
                        help="mcqa (multi-turn, default), reference (the informative frame, categories only), "
                        "oeg (open-ended, first state; judge afterwards)")
    parser.add_argument("--hint", action="store_true",
                        help="mcqa/reference: add the scenario hint; oeg: add the generic help hint")
    parser.add_argument("--batch-size", type=int,
                        help="in-process backends (hf:, baseline:): live episodes per generate call (default: the "
                        "backend's); servers use --concurrency")
    parser.add_argument("--results", default="results.duckdb", help="DuckDB results file (default results.duckdb)")
    parser.add_argument("--sources", nargs="+", choices=SOURCE_NAMES, metavar="SOURCE",
                        help=f"evaluate only these sources ({', '.join(SOURCE_NAMES)})")
    parser.add_argument("--limit", type=int, help="at most N episodes per source (oeg default: 100 random, as the paper)")
    parser.add_argument("--shard", default="0/1", help="I/N: evaluate every N-th episode starting at I (default 0/1)")
    parser.add_argument("--split", default="test", help="dataset split (default test)")
    parser.add_argument("--revision", help="Hub dataset revision")
    parser.add_argument("--parser", choices=tuple(PARSERS), default="paper", help="answer parser (default paper)")
    parser.add_argument("--ablation", choices=tuple(ABLATIONS),
                        help="invalid-suggestions: proactive options replaced by other scenarios' (paper Fig. 5)")
    parser.add_argument("--seed", type=int, default=0, help="seed for baselines, sampling, OEG sample choice")
    context = parser.add_argument_group("history and few-shot (mcqa; docs/protocol.md §5)")
    context.add_argument("--history", action="store_true",
                         help="keep every earlier turn (image, prompt, own answer) in a multi-turn chat")
    context.add_argument("--history-size", type=int, default=224, metavar="PX",
                         help="short edge of the history images (default 224, the paper's; 0: as stored)")
    context.add_argument("--shots", type=int, default=0, metavar="K",
                         help="K solved example episodes of the same source before each episode (paper: 1, 3)")
    context.add_argument("--cot", action="store_true", help="shot moves carry the scenario's chain-of-thought prefix")
    context.add_argument("--reduce-shots", action="store_true", help="shots keep their first and last step only")
    context.add_argument("--shot-size", type=int, metavar="PX",
                         help="short edge of shot images (default: ROD 512, MVP-N 112, others 224; 0: as stored)")
    parser.add_argument("--run-id", help="use this run id instead of the one derived from the settings")
    parser.add_argument("--export-parquet", metavar="DIR", help="also write every results table as parquet to DIR")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_backend_arguments(parser)
    parser.set_defaults(func=_eval)

    judge = subparsers.add_parser(
        "judge",
        help="judge open-ended (oeg) answers with an LLM judge",
        description="Score every unjudged oeg answer in a results file with the paper's judge prompt and parser "
        "(docs/protocol.md §6.3-6.4). Resumable; the dataset is read from the run's record unless --dataset is given.",
    )
    judge.add_argument("--results", required=True, help="DuckDB results file with oeg runs")
    judge.add_argument("--judge", required=True, help=SPEC_HELP)
    judge.add_argument("--run-id", action="append", help="judge only this run (repeatable)")
    judge.add_argument("--dataset", help="the dataset the runs used, if it moved")
    judge.add_argument("--batch-size", type=int, help="judge requests per backend call")
    judge.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_backend_arguments(judge, {"max_new_tokens": "judge tokens per answer (default 32768, the reference's)"})
    judge.set_defaults(func=_judge)

    merge = subparsers.add_parser(
        "merge",
        help="merge results files (shards, ranks, machines) into one, without duplicates",
        description="Merge results DuckDB files into --out: each run once, each complete episode once with its "
        "turns, each judgment once; cut-off episodes are left out (a resume reruns them). Idempotent. Refuses "
        "a file of another schema; an existing --out is extended only with --update.",
    )
    merge.add_argument("inputs", nargs="+", metavar="FILE", help="results files to merge")
    merge.add_argument("--out", required=True, help="merged results file to write")
    merge.add_argument("--update", action="store_true", help="merge into an existing --out, keeping its rows")
    merge.set_defaults(func=_merge)
