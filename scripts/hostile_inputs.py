"""The hostile-inputs sweep (issue 17): bad but realistic inputs thrown at every command, each classified.

A teammate reruns it after a change to see what a new user meets:

    .venv/bin/python scripts/hostile_inputs.py [--jobs 2] [--only build,eval] [--json hostile_inputs.json]

Each case runs `python -m proactivebench.cli ...` in a subprocess with a timeout, in its own folder holding
copies of the fixtures it reads (written once by the project's own sample writers: `proactivebench.samples`), and
is classified:

- clear      failed as it should: exit != 0, exactly one `error:` line naming the file/record/field, no traceback
- ok         a valid (if odd) input handled right: exit 0 and the output checked (counts, reports)
- vague      failed without a traceback, but not in one line naming what is wrong
- traceback  a Python traceback reached the user
- silent     exit 0 where it should fail, or a wrong result (counts, a skip not reported)
- refused    a valid input refused
- lost       a file outside the command's own outputs changed or vanished (hashed before and after)
- stray      a file appeared outside the command's own outputs
- hang       killed at the timeout

Prints a tally per command and writes every case (argv, exit, classification, the error line) to the JSON file.
Not part of the test suite: each case it found is a test in tests/ (test_hostile_inputs.py and the issue 17
files). A local stand-in server (stdlib http.server) answers like an OpenAI-compatible one, or with garbage, a
500, an empty choice list, or not at all.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

SOURCES = ("rod", "vsod", "mvpn", "imagenet_c", "quickdraw", "changeit", "coco")
KINDS = ("clear", "ok", "vague", "traceback", "silent", "refused", "lost", "stray", "hang")
ERROR_LINE = re.compile(r"^(?:proactivebench(?: [\w-]+)*: )?error: ")
MANIFEST = ".proactivebench.json"


# --- the cases -----------------------------------------------------------------------------------------------


@dataclass
class Run:
    """What one case runs and what counts as right."""

    argv: list[str]
    needles: list[str] = field(default_factory=list)  # the error line must name these (file, record, field)
    outputs: list[str] = field(default_factory=list)  # paths (relative to the case folder) it may change
    check: Callable[[Path, "Result"], str | None] | None = None  # on exit 0: None = right, else what is wrong
    before: list[list[str]] = field(default_factory=list)  # argv run first, not judged (e.g. a first build)
    kill_after: float | None = None  # run argv, SIGKILL it after this many seconds, then run `argv` again
    timeout: float = 120


@dataclass
class Case:
    group: str
    name: str
    expect: str  # "fail": must be refused in one line; "ok": must succeed; "either": a clear refusal or ok
    make: Callable[["Ctx"], Run]


@dataclass
class Result:
    rc: int | None
    out: str
    err: str
    seconds: float
    timed_out: bool


CASES: list[Case] = []


def case(group: str, name: str, expect: str = "fail"):
    def register(make):
        CASES.append(Case(group, name, expect, make))
        return make

    return register


class Ctx:
    """A case's own folder; `use(name)` copies a fixture into it (so every input is hashed with the case)."""

    def __init__(self, work: Path, fixtures: Path, server: str):
        self.work, self.fixtures, self.server = work, fixtures, server

    def use(self, name: str, as_name: str | None = None) -> Path:
        source, target = self.fixtures / name, self.work / (as_name or Path(name).name)
        if source.is_dir():
            shutil.copytree(source, target, symlinks=True)
        else:
            shutil.copyfile(source, target)
        return target

    def url(self, mode: str) -> str:
        return f"{self.server}/{mode}/v1"


# --- fixtures (the project's own sample writers), written once -------------------------------------------------


def cli(*argv: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "proactivebench.cli", *argv], cwd=cwd, env=env, capture_output=True,
                          text=True)


def make_fixtures(root: Path, env: dict, with_model: bool) -> None:
    from proactivebench.samples.release import write_sample_release

    steps = [
        ["sample-data", str(root / "raw"), "--per-source", "2"],
        None,  # the release
        ["import-official", "--data-dir", str(root / "release" / "test"), "--out", str(root / "bench")],
        ["eval", "--dataset", str(root / "bench"), "--model", "baseline:oracle", "--results",
         str(root / "results.duckdb"), "--no-progress"],
        ["curate", "first-turn", "--dataset", str(root / "bench"), "--model", "baseline:oracle", "--out",
         str(root / "preds")],
        ["curate", "first-turn", "--dataset", str(root / "bench"), "--model", "baseline:always-abstain", "--out",
         str(root / "preds")],
        ["build", "quickdraw", "--raw-dir", str(root / "raw" / "quickdraw"), "--out", str(root / "train-quickdraw"),
         "--split", "train"],
        *(["build", s, "--raw-dir", str(root / "raw" / s), "--out", str(root / "built" / s)] for s in SOURCES),
    ]
    for step in steps:
        if step is None:
            write_sample_release(root / "release" / "test")
            continue
        done = cli(*step, env=env)
        if done.returncode:
            raise SystemExit(f"fixture step failed: {' '.join(step)}\n{done.stderr[-2000:]}")
    if with_model:
        from proactivebench.samples.tiny_models import build_tiny_llava

        build_tiny_llava(root / "tiny")


# --- the stand-in server -----------------------------------------------------------------------------------------


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    phases: dict[str, int] = {}


class Handler(http.server.BaseHTTPRequestHandler):
    """`/<mode>/v1/chat/completions`: ok, garbage, 500, 429, empty, html, null, hang, slow-then-ok."""

    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._send(200, b'{"object": "list", "data": [{"id": "m", "object": "model"}]}')

    def do_POST(self) -> None:
        from proactivebench.eval.standin import answer_for, prompt_of

        mode = self.path.strip("/").split("/")[0]
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            body = {}
        if mode == "hang":
            time.sleep(60)
            return
        if mode.startswith("slow"):  # slow until the sweep flips it (a run killed mid-way, then resumed)
            if not Server.phases.get(mode):
                time.sleep(0.7)
            mode = "ok"
        if mode.startswith("flaky"):  # a 500 until the sweep flips it (errors, then a healthy rerun)
            mode = "ok" if Server.phases.get(mode) else "500"
        canned = {
            "garbage": (200, b"\x00\x01 this is not json", "application/json"),
            "500": (500, b'{"error": {"message": "internal error"}}', "application/json"),
            "429": (429, b'{"error": {"message": "rate limited"}}', "application/json"),
            "html": (200, b"<html><body>proxy login</body></html>", "text/html"),
            "empty": (200, json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                                       "choices": []}).encode(), "application/json"),
            "null": (200, json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": None}}]}).encode(),
                     "application/json"),
        }
        if mode in canned:
            self._send(*canned[mode])
            return
        if mode != "ok":
            self._send(404, b'{"error": {"message": "not found"}}')
            return
        try:
            answer = answer_for(prompt_of(body))
        except (KeyError, TypeError, IndexError):
            answer = "A"
        self._send(200, json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": body.get("model", ""),
                                    "choices": [{"index": 0, "finish_reason": "stop",
                                                 "message": {"role": "assistant", "content": answer}}]}).encode())


def start_server() -> tuple[Server, str]:
    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


# --- running and classifying -------------------------------------------------------------------------------------


def snapshot(root: Path, outputs: list[str]) -> dict[str, str]:
    """{relative path: sha1 or link target} of every file outside the outputs (and the datasets cache)."""
    skip = [o.rstrip("/") for o in outputs] + [".hf-cache"]
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in files + [d for d in dirs if (Path(folder) / d).is_symlink()]:
            path = Path(folder) / name
            relative = path.relative_to(root).as_posix()
            if any(relative == s or relative.startswith(s + "/") for s in skip):
                continue
            if path.is_symlink():
                found[relative] = "-> " + os.readlink(path)
            else:
                try:
                    found[relative] = hashlib.sha1(path.read_bytes()).hexdigest()
                except OSError as error:
                    found[relative] = f"unreadable {error.errno}"
    return found


def run_cli(argv: list[str], cwd: Path, env: dict, timeout: float, kill_after: float | None = None) -> Result:
    start = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "proactivebench.cli", *argv], cwd=cwd, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = process.communicate(timeout=kill_after if kill_after is not None else timeout)
        return Result(process.returncode, out, err, time.monotonic() - start, False)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the group this sweep started for the case, and only it
        out, err = process.communicate()
        return Result(None, out, err, time.monotonic() - start, kill_after is None)


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if ERROR_LINE.match(line)]


def classify(case: Case, run: Run, result: Result, changed: list[str], new: list[str], check: str | None) -> str:
    text = result.out + result.err
    if result.timed_out:
        return "hang"
    if changed:
        return "lost"
    if "Traceback (most recent call last)" in text:
        return "traceback"
    if new:
        return "stray"
    lines = error_lines(result.err)
    clear = result.rc != 0 and len(lines) == 1 and all(n in lines[0] for n in run.needles)
    if result.rc == 0:
        if case.expect == "fail":
            return "silent"
        return "ok" if check is None else "silent"
    if case.expect == "ok":
        return "refused"
    return "clear" if clear else "vague"


def run_case(case: Case, root: Path, fixtures: Path, server: str, base_env: dict) -> dict:
    work = root / f"{case.group}-{case.name}".replace("/", "_")
    work.mkdir(parents=True)
    ctx = Ctx(work, fixtures, server)
    env = dict(base_env, HF_DATASETS_CACHE=str(work / ".hf-cache"))
    try:
        run = case.make(ctx)
    except Exception as error:  # a broken case is the sweep's bug, not the tool's: say so and go on
        return {"group": case.group, "name": case.name, "kind": "setup-error", "detail": repr(error)}
    for argv in run.before:
        run_cli(argv, work, env, run.timeout)
    if run.kill_after is not None:
        killed = run_cli(run.argv, work, env, run.timeout, kill_after=run.kill_after)
        if killed.rc is not None:
            return {"group": case.group, "name": case.name, "kind": "setup-error",
                    "detail": f"finished before the kill ({killed.rc}): {killed.err[-300:]}"}
    if "--base-url" in run.argv:  # a slow or flaky server turns healthy for the judged run only
        Server.phases[run.argv[run.argv.index("--base-url") + 1].split("/")[-2]] = 1
    before = snapshot(work, run.outputs)
    result = run_cli(run.argv, work, env, run.timeout)
    after = snapshot(work, run.outputs)
    changed = sorted(p for p in before if after.get(p) != before[p])
    new = sorted(p for p in after if p not in before and not Path(p).name.startswith(".staging-"))
    check = run.check(work, result) if (run.check and result.rc == 0) else None
    kind = classify(case, run, result, changed, new, check)
    lines = error_lines(result.err)
    tail = [line for line in (result.out + result.err).splitlines() if line.strip()][-3:]
    return {
        "group": case.group, "name": case.name, "expect": case.expect, "kind": kind,
        "argv": [a.replace(str(work), "<case>") for a in run.argv], "exit": result.rc,
        "seconds": round(result.seconds, 2), "error": lines[0].replace(str(work), "<case>") if lines else None,
        "needles": run.needles, "check": check, "changed": changed[:5], "new": new[:5],
        "tail": [t.replace(str(work), "<case>")[:300] for t in tail] if kind not in ("clear", "ok") else [],
    }


# --- mutations -----------------------------------------------------------------------------------------------------


def corrupt(path: Path) -> None:
    path.write_bytes(b"this is not what the file should hold \x00\xff" * 8)


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: max(1, len(data) // 2)])


def empty(path: Path) -> None:
    path.write_bytes(b"")


def not_utf8(path: Path) -> None:
    path.write_bytes(b"\xff\xfe\xfa bad \xe9t\xe9\n" * 4 + path.read_bytes()[:40])


def delete(path: Path) -> None:
    path.unlink()


def to_folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


def loop(path: Path) -> None:
    path.unlink()
    path.symlink_to(path.name)  # a link to itself


MUTATIONS = {"corrupt": corrupt, "truncated": truncate, "empty": empty, "not-utf8": not_utf8, "missing": delete,
             "a-folder": to_folder, "symlink-loop": loop}
IMAGE_MUTATIONS = ("corrupt", "truncated", "empty", "missing", "a-folder", "symlink-loop")
ANNOTATION_MUTATIONS = ("corrupt", "truncated", "empty", "not-utf8", "missing", "a-folder")

# The raw file of each source that a build must read (the picture data; the annotation that names the episodes).
RAW_FILES = {
    "rod": {"data": "rod_0.tar.gz"},  # the only archive: gone, the message names the folder (case rod-raw-*)
    "vsod": {"data": "OcclusionDataSet-MM20/Data/test/0001/0000.jpg",
             "annotation": "OcclusionDataSet-MM20/labels.csv",
             "xml": "OcclusionDataSet-MM20/Annotations/test/0001/0000.xml"},
    "mvpn": {"data": "data/test/0010/0000/0010_0000_00_0.png"},  # its test_list/*.pkl are not read
    "imagenet_c": {"data": "gaussian_noise/1/n02085620/ILSVRC2012_val_00027171.JPEG"},
    "quickdraw": {"data": "apple.ndjson"},  # a class: without it the class is simply not there
    "changeit": {"data": "downloads/apple/lUR2jN0zBsg.mp4", "annotation": "categories.csv",
                 "csv": "annotations/apple/lUR2jN0zBsg.fps1.csv"},
    "coco": {"data": "val2014/COCO_val2014_000000419137.jpg", "annotation": "annotations/instances_val2014.json"},
}


def build_argv(source: str, raw: Path, out: Path, *extra: str) -> list[str]:
    return ["build", source, "--raw-dir", str(raw), "--out", str(out), *extra]


def count_rows(folder: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(p).metadata.num_rows for p in folder.glob("data/*/*.parquet"))


def report_names(name: str):
    """On exit 0 the build must have reported the skipped item (its report or its output names the file, or the
    item it stands for: a video id, a class)."""

    def check(work: Path, result: Result) -> str | None:
        reports = "".join(p.read_text() for p in work.glob("out/*report*.json"))
        said = reports + result.out + result.err
        return None if name in said or Path(name).stem.split(".")[0] in said else f"{name} skipped without a word"

    return check


# A file that defines an item rather than serving it: gone (or not a file), the item is simply not there, as in a
# partial download (a QuickDraw class, a ChangeIt video without its annotation). (name, episodes left) of each.
ITEM_FILES = {("apple.ndjson", 40), ("lUR2jN0zBsg.fps1.csv", 2)}


def same_or_reported(ctx: Ctx, source: str, name: str):
    intact = count_rows(ctx.fixtures / "built" / source)
    reported = report_names(name)

    def check(work: Path, result: Result) -> str | None:
        built = count_rows(work / "out")
        if built == intact or (name, built) in ITEM_FILES:
            return None
        return reported(work, result) and f"{built} of {intact} episodes, {name} not named"

    return check


def register_build_cases() -> None:
    for source in SOURCES:
        for role, relative in RAW_FILES[source].items():
            for mutation in IMAGE_MUTATIONS if role == "data" else ANNOTATION_MUTATIONS:
                if role in ("xml", "csv") and mutation not in ("corrupt", "missing"):
                    continue

                def make(ctx, source=source, relative=relative, mutation=mutation):
                    raw = ctx.use(f"raw/{source}", "raw")
                    MUTATIONS[mutation](raw / relative)
                    named = "raw" if (source, mutation) == ("rod", "missing") else Path(relative).name
                    return Run(build_argv(source, raw, ctx.work / "out"), [named], ["out"],
                               check=same_or_reported(ctx, source, Path(relative).name))

                # exit 0 is right only if the file was not needed (as many episodes as from the intact
                # download) or the build reports the item it dropped, naming the file
                case("build", f"{source}-{role}-{mutation}", "either")(make)

        def skip(ctx, source=source):
            raw = ctx.use(f"raw/{source}", "raw")
            relative = RAW_FILES[source]["data"]
            corrupt(raw / relative)
            return Run(build_argv(source, raw, ctx.work / "out", "--on-error", "skip"), [Path(relative).name], ["out"],
                       check=report_names(Path(relative).name))

        case("build", f"{source}-corrupt-on-error-skip", "either")(skip)

        def missing_raw(ctx, source=source):
            return Run(build_argv(source, ctx.work / "nowhere", ctx.work / "out"), ["nowhere"], ["out"])

        case("build", f"{source}-raw-missing")(missing_raw)

        def empty_raw(ctx, source=source):
            (ctx.work / "raw").mkdir()
            return Run(build_argv(source, ctx.work / "raw", ctx.work / "out"), ["raw"], ["out"])

        case("build", f"{source}-raw-empty")(empty_raw)

        def out_is_raw(ctx, source=source):
            raw = ctx.use(f"raw/{source}", "raw")
            return Run(build_argv(source, raw, raw), ["--raw-dir"], [])

        case("build", f"{source}-out-is-raw")(out_is_raw)

        def user_out(ctx, source=source):
            raw = ctx.use(f"raw/{source}", "raw")
            (ctx.work / "out" / "data" / source).mkdir(parents=True)
            (ctx.work / "out" / "README.md").write_text("my notes\n")
            (ctx.work / "out" / "data" / source / "mystuff.txt").write_text("keep\n")
            return Run(build_argv(source, raw, ctx.work / "out"), ["README.md"], [])

        case("build", f"{source}-out-holds-user-files")(user_out)

    others = {s: SOURCES[(i + 1) % len(SOURCES)] for i, s in enumerate(SOURCES)}
    for source, other in others.items():
        def foreign(ctx, source=source, other=other):
            raw = ctx.use(f"raw/{other}", "raw")
            return Run(build_argv(source, raw, ctx.work / "out"), ["raw"], ["out"])

        case("build", f"{source}-raw-of-{other}")(foreign)

    def flag(name, extra, needles, expect="fail"):
        def make(ctx):
            raw = ctx.use("raw/quickdraw", "raw")
            return Run(build_argv("quickdraw", raw, ctx.work / "out", *extra), needles, ["out"])

        case("build", name, expect)(make)

    flag("limit-negative", ["--limit", "-1"], ["--limit"])
    flag("num-proc-zero", ["--num-proc", "0"], ["--num-proc"])
    flag("seed-text", ["--seed", "abc"], ["--seed"])
    flag("on-error-bogus", ["--on-error", "ignore"], ["--on-error"])
    flag("split-bogus", ["--split", "validation"], ["--split"])

    @case("build", "out-is-a-file")
    def _(ctx):
        raw = ctx.use("raw/quickdraw", "raw")
        (ctx.work / "out").write_text("a file\n")
        return Run(build_argv("quickdraw", raw, ctx.work / "out"), ["out"], [])

    @case("build", "source-unknown")
    def _(ctx):
        return Run(["build", "imagenet", "--raw-dir", str(ctx.work), "--out", str(ctx.work / "out")], ["imagenet"],
                   ["out"])

    @case("build", "rebuild-keeps-a-user-file-in-its-output", "ok")
    def _(ctx):
        raw = ctx.use("raw/quickdraw", "raw")
        out = ctx.work / "out"
        (ctx.work / "mine.txt").write_text("x")
        return Run(build_argv("quickdraw", raw, out), outputs=["out/data", "out/README.md", f"out/{MANIFEST}",
                                                               "out/build_report.json"],
                   before=[build_argv("quickdraw", raw, out), ["sample-data", str(ctx.work / "noop"), "--sources",
                                                               "quickdraw"]],
                   check=lambda work, r: None if count_rows(work / "out") > 0 else "no rows")

    @case("build", "killed-build-then-rerun", "ok")
    def _(ctx):
        raw = ctx.use("raw/coco", "raw")
        return Run(build_argv("coco", raw, ctx.work / "out"), outputs=["out"], kill_after=1.0,
                   check=lambda work, r: "staging left" if list(work.rglob(".staging-*")) else
                   (None if count_rows(work / "out") else "no rows"))

    @case("build", "out-path-with-spaces-and-unicode", "ok")
    def _(ctx):
        raw = ctx.use("raw/quickdraw", "raw")
        return Run(build_argv("quickdraw", raw, ctx.work / "my dätä out"), outputs=["my dätä out"],
                   check=lambda work, r: None if count_rows(work / "my dätä out") else "no rows")

    @case("build", "quickdraw-garbage-line")
    def _(ctx):
        raw = ctx.use("raw/quickdraw", "raw")
        path = raw / "cat.ndjson"
        path.write_text('{"word": "cat", "drawing": [[[1, 2], [3]]\n' + path.read_text())
        return Run(build_argv("quickdraw", raw, ctx.work / "out"), ["cat.ndjson"], ["out"])

    @case("build", "quickdraw-empty-class", "either")
    def _(ctx):
        raw = ctx.use("raw/quickdraw", "raw")
        (raw / "sun.ndjson").write_text("")
        return Run(build_argv("quickdraw", raw, ctx.work / "out"), ["sun.ndjson"], ["out"],
                   check=report_names("sun"))

    @case("build", "coco-json-missing-key")
    def _(ctx):
        raw = ctx.use("raw/coco", "raw")
        path = raw / "annotations" / "instances_val2014.json"
        data = json.loads(path.read_text())
        data.pop("annotations")
        path.write_text(json.dumps(data))
        return Run(build_argv("coco", raw, ctx.work / "out"), ["instances_val2014.json"], ["out"])

    @case("build", "coco-json-wrong-types")
    def _(ctx):
        raw = ctx.use("raw/coco", "raw")
        path = raw / "annotations" / "instances_val2014.json"
        data = json.loads(path.read_text())
        data["annotations"][0]["bbox"] = "wide"
        path.write_text(json.dumps(data))
        return Run(build_argv("coco", raw, ctx.work / "out"), ["instances_val2014.json"], ["out"])

    @case("build", "changeit-categories-missing-column")
    def _(ctx):
        raw = ctx.use("raw/changeit", "raw")
        path = raw / "categories.csv"
        path.write_text("\n".join(line.split(",")[0] for line in path.read_text().splitlines()))
        return Run(build_argv("changeit", raw, ctx.work / "out"), ["categories.csv"], ["out"])

    @case("build", "vsod-labels-garbage-row")
    def _(ctx):
        raw = ctx.use("raw/vsod", "raw")
        with open(raw / "OcclusionDataSet-MM20" / "labels.csv", "a") as handle:
            handle.write("0001,\"unterminated\n")
        return Run(build_argv("vsod", raw, ctx.work / "out"), ["labels.csv"], ["out"])


# --- import-official ---------------------------------------------------------------------------------------------


JSONL = "QuickDraw_preprocessed.jsonl"


def edit_jsonl(release: Path, name: str, edit: Callable[[list[dict]], list[dict] | None]) -> None:
    path = release / name
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = edit(rows) or rows
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def import_argv(ctx: Ctx, release: Path, *extra: str) -> list[str]:
    return ["import-official", "--data-dir", str(release), "--out", str(ctx.work / "out"), *extra]


def register_import_cases() -> None:
    def record(name: str, edit, needles: list[str], jsonl: str = JSONL, expect: str = "fail"):
        def make(ctx):
            release = ctx.use("release/test", "test")
            edit_jsonl(release, jsonl, edit)
            return Run(import_argv(ctx, release), needles, ["out"])

        case("import-official", name, expect)(make)

    def set_field(key, value):
        def edit(rows):
            rows[0][key] = value

        return edit

    def drop_field(key):
        def edit(rows):
            rows[0].pop(key)

        return edit

    record("id-path-escape", set_field("id", "../../etc"), ["id"])
    record("id-absolute", set_field("id", "/tmp/x"), ["id"])
    record("id-negative", set_field("id", -5), ["id"], expect="either")
    record("id-duplicate", lambda rows: rows + [dict(rows[0])], ["id"])
    record("answer-missing", drop_field("answer"), ["answer"])
    record("answer-not-a-category", set_field("answer", "Giraffe."), ["answer"])
    record("categories-empty", set_field("categories", []), ["categories"])
    record("options-not-a-list", set_field("options", "Move it."), ["options"])
    record("first-image-out-of-range", set_field("first_image", 99), [JSONL + ":1"])
    record("reference-image-out-of-range", set_field("reference_image", -1), [JSONL + ":1"])
    record("num-images-zero", set_field("num_images", 0), [JSONL + ":1"])
    record("template-escapes", set_field("image_template", "../../../etc/{image}.png"), ["escapes"])
    record("template-absolute", set_field("image_template", "/etc/{image}.png"), ["escapes"])
    record("template-without-placeholder", set_field("image_template", "QuickDraw/bed/0/0.png"), [JSONL + ":1"],
           expect="either")
    record("prompt-null", set_field("prompt", None), ["prompt"])
    record("record-is-a-list", lambda rows: [[1, 2]] + rows[1:], [JSONL])
    record("coco-bbox-garbage", set_field("crop", "x"), ["coco2014_preprocessed.jsonl"],
           jsonl="coco2014_preprocessed.jsonl", expect="either")

    def raw_edit(name: str, mutation: Callable[[Path], None], target: str, needles: list[str], expect="fail"):
        def make(ctx):
            release = ctx.use("release/test", "test")
            mutation(release / target)
            return Run(import_argv(ctx, release), needles, ["out"])

        case("import-official", name, expect)(make)

    raw_edit("jsonl-garbage-line", lambda p: p.write_text(p.read_text() + "{not json\n"), JSONL, [JSONL])
    raw_edit("jsonl-truncated", truncate, JSONL, [JSONL])
    raw_edit("jsonl-not-utf8", not_utf8, JSONL, [JSONL])
    raw_edit("jsonl-empty", empty, JSONL, [JSONL], expect="either")
    raw_edit("jsonl-missing", delete, JSONL, [JSONL], expect="either")
    raw_edit("jsonl-a-folder", to_folder, JSONL, [JSONL])
    raw_edit("image-corrupt", corrupt, "QuickDraw/bed/0/0000.png", ["0000.png"])
    raw_edit("image-truncated", truncate, "QuickDraw/bed/0/0000.png", ["0000.png"])
    raw_edit("image-missing", delete, "QuickDraw/bed/0/0000.png", ["0000.png"])
    raw_edit("image-a-folder", to_folder, "QuickDraw/bed/0/0000.png", ["0000.png"])
    raw_edit("image-symlink-loop", loop, "QuickDraw/bed/0/0000.png", ["0000.png"])

    @case("import-official", "data-dir-missing")
    def _(ctx):
        return Run(import_argv(ctx, ctx.work / "nowhere"), ["nowhere"], ["out"])

    @case("import-official", "data-dir-is-a-file")
    def _(ctx):
        (ctx.work / "test").write_text("x")
        return Run(import_argv(ctx, ctx.work / "test"), ["test"], ["out"])

    @case("import-official", "data-dir-foreign")
    def _(ctx):
        raw = ctx.use("raw/coco", "test")
        return Run(import_argv(ctx, raw), ["test"], ["out"])

    @case("import-official", "out-is-data-dir")
    def _(ctx):
        release = ctx.use("release/test", "test")
        return Run(["import-official", "--data-dir", str(release), "--out", str(release)], ["--data-dir"], [])

    @case("import-official", "out-holds-user-files")
    def _(ctx):
        release = ctx.use("release/test", "test")
        (ctx.work / "out").mkdir()
        (ctx.work / "out" / "notes.md").write_text("mine")
        return Run(import_argv(ctx, release), ["notes.md"], [])

    @case("import-official", "sources-bogus")
    def _(ctx):
        release = ctx.use("release/test", "test")
        return Run(import_argv(ctx, release, "--sources", "imagenet"), ["--sources"], ["out"])

    @case("import-official", "train-parquet-missing")
    def _(ctx):
        release = ctx.use("release/test", "test")
        return Run(import_argv(ctx, release, "--train-parquet", str(ctx.work / "nowhere")), ["nowhere"], ["out"])

    @case("import-official", "train-parquet-garbage")
    def _(ctx):
        release = ctx.use("release/test", "test")
        (ctx.work / "train").mkdir()
        corrupt_file = ctx.work / "train" / "train-00000-of-00001.parquet"
        corrupt_file.write_bytes(b"PAR1 not really")
        return Run(import_argv(ctx, release, "--train-parquet", str(ctx.work / "train")),
                   ["train-00000-of-00001.parquet"], ["out"])


# --- hub-layout datasets: damaged shards and invalid rows (eval, curate, publish read them) ---------------------


def shard(folder: Path, source: str = "quickdraw", split: str = "test") -> Path:
    return next((folder / "data" / source).glob(f"{split}-*.parquet"))


def edit_rows(path: Path, edit: Callable[[list[dict]], None]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    rows = table.to_pylist()
    edit(rows)
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), path)


def row_edit(key: str, value) -> Callable[[list[dict]], None]:
    def edit(rows):
        rows[0][key] = value

    return edit


def state_edit(edit_state) -> Callable[[list[dict]], None]:
    def edit(rows):
        edit_state(rows[0]["states"])

    return edit


DAMAGED: dict[str, tuple[Callable[[Path], list[str]], str]] = {}


def damage(name: str, expect: str = "fail"):
    """A damage of a copied dataset folder; returns the needles its refusal must name."""

    def register(make):
        DAMAGED[name] = (make, expect)
        return make

    return register


@damage("shard-corrupt")
def _(bench):
    corrupt(shard(bench))
    return ["test-00000-of-00001.parquet"]


@damage("shard-truncated")
def _(bench):
    truncate(shard(bench))
    return ["test-00000-of-00001.parquet"]


@damage("shard-empty-file")
def _(bench):
    empty(shard(bench))
    return ["test-00000-of-00001.parquet"]


@damage("source-shards-gone")
def _(bench):
    shutil.rmtree(bench / "data" / "quickdraw")
    return ["quickdraw"]


@damage("shard-renamed-count-wrong")
def _(bench):
    path = shard(bench)
    path.rename(path.with_name("test-00000-of-00002.parquet"))
    return ["test-00001-of-00002.parquet"]


@damage("card-yaml-broken")
def _(bench):
    readme = bench / "README.md"
    readme.write_text(readme.read_text().replace("configs:", "configs: [", 1))
    return ["README.md"]


@damage("card-missing")
def _(bench):
    (bench / "README.md").unlink()
    return [], "either"


@damage("row-move-to-missing-state")
def _(bench):
    edit_rows(shard(bench), state_edit(lambda s: s[0]["moves"][0].update(to=77)))
    return ["states[0].moves[0].to"]


# field edits of the first row of a shard: (damage, field, value); the refusal names the field
ROW_EDITS = [("row-first-state-negative", "first_state", -1), ("row-answer-not-a-category", "answer", "Giraffe."),
             ("row-max-turns-zero", "max_turns", 0), ("row-hostile-id", "sample_id", "../../../tmp/evil")]
for _name, _field, _value in ROW_EDITS:
    damage(_name)(lambda bench, f=_field, v=_value: (edit_rows(shard(bench), row_edit(f, v)), [f])[1])


@damage("row-duplicate-id")
def _(bench):
    edit_rows(shard(bench), lambda rows: rows.append(dict(rows[0])))
    return ["sample_id"]


@damage("row-frame-bytes-garbage")
def _(bench):
    def edit(rows):
        rows[0]["frames"][0]["bytes"] = b"not a png"

    edit_rows(shard(bench), edit)
    return ["test-00000-of-00001.parquet"]


@damage("row-source-mismatch")
def _(bench):
    edit_rows(shard(bench), row_edit("source", "coco"))
    return ["source"]


@damage("foreign-parquet-in-data")
def _(bench):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"a": [1, 2]}), bench / "data" / "quickdraw" / "test-00000-of-00001.parquet")
    return ["test-00000-of-00001.parquet"]


def dataset_commands(ctx: Ctx, bench: Path) -> dict[str, tuple[list[str], list[str]]]:
    """command -> (argv, outputs) for a command that reads a hub-layout folder."""
    return {
        "eval": (["eval", "--dataset", str(bench), "--model", "baseline:oracle", "--results",
                  str(ctx.work / "r.duckdb"), "--no-progress"], ["r.duckdb", "r.duckdb.wal"]),
        "curate-first-turn": (["curate", "first-turn", "--dataset", str(bench), "--model", "baseline:oracle",
                               "--out", str(ctx.work / "preds")], ["preds"]),
        "curate-filter": (["curate", "filter", "--dataset", str(bench), "--predictions", str(ctx.work / "p"),
                           "--out", str(ctx.work / "filtered")], ["filtered"]),
        "publish": (["publish", "--dataset", str(bench)], []),
    }


def register_dataset_cases() -> None:
    for damage_name, (make_damage, expect) in DAMAGED.items():
        for command in ("eval", "curate-first-turn", "curate-filter", "publish"):
            def make(ctx, make_damage=make_damage, command=command):
                bench = ctx.use("bench")
                if command == "curate-filter":
                    ctx.use("preds", "p")
                needles = make_damage(bench)
                if isinstance(needles, tuple):
                    needles = needles[0]
                argv, outputs = dataset_commands(ctx, bench)[command]
                if command == "publish":  # publish (re)writes the card it wrote: its own output
                    outputs = ["bench/README.md", f"bench/{MANIFEST}"]
                return Run(argv, needles, outputs)

            make_expect = expect
            if damage_name == "card-missing" or (command == "publish" and damage_name.startswith("card-")):
                make_expect = "either"  # publish renders the card anew: a broken one it wrote is simply replaced
            case(command, damage_name, make_expect)(make)


# --- eval and its servers ----------------------------------------------------------------------------------------


def eval_argv(ctx: Ctx, *extra: str, bench: Path | None = None) -> list[str]:
    bench = bench or ctx.use("bench")
    return ["eval", "--dataset", str(bench), "--results", str(ctx.work / "r.duckdb"), "--no-progress", *extra]


def episodes_in(path: Path) -> tuple[int, int, int]:
    """(episodes, distinct episodes, errors) of a results file."""
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("SELECT count(*), count(DISTINCT (run_id, sample_id)), "
                           "count(*) FILTER (stop_reason = 'error') FROM episodes").fetchone()
    finally:
        con.close()


def exact_episodes(expected: int):
    """Every run in the file holds `expected` episodes, each once, none an error."""

    def check(work: Path, result: Result) -> str | None:
        import duckdb

        con = duckdb.connect(str(work / "r.duckdb"), read_only=True)
        try:
            runs = con.execute("SELECT run_id, count(*), count(DISTINCT sample_id), count(*) FILTER "
                               "(stop_reason = 'error') FROM episodes GROUP BY run_id").fetchall()
        finally:
            con.close()
        wrong = [r for r in runs if tuple(r[1:]) != (expected, expected, 0)]
        return f"run {wrong[0][0]}: {wrong[0][1:]} (episodes, distinct, errors), expected {expected}" if wrong else None

    return check


TEST_EPISODES = 10  # the sample release's test split (import-official of samples/release.py)
R = ["r.duckdb", "r.duckdb.wal"]


def register_eval_cases() -> None:
    def flag(name: str, extra: list[str], needles: list[str], expect="fail", outputs=R):
        def make(ctx):
            return Run(eval_argv(ctx, *extra), needles, outputs)

        case("eval", name, expect)(make)

    oracle = ["--model", "baseline:oracle"]
    flag("model-without-kind", ["--model", "llava"], ["llava"])
    flag("model-kind-unknown", ["--model", "vllm:llava"], ["vllm"])
    flag("baseline-unknown", ["--model", "baseline:genius"], ["genius"])
    flag("hf-missing-folder", ["--model", "hf:./no-such-model"], ["no-such-model"])
    flag("batch-size-zero", oracle + ["--batch-size", "0"], ["batch size"])
    flag("batch-size-negative", oracle + ["--batch-size", "-3"], ["batch size"])
    flag("limit-negative", oracle + ["--limit", "-1"], ["limit"])
    flag("shard-out-of-range", oracle + ["--shard", "3/2"], ["3/2"])
    flag("shard-zero-of-zero", oracle + ["--shard", "0/0"], ["0/0"])
    flag("shard-text", oracle + ["--shard", "half"], ["half"])
    flag("split-missing", oracle + ["--split", "validation"], ["validation"])
    flag("sources-bogus", oracle + ["--sources", "imagenet"], ["imagenet"])
    flag("mode-bogus", oracle + ["--mode", "chat"], ["--mode"])
    flag("parser-bogus", oracle + ["--parser", "regex"], ["--parser"])
    flag("max-new-tokens-zero", oracle + ["--max-new-tokens", "0"], ["--max-new-tokens"])
    flag("temperature-negative", oracle + ["--temperature", "-5"], ["--temperature"])
    flag("timeout-zero", oracle + ["--timeout", "0"], ["--timeout"])
    flag("concurrency-zero", oracle + ["--concurrency", "0"], ["--concurrency"])
    flag("max-retries-negative", oracle + ["--max-retries", "-1"], ["--max-retries"])
    flag("top-p-two", oracle + ["--top-p", "2"], ["--top-p"])
    flag("shots-too-many", oracle + ["--shots", "999"], ["--shots"], expect="either")
    flag("shots-negative", oracle + ["--shots", "-1"], ["--shots"])
    flag("history-size-negative", oracle + ["--history", "--history-size", "-1"], ["--history-size"])
    flag("seed-text", oracle + ["--seed", "abc"], ["--seed"])
    flag("run-id-path-escape", oracle + ["--run-id", "../../escape"], ["--run-id"], expect="either")
    flag("run-id-empty", oracle + ["--run-id", ""], ["--run-id"])
    flag("revision-on-a-folder", oracle + ["--revision", "v9"], ["--revision"], expect="either")
    flag("openai-without-base-url", ["--model", "openai:m"], ["openai"])
    flag("limit-zero", oracle + ["--limit", "0"], ["limit"], expect="either")

    @case("eval", "dataset-missing")
    def _(ctx):
        return Run(["eval", "--dataset", str(ctx.work / "nowhere"), "--model", "baseline:oracle", "--results",
                    str(ctx.work / "r.duckdb"), "--no-progress"], ["nowhere"], R)

    @case("eval", "dataset-is-raw-download")
    def _(ctx):
        raw = ctx.use("raw/coco", "coco")
        return Run(eval_argv(ctx, "--model", "baseline:oracle", bench=raw), ["coco"], R)

    @case("eval", "dataset-is-a-file")
    def _(ctx):
        (ctx.work / "bench.parquet").write_bytes(b"x")
        return Run(eval_argv(ctx, "--model", "baseline:oracle", bench=ctx.work / "bench.parquet"), ["bench.parquet"], R)

    @case("eval", "hf-folder-not-a-model")
    def _(ctx):
        raw = ctx.use("raw/coco", "model")
        return Run(eval_argv(ctx, "--model", f"hf:{raw}"), ["model"], R)

    @case("eval", "results-is-a-folder")
    def _(ctx):
        (ctx.work / "r.duckdb").mkdir()
        (ctx.work / "r.duckdb" / "mine.txt").write_text("x")
        return Run(eval_argv(ctx, "--model", "baseline:oracle"), ["r.duckdb"], [])

    @case("eval", "results-is-a-users-text-file")
    def _(ctx):
        (ctx.work / "r.duckdb").write_text("my notes, not a database\n")
        return Run(eval_argv(ctx, "--model", "baseline:oracle"), ["r.duckdb"], ["r.duckdb.wal"])

    @case("eval", "results-truncated")
    def _(ctx):
        results = ctx.use("results.duckdb", "r.duckdb")
        truncate(results)
        return Run(eval_argv(ctx, "--model", "baseline:oracle"), ["r.duckdb"], ["r.duckdb.wal"])

    @case("eval", "results-is-a-parquet")
    def _(ctx):
        shutil.copyfile(shard(ctx.fixtures / "bench"), ctx.work / "r.duckdb")
        return Run(eval_argv(ctx, "--model", "baseline:oracle"), ["r.duckdb"], ["r.duckdb.wal"])

    @case("eval", "results-of-another-schema")
    def _(ctx):
        import duckdb

        con = duckdb.connect(str(ctx.work / "r.duckdb"))
        con.execute("CREATE TABLE runs (x INTEGER)")
        con.close()
        return Run(eval_argv(ctx, "--model", "baseline:oracle"), ["r.duckdb"], ["r.duckdb.wal"])

    @case("eval", "resume-same-results", "ok")
    def _(ctx):
        ctx.use("results.duckdb", "r.duckdb")
        return Run(eval_argv(ctx, "--model", "baseline:oracle"), outputs=R, check=exact_episodes(TEST_EPISODES))

    @case("eval", "export-parquet-into-user-folder")
    def _(ctx):
        (ctx.work / "export").mkdir()
        (ctx.work / "export" / "runs.parquet").write_text("mine")
        return Run(eval_argv(ctx, "--model", "baseline:oracle", "--export-parquet", str(ctx.work / "export")),
                   ["runs.parquet"], R)

    @case("eval", "export-parquet-is-a-file")
    def _(ctx):
        (ctx.work / "export").write_text("mine")
        return Run(eval_argv(ctx, "--model", "baseline:oracle", "--export-parquet", str(ctx.work / "export")),
                   ["export"], R)

    def server(name: str, mode: str, extra: list[str], needles: list[str], expect="fail", timeout=120):
        def make(ctx):
            return Run(eval_argv(ctx, "--model", "openai:m", "--base-url", ctx.url(mode), "--max-retries", "0",
                                 "--timeout", "2", "--sources", "quickdraw", "coco", *extra), needles, R,
                       timeout=timeout)

        case("eval", name, expect)(make)

    server("server-garbage", "garbage", [], ["garbage/v1"])
    server("server-500", "500", [], ["500/v1"])
    server("server-429", "429", [], ["429/v1"])
    server("server-html", "html", [], ["html/v1"])
    server("server-empty-choices", "empty", [], ["empty/v1"])
    server("server-null-content", "null", [], ["null/v1"], expect="either")
    server("server-ok-but-wrong-model-name", "ok", ["--model", "openai:no-such-model"], [], expect="ok")
    server("server-hangs", "hang", [], ["hang/v1"], timeout=90)
    server("server-404", "nowhere", ["--model", "openai:m"], ["nowhere/v1"])

    @case("eval", "server-dead-port")
    def _(ctx):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        return Run(eval_argv(ctx, "--model", "openai:m", "--base-url", f"http://127.0.0.1:{port}/v1",
                             "--max-retries", "0"), [f"127.0.0.1:{port}"], R)

    @case("eval", "server-ok", "ok")
    def _(ctx):
        return Run(eval_argv(ctx, "--model", "openai:m", "--base-url", ctx.url("ok")), outputs=R,
                   check=exact_episodes(TEST_EPISODES))

    @case("eval", "killed-then-resumed", "ok")
    def _(ctx):
        return Run(eval_argv(ctx, "--model", "openai:m", "--base-url", ctx.url("slow-eval"), "--concurrency", "1"),
                   outputs=R, kill_after=3.0, check=exact_episodes(TEST_EPISODES))

    @case("eval", "hf-tiny-model", "ok")
    def _(ctx):
        if not (ctx.fixtures / "tiny").is_dir():
            raise RuntimeError("no tiny model fixture (--no-model)")
        return Run(eval_argv(ctx, "--model", f"hf:{ctx.fixtures / 'tiny'}", "--sources", "quickdraw"), outputs=R,
                   check=exact_episodes(1), timeout=300)

    @case("eval", "hf-tiny-model-config-garbage")
    def _(ctx):
        if not (ctx.fixtures / "tiny").is_dir():
            raise RuntimeError("no tiny model fixture (--no-model)")
        model = ctx.use("tiny")
        corrupt(model / "config.json")
        return Run(eval_argv(ctx, "--model", f"hf:{model}", "--sources", "quickdraw"), ["config.json"], R)

    @case("eval", "hf-tiny-model-weights-truncated")
    def _(ctx):
        if not (ctx.fixtures / "tiny").is_dir():
            raise RuntimeError("no tiny model fixture (--no-model)")
        model = ctx.use("tiny")
        for weights in model.glob("*.safetensors"):
            truncate(weights)
        return Run(eval_argv(ctx, "--model", f"hf:{model}", "--sources", "quickdraw"), ["tiny", "weights"], R)

    @case("eval", "hf-dtype-bogus")
    def _(ctx):
        return Run(eval_argv(ctx, "--model", f"hf:{ctx.fixtures / 'tiny'}", "--dtype", "int3"), ["--dtype"], R)

    @case("eval", "hf-device-bogus")
    def _(ctx):
        if not (ctx.fixtures / "tiny").is_dir():
            raise RuntimeError("no tiny model fixture (--no-model)")
        return Run(eval_argv(ctx, "--model", f"hf:{ctx.fixtures / 'tiny'}", "--device", "tpu:7",
                             "--sources", "quickdraw"), ["tpu:7"], R)


# --- curate first-turn / filter -----------------------------------------------------------------------------------


def first_turn_argv(ctx: Ctx, *extra: str, bench: Path | None = None) -> list[str]:
    bench = bench or ctx.use("bench")
    return ["curate", "first-turn", "--dataset", str(bench), "--out", str(ctx.work / "preds"), *extra]


def prediction_rows(expected: int, model_file: str):
    def check(work: Path, result: Result) -> str | None:
        import pyarrow.parquet as pq

        table = pq.read_table(work / "preds" / model_file)
        ids = table.column("sample_id").to_pylist()
        errors = table.column("verdict").to_pylist().count("error")
        if len(ids) != expected or len(set(ids)) != expected or errors:
            return f"{len(ids)} rows ({len(set(ids))} distinct, {errors} errors), expected {expected}"
        return None

    return check


POOL = 11  # test + excluded of the sample release


def register_curate_cases() -> None:
    def flag(name: str, extra: list[str], needles: list[str], expect="fail"):
        def make(ctx):
            return Run(first_turn_argv(ctx, *extra), needles, ["preds"])

        case("curate-first-turn", name, expect)(make)

    flag("batch-size-zero", ["--model", "baseline:oracle", "--batch-size", "0"], ["--batch-size"])
    flag("limit-negative", ["--model", "baseline:oracle", "--limit", "-1"], ["--limit"])
    flag("model-unknown", ["--model", "baseline:genius"], ["genius"])
    flag("model-empty", ["--model", ""], ["model"])
    flag("model-slug-escape", ["--model", "hf:../../../tmp/evil"], ["evil"])
    flag("max-new-tokens-zero", ["--model", "baseline:oracle", "--max-new-tokens", "0"], ["--max-new-tokens"])

    def server(name: str, mode: str, needles: list[str], expect="fail"):
        def make(ctx):
            return Run(first_turn_argv(ctx, "--model", "openai:m", "--base-url", ctx.url(mode), "--max-retries", "0",
                                       "--timeout", "2"), needles, ["preds"], timeout=90)

        case("curate-first-turn", name, expect)(make)

    server("server-500", "500", ["500/v1"])
    server("server-garbage", "garbage", ["garbage/v1"])
    server("server-hangs", "hang", ["hang/v1"])

    def roster(name: str, text: str, needles: list[str]):
        def make(ctx):
            (ctx.work / "roster.json").write_text(text)
            return Run(first_turn_argv(ctx, "--roster", str(ctx.work / "roster.json")), needles, ["preds"])

        case("curate-first-turn", name)(make)

    roster("roster-not-json", "{models: [", ["roster.json"])
    roster("roster-no-spec", '{"models": [{"name": "x"}]}', ["roster.json"])
    roster("roster-empty", '{"models": []}', ["roster.json"])
    roster("roster-twice", '{"models": [{"spec": "baseline:oracle"}, {"spec": "baseline:oracle"}]}', ["roster.json"])
    roster("roster-key-env-unset", '{"models": [{"spec": "openai:m", "options": {"api_key_env": "NO_SUCH_KEY_X"}}]}',
           ["NO_SUCH_KEY_X"])
    roster("roster-option-typo", '{"models": [{"spec": "baseline:oracle", "options": {"max_new_tokenz": 5}}]}',
           ["max_new_tokenz"])

    @case("curate-first-turn", "roster-missing")
    def _(ctx):
        return Run(first_turn_argv(ctx, "--roster", str(ctx.work / "nowhere.json")), ["nowhere.json"], ["preds"])

    @case("curate-first-turn", "out-is-dataset")
    def _(ctx):
        bench = ctx.use("bench")
        return Run(["curate", "first-turn", "--dataset", str(bench), "--model", "baseline:oracle", "--out", str(bench)],
                   ["--dataset"], [])

    @case("curate-first-turn", "out-is-a-file")
    def _(ctx):
        (ctx.work / "preds").write_text("mine")
        return Run(first_turn_argv(ctx, "--model", "baseline:oracle"), ["preds"], [])

    @case("curate-first-turn", "out-holds-users-file-of-that-name")
    def _(ctx):
        (ctx.work / "preds").mkdir()
        (ctx.work / "preds" / "baseline--oracle.parquet").write_text("my own file")
        return Run(first_turn_argv(ctx, "--model", "baseline:oracle"), ["baseline--oracle.parquet"], [])

    @case("curate-first-turn", "out-holds-other-parquet-of-that-name")
    def _(ctx):
        import pyarrow as pa
        import pyarrow.parquet as pq

        (ctx.work / "preds").mkdir()
        pq.write_table(pa.table({"x": [1]}), ctx.work / "preds" / "baseline--oracle.parquet")
        return Run(first_turn_argv(ctx, "--model", "baseline:oracle"), ["baseline--oracle.parquet"], [])

    @case("curate-first-turn", "part-file-corrupt")
    def _(ctx):
        (ctx.work / "preds" / ".baseline--oracle.parts").mkdir(parents=True)
        corrupt(ctx.work / "preds" / ".baseline--oracle.parts" / "part-0.parquet")
        return Run(first_turn_argv(ctx, "--model", "baseline:oracle"), ["part-0.parquet"],
                   ["preds/baseline--oracle.parquet", f"preds/{MANIFEST}"])

    @case("curate-first-turn", "resume-complete-file", "ok")
    def _(ctx):
        ctx.use("preds")
        return Run(first_turn_argv(ctx, "--model", "baseline:oracle"), outputs=["preds"],
                   check=prediction_rows(POOL, "baseline--oracle.parquet"))

    @case("curate-first-turn", "killed-then-resumed", "ok")
    def _(ctx):
        return Run(first_turn_argv(ctx, "--model", "openai:m", "--base-url", ctx.url("slow-ft"), "--concurrency", "1",
                                   "--batch-size", "1"),
                   outputs=["preds"], kill_after=3.0, check=prediction_rows(POOL, "openai--m.parquet"))

    @case("curate-first-turn", "errors-retried-on-rerun", "ok")
    def _(ctx):
        bench = ctx.use("bench")
        url = ctx.url("flaky-ft")  # answers 500 until the first run is over, then answers well
        first = first_turn_argv(ctx, "--model", "openai:m", "--base-url", url, "--max-retries", "0", bench=bench)
        return Run(first, outputs=["preds"], before=[first], check=prediction_rows(POOL, "openai--m.parquet"))

    def filt(name: str, setup: Callable[[Ctx, Path], list[str]], expect="fail", extra=(), outputs=("filtered",)):
        def make(ctx):
            bench = ctx.use("bench")
            preds = ctx.use("preds", "p")
            needles = setup(ctx, preds)
            return Run(["curate", "filter", "--dataset", str(bench), "--predictions", str(preds), "--out",
                        str(ctx.work / "filtered"), *extra], needles, list(outputs))

        case("curate-filter", name, expect)(make)

    def preds_missing(ctx, preds):
        shutil.rmtree(preds)
        return ["p"]

    def preds_empty(ctx, preds):
        for p in preds.iterdir():
            p.unlink()
        return ["p"]

    def pred_garbage(ctx, preds):
        corrupt(preds / "baseline--oracle.parquet")
        return ["baseline--oracle.parquet"]

    def pred_column_missing(ctx, preds):
        import pyarrow.parquet as pq

        table = pq.read_table(preds / "baseline--oracle.parquet")
        pq.write_table(table.drop(["correct"]), preds / "baseline--oracle.parquet")
        return ["correct"]

    def pred_fewer_rows(ctx, preds):
        import pyarrow.parquet as pq

        table = pq.read_table(preds / "baseline--oracle.parquet")
        pq.write_table(table.slice(0, 5), preds / "baseline--oracle.parquet")
        return ["baseline--oracle.parquet"]

    def pred_repeated(ctx, preds):
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pq.read_table(preds / "baseline--oracle.parquet")
        pq.write_table(pa.concat_tables([table, table.slice(0, 1)]), preds / "baseline--oracle.parquet")
        return ["baseline--oracle.parquet"]

    def pred_unknown_id(ctx, preds):
        edit_rows(preds / "baseline--oracle.parquet", row_edit("sample_id", "coco-999999"))
        return ["coco-999999"]

    def pred_user_text(ctx, preds):
        (preds / "notes.txt").write_text("mine")
        return []

    filt("predictions-missing", preds_missing)
    filt("predictions-empty", preds_empty)
    filt("prediction-file-garbage", pred_garbage)
    filt("prediction-column-missing", pred_column_missing)
    filt("prediction-fewer-rows", lambda c, p: pred_fewer_rows(c, p) and ["baseline:oracle"])
    filt("prediction-repeated-row", pred_repeated)
    filt("prediction-unknown-sample", lambda c, p: pred_unknown_id(c, p) and ["baseline:oracle"])
    filt("predictions-hold-a-text-file", pred_user_text, expect="ok")
    filt("threshold-negative", lambda c, p: ["threshold"], extra=("--threshold", "-0.5"))
    filt("threshold-above-one", lambda c, p: ["threshold"], extra=("--threshold", "2"))
    filt("threshold-nan", lambda c, p: ["threshold"], extra=("--threshold", "nan"))

    @case("curate-filter", "out-is-predictions")
    def _(ctx):
        bench, preds = ctx.use("bench"), ctx.use("preds", "p")
        return Run(["curate", "filter", "--dataset", str(bench), "--predictions", str(preds), "--out", str(preds),
                    "--overwrite"], ["--predictions"], [])

    @case("curate-filter", "out-is-dataset")
    def _(ctx):
        bench, preds = ctx.use("bench"), ctx.use("preds", "p")
        return Run(["curate", "filter", "--dataset", str(bench), "--predictions", str(preds), "--out", str(bench),
                    "--overwrite"], ["--dataset"], [])

    @case("curate-filter", "out-holds-user-files-overwrite")
    def _(ctx):
        bench, preds = ctx.use("bench"), ctx.use("preds", "p")
        (ctx.work / "filtered").mkdir()
        (ctx.work / "filtered" / "thesis.tex").write_text("mine")
        return Run(["curate", "filter", "--dataset", str(bench), "--predictions", str(preds), "--out",
                    str(ctx.work / "filtered"), "--overwrite"], ["thesis.tex"], [])


# --- publish, report, merge, browse, train-grpo, sample-data ------------------------------------------------------


def register_other_cases() -> None:
    def publish(name: str, setup: Callable[[Ctx, Path], list[str]], extra=(), expect="fail"):
        def make(ctx):
            bench = ctx.use("bench")
            needles = setup(ctx, bench)
            return Run(["publish", "--dataset", str(bench), *extra], needles,
                       ["bench/README.md", f"bench/{MANIFEST}"])

        case("publish", name, expect)(make)

    def foreign_card(ctx, bench):
        (bench / "README.md").write_text("# my own card\n")
        manifest = json.loads((bench / MANIFEST).read_text())
        manifest["files"].remove("README.md")
        (bench / MANIFEST).write_text(json.dumps(manifest))
        return ["README.md"]

    publish("card-of-the-user", foreign_card)
    publish("template-missing", lambda c, b: ["nowhere.md"], extra=("--template", "nowhere.md"))
    publish("num-proc-zero", lambda c, b: ["--num-proc"], extra=("--num-proc", "0"))
    publish("push-without-repo-id", lambda c, b: ["--repo-id"], extra=("--push",))
    publish("repo-id-bogus", lambda c, b: ["repo"], extra=("--repo-id", "not a repo id!", "--push"))
    publish("offline-plan", lambda c, b: [], extra=("--repo-id", "me/bench"), expect="ok")

    @case("publish", "dataset-missing")
    def _(ctx):
        return Run(["publish", "--dataset", str(ctx.work / "nowhere")], ["nowhere"], [])

    @case("publish", "template-garbage")
    def _(ctx):
        bench = ctx.use("bench")
        (ctx.work / "card.md").write_text("---\nlicense: [\n---\n{{ broken")
        return Run(["publish", "--dataset", str(bench), "--template", str(ctx.work / "card.md")], ["card.md"],
                   ["bench/README.md", f"bench/{MANIFEST}"])

    @case("publish", "keep-card-broken-yaml")
    def _(ctx):
        bench = ctx.use("bench")
        readme = bench / "README.md"
        readme.write_text(readme.read_text().replace("configs:", "configs: [", 1))
        return Run(["publish", "--dataset", str(bench), "--keep-card"], ["README.md"], [])

    @case("publish", "dataset-is-raw-download")
    def _(ctx):
        raw = ctx.use("raw/coco", "coco")
        return Run(["publish", "--dataset", str(raw)], ["coco"], [])

    # report
    def report(name: str, extra: list[str], needles: list[str], expect="fail", outputs=(), setup=None):
        def make(ctx):
            results = ctx.use("results.duckdb", "r.duckdb")
            if setup:
                setup(ctx, results)
            return Run(["report", "--results", str(results), *[a.replace("CASE", str(ctx.work)) for a in extra]],
                       needles, list(outputs))

        case("report", name, expect)(make)

    report("format-bogus", ["--format", "xlsx"], ["--format"])
    report("view-bogus", ["--view", "table9"], ["--view"])
    report("view-needs-predictions", ["--view", "filter_stats"], ["filter_stats"])
    report("bootstrap-negative", ["--bootstrap", "-1"], ["--bootstrap"])
    report("trajectories-negative", ["--trajectories", "-1", "--html", "CASE/r.html"], ["--trajectories"],
           outputs=["r.html"])
    report("threshold-above-one", ["--predictions", str("CASE/p"), "--threshold", "7"], ["threshold"],
           setup=lambda c, r: c.use("preds", "p"))
    report("predictions-missing", ["--predictions", "CASE/nowhere"], ["nowhere"])
    report("predictions-garbage", ["--predictions", "CASE/p"], ["baseline--oracle.parquet"],
           setup=lambda c, r: (c.use("preds", "p"), corrupt(c.work / "p" / "baseline--oracle.parquet")))
    report("plot-into-user-folder", ["--plot", "CASE/figs"], ["table1.png"],
           setup=lambda c, r: ((c.work / "figs").mkdir(), (c.work / "figs" / "table1.png").write_text("mine")))
    report("plot-is-a-file", ["--plot", "CASE/figs"], ["figs"], setup=lambda c, r: (c.work / "figs").write_text("x"))
    report("plot-rerun", ["--plot", "CASE/figs"], [], expect="ok", outputs=["figs"])
    report("html-over-user-page", ["--html", "CASE/page.html"], ["page.html"],
           setup=lambda c, r: (c.work / "page.html").write_text("<html>mine</html>"))
    report("html-is-a-folder", ["--html", "CASE/page"], ["page"], setup=lambda c, r: (c.work / "page").mkdir())
    report("html-dataset-missing", ["--html", "CASE/r.html", "--dataset", "CASE/nowhere"], ["nowhere"],
           outputs=["r.html"])
    report("html-dataset-damaged", ["--html", "CASE/r.html", "--dataset", "CASE/bench"],
           ["test-00000-of-00001.parquet"], outputs=["r.html"],
           setup=lambda c, r: corrupt(shard(c.use("bench"))))
    report("html-ok", ["--html", "CASE/r.html", "--dataset", "CASE/bench", "--plot", "CASE/figs"], [], expect="ok",
           outputs=["r.html", "figs"], setup=lambda c, r: c.use("bench"))
    for fmt in ("json", "csv", "markdown"):
        report(f"format-{fmt}", ["--format", fmt], [], expect="ok")
    report("save-views-twice", ["--save-views"], [], expect="ok", outputs=["r.duckdb", "r.duckdb.wal"],
           setup=lambda c, r: subprocess.run([sys.executable, "-m", "proactivebench.cli", "report", "--results",
                                              str(r), "--save-views"], capture_output=True))

    def results_case(name: str, damage_results, needles_of: Callable[[Path], list[str]]):
        def make(ctx):
            results = ctx.use("results.duckdb", "r.duckdb")
            damage_results(results)
            return Run(["report", "--results", str(results)], needles_of(results), [])

        case("report", name)(make)

    results_case("results-missing", delete, lambda r: ["r.duckdb"])
    results_case("results-garbage", corrupt, lambda r: ["r.duckdb"])
    results_case("results-truncated", truncate, lambda r: ["r.duckdb"])
    results_case("results-empty-file", empty, lambda r: ["r.duckdb"])

    @case("report", "results-empty-database")
    def _(ctx):
        import duckdb

        duckdb.connect(str(ctx.work / "r.duckdb")).close()
        return Run(["report", "--results", str(ctx.work / "r.duckdb")], ["r.duckdb"], [])

    @case("report", "results-is-a-folder")
    def _(ctx):
        (ctx.work / "r.duckdb").mkdir()
        return Run(["report", "--results", str(ctx.work / "r.duckdb")], ["r.duckdb"], [])

    # merge
    def merge(name: str, setup: Callable[[Ctx], tuple[list[str], list[str]]], expect="fail", check=None):
        def make(ctx):
            argv, needles = setup(ctx)
            return Run(["merge", *argv], needles, ["m.duckdb", "m.duckdb.wal"], check=check)

        case("merge", name, expect)(make)

    def with_results(ctx, *names):
        return [str(ctx.use("results.duckdb", n)) for n in names]

    merge("input-missing", lambda c: ([str(c.work / "nowhere.duckdb"), "--out", str(c.work / "m.duckdb")],
                                      ["nowhere.duckdb"]))
    merge("input-garbage", lambda c: ([*with_results(c, "a.duckdb"), str(_garbage(c.work / "b.duckdb")), "--out",
                                       str(c.work / "m.duckdb")], ["b.duckdb"]))
    merge("input-truncated", lambda c: ([str(_truncated(c.use("results.duckdb", "a.duckdb"))), "--out",
                                         str(c.work / "m.duckdb")], ["a.duckdb"]))
    merge("input-a-folder", lambda c: ([str(_folder(c.work / "a.duckdb")), "--out", str(c.work / "m.duckdb")],
                                       ["a.duckdb"]))
    merge("out-exists-no-update", lambda c: ([*with_results(c, "a.duckdb"), "--out",
                                              str(c.use("results.duckdb", "m.duckdb"))], ["--update"]))
    merge("out-user-file-update", lambda c: ([*with_results(c, "a.duckdb"), "--out",
                                              str(_text(c.work / "m.duckdb")), "--update"], ["m.duckdb"]))
    merge("out-is-a-folder", lambda c: ([*with_results(c, "a.duckdb"), "--out", str(_folder(c.work / "m.duckdb")),
                                         "--update"], ["m.duckdb"]))
    merge("no-inputs", lambda c: (["--out", str(c.work / "m.duckdb")], ["FILE"]))
    merge("input-another-schema", lambda c: ([str(_other_schema(c.work / "a.duckdb")), "--out",
                                              str(c.work / "m.duckdb")], ["a.duckdb"]))
    merge("same-file-twice", lambda c: ([*with_results(c, "a.duckdb"), str(c.work / "a.duckdb"), "--out",
                                         str(c.work / "m.duckdb")], []), expect="ok",
          check=lambda work, r: None if episodes_in(work / "m.duckdb")[:2] == (TEST_EPISODES, TEST_EPISODES)
          else f"{episodes_in(work / 'm.duckdb')} episodes")

    # browse (without --launch)
    def browse(name: str, setup: Callable[[Ctx], tuple[list[str], list[str]]], expect="fail", outputs=("cache",)):
        def make(ctx):
            argv, needles = setup(ctx)
            return Run(["browse", *argv], needles, list(outputs), timeout=240)

        case("browse", name, expect)(make)

    browse("dataset-missing", lambda c: (["--dataset", str(c.work / "nowhere"), "--cache-dir", str(c.work / "cache")],
                                         ["nowhere"]))
    browse("results-garbage", lambda c: (["--dataset", str(c.use("bench")), "--results",
                                          str(_garbage(c.work / "r.duckdb")), "--cache-dir", str(c.work / "cache")],
                                         ["r.duckdb"]))
    browse("cache-dir-is-a-file", lambda c: (["--dataset", str(c.use("bench")), "--cache-dir",
                                              str(_text(c.work / "cache"))], ["cache"]), outputs=())
    browse("splits-bogus", lambda c: (["--dataset", str(c.use("bench")), "--splits", "validation", "--cache-dir",
                                       str(c.work / "cache")], ["validation"]))
    browse("dataset-damaged", lambda c: (["--dataset", str(_damaged_bench(c)), "--cache-dir", str(c.work / "cache")],
                                         ["test-00000-of-00001.parquet"]))

    # train-grpo (arguments only: nothing trains)
    def train(name: str, extra: list[str], needles: list[str], train_split: bool = True):
        def make(ctx):
            bench = ctx.use("train-quickdraw" if train_split else "bench")
            model = str(ctx.fixtures / "tiny") if (ctx.fixtures / "tiny").is_dir() else "nowhere"
            steps = [] if "--max-steps" in extra else ["--max-steps", "1"]  # never a long run if not refused
            return Run(["train-grpo", "--dataset", str(bench), "--model", f"hf:{model}", "--output-dir",
                        str(ctx.work / "adapter"), *steps, *extra], needles, ["adapter"], timeout=240)

        case("train-grpo", name)(make)

    train("no-train-split", [], ["train"], train_split=False)
    train("num-generations-zero", ["--num-generations", "0"], ["--num-generations"])
    train("batch-not-multiple", ["--num-generations", "4", "--batch-size", "6"], ["--batch-size"])
    train("learning-rate-negative", ["--learning-rate", "-1"], ["--learning-rate"])
    train("epochs-zero", ["--epochs", "0"], ["--epochs"])
    train("max-steps-negative", ["--max-steps", "-5"], ["--max-steps"])
    train("lora-r-zero", ["--lora-r", "0"], ["--lora-r"])
    train("lora-dropout-above-one", ["--lora-dropout", "1.5"], ["--lora-dropout"])
    train("temperature-negative", ["--temperature", "-1"], ["--temperature"])
    train("proactive-reward-text", ["--proactive-reward", "lots"], ["--proactive-reward"])
    train("deepspeed-missing", ["--deepspeed", "nowhere.json"], ["nowhere.json"])
    train("max-completion-length-zero", ["--max-completion-length", "0"], ["--max-completion-length"])

    @case("train-grpo", "model-is-a-baseline")
    def _(ctx):
        return Run(["train-grpo", "--dataset", str(ctx.use("bench")), "--model", "baseline:oracle", "--output-dir",
                    str(ctx.work / "adapter")], ["baseline:oracle"], ["adapter"])

    @case("train-grpo", "output-dir-is-dataset")
    def _(ctx):
        bench = ctx.use("train-quickdraw")
        return Run(["train-grpo", "--dataset", str(bench), "--model", "hf:nowhere", "--output-dir", str(bench)],
                   ["--output-dir"], [])

    @case("train-grpo", "output-dir-user-folder")
    def _(ctx):
        bench = ctx.use("train-quickdraw")
        (ctx.work / "adapter").mkdir()
        (ctx.work / "adapter" / "adapter_config.json").write_text('{"mine": true}')
        return Run(["train-grpo", "--dataset", str(bench), "--model", f"hf:{ctx.fixtures / 'tiny'}", "--output-dir",
                    str(ctx.work / "adapter"), "--max-steps", "1"], ["adapter"], [], timeout=240)

    # sample-data
    def sample(name: str, setup: Callable[[Ctx], tuple[list[str], list[str]]], expect="fail", outputs=("out",)):
        def make(ctx):
            argv, needles = setup(ctx)
            return Run(["sample-data", *argv], needles, list(outputs))

        case("sample-data", name, expect)(make)

    sample("out-holds-user-files", lambda c: ([str(_user_folder(c.work / "out"))], ["notes.txt"]), outputs=())
    sample("out-is-a-file", lambda c: ([str(_text(c.work / "out"))], ["out"]), outputs=())
    sample("per-source-zero", lambda c: ([str(c.work / "out"), "--per-source", "0"], ["--per-source"]))
    sample("per-source-negative", lambda c: ([str(c.work / "out"), "--per-source", "-2"], ["--per-source"]))
    sample("sources-bogus", lambda c: ([str(c.work / "out"), "--sources", "imagenet"], ["--sources"]))
    sample("seed-text", lambda c: ([str(c.work / "out"), "--seed", "x"], ["--seed"]))
    sample("rerun-into-own-output", lambda c: ([str(_own(c, "coco")), "--sources", "coco"], []), expect="ok")
    # the per-source folder is swapped whole: a file of the user's inside it is refused, never deleted
    sample("user-file-in-own-output", lambda c: ([str(_own_with_user_file(c)), "--sources", "quickdraw"],
                                                 ["mine.ndjson"]), outputs=())


def _garbage(path: Path) -> Path:
    path.write_bytes(b"\x00garbage" * 100)
    return path


def _truncated(path: Path) -> Path:
    truncate(path)
    return path


def _folder(path: Path) -> Path:
    path.mkdir()
    (path / "inside.txt").write_text("mine")
    return path


def _text(path: Path) -> Path:
    path.write_text("my own file\n")
    return path


def _other_schema(path: Path) -> Path:
    import duckdb

    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE runs (x INTEGER)")
    con.close()
    return path


def _user_folder(path: Path) -> Path:
    path.mkdir()
    (path / "notes.txt").write_text("mine")
    return path


def _own(ctx: Ctx, source: str) -> Path:
    out = ctx.work / "out"
    done = cli("sample-data", str(out), "--sources", source, "--per-source", "2")
    if done.returncode:
        raise RuntimeError(done.stderr[-300:])
    return out


def _own_with_user_file(ctx: Ctx) -> Path:
    out = _own(ctx, "quickdraw")
    (out / "mine.txt").write_text("keep me")
    (out / "quickdraw" / "mine.ndjson").write_text("keep me too")
    return out


def _damaged_bench(ctx: Ctx) -> Path:
    bench = ctx.use("bench")
    corrupt(shard(bench))
    return bench


# --- main ----------------------------------------------------------------------------------------------------------


def register_all() -> None:
    register_build_cases()
    register_import_cases()
    register_dataset_cases()
    register_eval_cases()
    register_curate_cases()
    register_other_cases()


def tally(results: list[dict]) -> str:
    groups = sorted({r["group"] for r in results})
    kinds = [k for k in KINDS] + (["setup-error"] if any(r["kind"] == "setup-error" for r in results) else [])
    header = f"{'command':<18}{'cases':>6}" + "".join(f"{k:>10}" for k in kinds)
    lines = [header, "-" * len(header)]
    for group in groups + ["all"]:
        rows = [r for r in results if group in ("all", r["group"])]
        counts = [sum(r["kind"] == k for r in rows) for k in kinds]
        lines.append(f"{group:<18}{len(rows):>6}" + "".join(f"{c:>10}" for c in counts))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2, help="cases run at once (default 2)")
    parser.add_argument("--only", help="comma-separated commands (groups) to run, e.g. build,eval")
    parser.add_argument("--match", help="only cases whose name contains this")
    parser.add_argument("--again", type=Path, metavar="JSON", help="only the cases not clear/ok in this earlier JSON")
    parser.add_argument("--json", type=Path, default=Path("hostile_inputs.json"), help="where to write the cases")
    parser.add_argument("--keep", action="store_true", help="keep the case folders (printed at the end)")
    parser.add_argument("--no-model", action="store_true", help="skip the tiny hf model (its cases then fail setup)")
    args = parser.parse_args()

    register_all()
    cases = [c for c in CASES if (not args.only or c.group in args.only.split(","))
             and (not args.match or args.match in c.name)]
    if args.again:
        redo = {(r["group"], r["name"]) for r in json.loads(args.again.read_text())["cases"] if r["kind"] not in ("clear", "ok")}
        cases = [c for c in cases if (c.group, c.name) in redo]
    root = Path(tempfile.mkdtemp(prefix="hostile-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env = dict(env, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               FIFTYONE_DO_NOT_TRACK="true", PYTHONWARNINGS="ignore", HF_DATASETS_CACHE=str(root / ".hf-cache"))
    os.environ.update({k: env[k] for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_DATASETS_CACHE")})
    server, url = start_server()
    start = time.monotonic()
    try:
        print(f"fixtures in {root / 'fixtures'} ...", file=sys.stderr)
        make_fixtures(root / "fixtures", env, with_model=not args.no_model)
        results = []
        with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
            futures = {pool.submit(run_case, c, root / "cases", root / "fixtures", url, env): c for c in cases}
            for future in concurrent.futures.as_completed(futures):
                result = future.result()
                results.append(result)
                mark = "." if result["kind"] in ("clear", "ok") else result["kind"][0].upper()
                print(mark, end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
    finally:
        server.shutdown()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    results.sort(key=lambda r: (r["group"], r["name"]))
    for r in results:
        if r["kind"] not in ("clear", "ok"):
            print(f"{r['kind']:>10}  {r['group']} {r['name']}: {r.get('error') or r.get('check') or r.get('detail') or ''}"
                  f"{'' if r.get('error') or r.get('check') else ' | ' + ' / '.join(r.get('tail') or [])}"[:400])
    print()
    print(tally(results))
    print(f"\n{len(results)} cases in {time.monotonic() - start:.0f} s; cases: {args.json}"
          + (f"; folders kept under {root}" if args.keep else ""))
    args.json.write_text(json.dumps({"tally": {k: sum(r["kind"] == k for r in results) for k in KINDS},
                                     "cases": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
