"""`proactivebench demo`: the whole pipeline on the bundled sample data, one real command per step.

Each step runs the same subcommand a user would type (so the demo is also a walkthrough of the CLI), says what it
did and where its output is, and stops the demo with the step's own error message if it fails.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .safe_files import MANIFEST_NAME, OutputError, OutputFolder
from .sources import SOURCE_NAMES

BASELINES = ("random", "oracle", "oracle-proactive", "always-proactive", "always-abstain")
# The oracle solves everything at once; in a filtering roster it would exclude every sample it can answer.
FILTER_ROSTER = ("random", "always-proactive", "always-abstain")
REPORT_PAGE = "report.html"


@dataclass
class Step:
    title: str
    argv: list[str] | None  # a proactivebench command line, or None for a Python check
    output: str  # where the result is, for the user
    check: Callable[[], str] | None = None  # returns a one-line summary


def _load_back(bench: Path) -> str:
    import datasets

    # The demo rebuilds the same folder on every run: load_dataset through the card's resolved files.
    from .store import load

    test = load(bench, split="test")
    coco = datasets.load_dataset(str(bench), "coco", split="test", download_mode="force_redownload")
    return f"load_dataset: {len(test)} test rows over {len(set(test['source']))} sources, coco config {len(coco)} rows"


def _has_model_stack() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("torch", "transformers", "tokenizers"))


def _build_tiny_model(folder: Path) -> str:
    from .samples.tiny_models import build_tiny_llava

    build_tiny_llava(folder)
    return f"tiny random-weight LLaVA saved to {folder} (a real transformers checkpoint; its answers are noise)"


def plan(out: Path, seed: int) -> list[Step]:
    raw, built, predictions = out / "raw", out / "built", out / "predictions"
    bench, results, plots = out / "benchmark", out / "results.duckdb", out / "plots"
    tiny = out / "tiny-llava"
    models = [f"baseline:{name}" for name in FILTER_ROSTER]
    steps = [Step("write the native-layout sample data", ["sample-data", str(raw), "--seed", str(seed)], str(raw))]
    if _has_model_stack():
        steps.append(Step("build the tiny test model", None, str(tiny), check=lambda: _build_tiny_model(tiny)))
        models.append(f"hf:{tiny}")
    for source in SOURCE_NAMES:
        steps.append(
            Step(f"build {source}", ["build", source, "--raw-dir", str(raw / source), "--out", str(built),
                                     "--seed", str(seed)], str(built / "data" / source))
        )
    for model in models:
        steps.append(
            Step(f"first-turn predictions of {model}",
                 ["curate", "first-turn", "--dataset", str(built), "--model", model, "--out", str(predictions)],
                 str(predictions))
        )
    steps += [
        Step("filter: drop samples that >= 25% of the roster solve at the first turn",
             ["curate", "filter", "--dataset", str(built), "--predictions", str(predictions), "--out", str(bench),
              "--overwrite"], str(bench)),
        Step("publish to a local folder (card + checks, nothing uploaded)", ["publish", "--dataset", str(bench)],
             str(bench / "README.md")),
        Step("load it back with datasets.load_dataset", None, str(bench), check=lambda: _load_back(bench)),
    ]
    for mode in ("mcqa", "reference"):
        for name in BASELINES:
            steps.append(
                Step(f"evaluate baseline:{name} ({mode})",
                     ["eval", "--dataset", str(bench), "--model", f"baseline:{name}", "--mode", mode,
                      "--results", str(results), "--no-progress"], str(results))
            )
    if _has_model_stack():
        steps.append(
            Step("evaluate the tiny model (mcqa, transformers backend, batched)",
                 ["eval", "--dataset", str(bench), "--model", f"hf:{tiny}", "--results", str(results),
                  "--no-progress"], str(results))
        )
    steps.append(Step("report: the paper's tables, plots and one offline HTML page",
                      ["report", "--results", str(results), "--format", "table", "--plot", str(plots),
                       "--html", str(out / REPORT_PAGE), "--dataset", str(bench)], str(out / REPORT_PAGE)))
    if importlib.util.find_spec("fiftyone") is not None:
        steps.append(Step("FiftyOne dataset of episodes and trajectories",
                          # the default name derives from the dataset path: `browse --launch` on it reuses this
                          ["browse", "--dataset", str(bench), "--results", str(results)], "FiftyOne"))
    return steps


def run_demo(out: Path, seed: int = 0, fresh: bool = True) -> int:
    from .cli import main as cli_main

    output = OutputFolder.check(out, "--out")  # a folder of the user's is refused, never emptied
    if fresh and out.exists():
        foreign = output.foreign_files()
        if foreign:
            raise OutputError(f"{foreign[0]}: not written by the demo, and a fresh demo empties {out}: move it away or pass another --out")
        for entry in out.iterdir():
            if entry.name != MANIFEST_NAME:
                shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        output.record(removed=[p for p in (out / name for name in output.owned())])
    output = OutputFolder.claim(out, "--out")
    steps = plan(out, seed)
    started = time.perf_counter()
    for number, step in enumerate(steps, start=1):
        print(f"\n[{number}/{len(steps)}] {step.title}", flush=True)
        try:
            if step.argv is not None:
                print("  $ proactivebench " + " ".join(step.argv), flush=True)
                code = cli_main(step.argv)
                if code != 0:
                    print(f"demo stopped: step {number} ({step.title}) failed with exit code {code}", file=sys.stderr)
                    return code
            if step.check is not None:
                print("  " + step.check(), flush=True)
        finally:  # what the step wrote is the demo's: a later fresh run may remove it
            output.record(added=output.foreign_files())
        print(f"  -> {step.output}", flush=True)
    print(f"\ndemo finished in {time.perf_counter() - started:.0f} s; everything is under {out}")
    print(f"  the report page (opens offline in any browser): {(out / REPORT_PAGE).resolve()}")
    results = out / "results.duckdb"
    print(f"  query the results with SQL: python -c \"import duckdb; duckdb.connect('{results}').sql('FROM table1')"
          f".show()\"  (or: proactivebench report --results {results})")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the whole pipeline on the bundled sample data",
        description="Write the native-layout sample data, build every source, run first-turn predictions of a "
        "roster of baselines, filter, publish to a local folder, load it back, evaluate the baselines in MCQA "
        "and reference mode, print the report and write the plots (and a FiftyOne dataset if installed).",
    )
    parser.add_argument("--out", type=Path, default=Path("demo-out"), help="output folder (default: demo-out)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="do not clear --out first (resume into it)")
    parser.set_defaults(func=lambda args: run_demo(args.out, args.seed, fresh=not args.keep))
