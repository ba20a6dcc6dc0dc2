"""The open-ended-generation judge: the paper's prompt and parser, exactly (docs/protocol.md §6.3–6.4).

Our rows carry `oeg_answers` already split into items and `oeg_proactive_count` (the paper's PREDICTION_THR),
so the reference's `valid_answers.split(",")` becomes the item list; each item is cleaned as the reference
cleans it (strip, every "." removed) and the list is inserted as a Python repr (docs/protocol.md §10.11), not JSON.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

SYSTEM_PROMPT = """You are an automatic evaluation system.

You will receive:
- A user prompt
- A list of correct answers (JSON list of strings)
- A system output

Your task:
For each correct answer, determine whether the system output expresses the same idea, action, or requirement.

Evaluation principles:

1. Semantic equivalence is sufficient.
   - The wording does NOT need to match exactly.
   - Functional equivalence counts as correct.
   - If the system output describes an action that necessarily implies the correct answer, count it as present.

2. Implicit but clear implications count as correct.
   - If the output describes the mechanism required to achieve the correct answer\u2019s goal, count it as correct.
   - Example: "change perspective" can imply "move the camera."

3. Do NOT require exact phrasing.

4. Only mark 0 if:
   - The idea is clearly absent
   - The idea is contradicted
   - The answer is negated

Procedure:
1. Think step by step.
2. For each correct answer, decide if it is semantically expressed or clearly implied.
3. Output the result on a new line in the exact format below.

<comma-separated list of 0s and 1s>

The last line must not contain anything else."""

USER_PROMPT = """### User Prompt:
{user_prompt}
### Correct Answers (List):
{correct_answers}
### System Output:
{generated_answer}"""

THINK_END = "</think>"
_PREDICTION = re.compile(r"[01](?:\s*,\s*[01])*")


@dataclass(frozen=True)
class Judgment:
    proactive_suggestion: int
    category_prediction: int
    aggregate: int


NO_JUDGMENT = Judgment(0, 0, 0)


def correct_answers(oeg_answers: Sequence[str]) -> list[str]:
    return [answer.strip().replace(".", "") for answer in oeg_answers]


def judge_messages(prompt: str, oeg_answers: Sequence[str], generated: str) -> list[dict]:
    """The reference's `get_oeg_judge_messages` over our split answer items."""
    user = USER_PROMPT.format(
        user_prompt=prompt, correct_answers=correct_answers(oeg_answers), generated_answer=generated
    )
    return [{"content": SYSTEM_PROMPT, "role": "system"}, {"content": user, "role": "user"}]


def visible_output(raw: str) -> str:
    """What the reference parses: the text after the last `</think>` (all of it when absent), newlines stripped."""
    return raw.rsplit(THINK_END, 1)[-1].strip("\n")


def parse_judgment(raw: str, num_answers: int, proactive_count: int) -> Judgment:
    """The reference's `parse_judge_prediction`: the last 0/1 list must have one entry per answer item; the first
    `proactive_count` (PREDICTION_THR) entries are proactive suggestions, the rest the category."""
    matches = _PREDICTION.findall(raw)
    if not matches:
        return NO_JUDGMENT
    predictions = [int(token.strip()) for token in matches[-1].split(",") if token.strip()]
    if len(predictions) != num_answers:
        return NO_JUDGMENT
    proactive = int(1 in predictions[:proactive_count])
    category = int(1 in predictions[proactive_count:])
    return Judgment(proactive, category, int(proactive or category))


# --- judging a results file ------------------------------------------------------------------------------------

JUDGE_MAX_NEW_TOKENS = 2**15  # the reference's judge budget (docs/protocol.md §7.2): thinking models need room


@dataclass
class JudgeSummary:
    judged: int  # new judgments written
    failed: int  # judge calls that failed (not written: a rerun retries them)
    per_source: dict[str, tuple[int, float, float, float]]  # source → (n, cc %, ps %, agg %) over all judgments

    def lines(self) -> list[str]:
        rows = [f"{s}: n={n} cc {cc:.1f}% ps {ps:.1f}% agg {agg:.1f}%" for s, (n, cc, ps, agg) in self.per_source.items()]
        return rows + [f"{self.judged} judged, {self.failed} failed"]


def _answers_by_sample(dataset: str, split: str, revision: str | None) -> dict[str, tuple[list[str], int]]:
    """sample_id → (oeg_answers, oeg_proactive_count), reading no frame."""
    import datasets

    from proactivebench import store

    kwargs = {"revision": revision} if revision and not revision.startswith("local-") else {}
    try:
        table = store.load(dataset, None, split=split, **kwargs)
    except (FileNotFoundError, ValueError, datasets.exceptions.DatasetNotFoundError) as error:
        raise ValueError(f"cannot load dataset {dataset!r} to judge against (use --dataset): {error}") from None
    table = table.select_columns(["sample_id", "oeg_answers", "oeg_proactive_count"])
    return {r["sample_id"]: (list(r["oeg_answers"]), int(r["oeg_proactive_count"])) for r in table}


def run_judge(
    results,
    judge: str,
    run_ids: Sequence[str] | None = None,
    dataset: str | None = None,
    batch_size: int | None = None,
    backend=None,
    backend_options: dict | None = None,
    progress: bool = True,
) -> JudgeSummary:
    """Judge every OEG answer in `results` not yet judged by `judge` (a backend SPEC); resumable."""
    import json

    from tqdm.auto import tqdm

    from .backends import Request, load_backend
    from .results import JudgmentWriter, connect

    connection = connect(results)
    own = backend is None
    try:
        query = "SELECT run_id, dataset, dataset_revision, config_json FROM runs WHERE mode = 'oeg'"
        runs = connection.execute(query).fetchall()
        if run_ids:
            runs = [r for r in runs if r[0] in set(run_ids)]
        if not runs:
            raise ValueError(f"{results}: no open-ended (oeg) run to judge" + (f" among {', '.join(run_ids)}" if run_ids else ""))
        if backend is None:
            options = {"max_new_tokens": JUDGE_MAX_NEW_TOKENS, "chat_template_kwargs": {"enable_thinking": True}}
            backend = load_backend(judge, **{**options, **(backend_options or {})})
        writer = JudgmentWriter(connection, judge)
        judged = failed = 0
        for run_id, run_dataset, revision, config_json in runs:
            config = json.loads(config_json or "{}")
            answers = _answers_by_sample(dataset or run_dataset, config.get("split", "test"), revision)
            done = writer.done(run_id)
            turns = connection.execute(
                "SELECT sample_id, prompt, output, error FROM turns WHERE run_id = ? AND turn = 0 ORDER BY sample_id",
                [run_id],
            ).fetchall()
            todo = [t for t in turns if t[0] not in done]
            missing = [t[0] for t in todo if t[0] not in answers]
            if missing:
                raise ValueError(f"run {run_id}: sample {missing[0]} is not in dataset {dataset or run_dataset!r}")
            size = batch_size or backend.default_batch_size
            bar = tqdm(total=len(todo), desc=f"judge {run_id}", unit="ans", disable=not progress)
            for start in range(0, len(todo), size):
                chunk = todo[start:start + size]
                # A failed model call has no answer to judge: it scores 0, like the reference's denominator.
                rows = [_row(run_id, judge, t[0], "", NO_JUDGMENT) for t in chunk if t[3]]
                to_ask = [t for t in chunk if not t[3]]
                requests = [
                    Request(judge_messages(prompt, answers[sample][0], output), key=f"{run_id}/{sample}")
                    for sample, prompt, output, _ in to_ask
                ]
                for (sample, *_), generation in zip(to_ask, backend.generate(requests)):
                    if generation.error:
                        failed += 1
                        continue
                    items, proactive_count = answers[sample]
                    verdict = parse_judgment(visible_output(generation.text), len(items), proactive_count)
                    rows.append(_row(run_id, judge, sample, generation.text, verdict))
                writer.write(rows)
                judged += len(rows)
                bar.update(len(chunk))
            bar.close()
        return JudgeSummary(judged, failed, _summary(connection, judge, [r[0] for r in runs]))
    finally:
        connection.close()
        if own and backend is not None:
            backend.close()


def _row(run_id: str, judge: str, sample_id: str, raw: str, verdict: Judgment) -> dict:
    return {
        "run_id": run_id, "sample_id": sample_id, "judge_model": judge, "raw": raw,
        "proactive_suggestion": verdict.proactive_suggestion, "category_prediction": verdict.category_prediction,
        "aggregate": verdict.aggregate,
    }


def _summary(connection, judge: str, run_ids: list[str]) -> dict[str, tuple[int, float, float, float]]:
    marks = ", ".join("?" for _ in run_ids)
    rows = connection.execute(
        f"""SELECT e.source, count(*), 100 * avg(j.category_prediction), 100 * avg(j.proactive_suggestion),
                   100 * avg(j.aggregate)
            FROM judgments j JOIN episodes e USING (run_id, sample_id)
            WHERE j.judge_model = ? AND j.run_id IN ({marks}) GROUP BY e.source ORDER BY e.source""",
        [judge, *run_ids],
    ).fetchall()
    return {r[0]: (int(r[1]), float(r[2]), float(r[3]), float(r[4])) for r in rows}
