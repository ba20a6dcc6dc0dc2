"""The OEG judge: the paper's prompt and parser exactly, judging a results file, resume, and the CLI."""

from __future__ import annotations

import hashlib
from typing import Sequence

import duckdb
import pytest

from proactivebench.cli import main
from proactivebench.eval.backends import Backend, Request
from proactivebench.eval.judge import (
    SYSTEM_PROMPT,
    correct_answers,
    judge_messages,
    parse_judgment,
    run_judge,
    visible_output,
)
from proactivebench.eval.runner import EvalConfig, run_eval


def test_system_prompt_is_the_papers():
    # sha256 of the docs/protocol.md §6.3 text (checked byte for byte against it when written).
    assert hashlib.sha256(SYSTEM_PROMPT.encode()).hexdigest()[:16] == "06f2664bc2ef9bb0"
    assert [c for c in SYSTEM_PROMPT if ord(c) > 127] == ["\u2019"]
    assert SYSTEM_PROMPT.startswith("You are an automatic evaluation system.\n\n")
    assert "\n   - The wording does NOT need to match exactly.\n" in SYSTEM_PROMPT
    assert SYSTEM_PROMPT.endswith("The last line must not contain anything else.")


def test_judge_messages_render_as_the_reference():
    answers = ["Wait for the occlusion to disappear", "Rewind the video", "Move the camera", "Ge you."]
    messages = judge_messages("PROMPT", answers, "GEN")
    assert messages[0] == {"content": SYSTEM_PROMPT, "role": "system"}
    assert messages[1] == {
        "content": "### User Prompt:\nPROMPT\n### Correct Answers (List):\n['Wait for the occlusion to disappear', "
        "'Rewind the video', 'Move the camera', 'Ge you']\n### System Output:\nGEN",
        "role": "user",
    }
    assert correct_answers([" Deblur the image", "Cello."]) == ["Deblur the image", "Cello"]


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("0,0,0,1", (0, 1, 1)),
        ("1, 0, 0, 0", (1, 0, 1)),
        ("blah 1,1\n0,0,1,0", (1, 0, 1)),
        ("0,1,0", (0, 0, 0)),
        ("The answer: 1,0,0,1.", (1, 1, 1)),
        ("x 10 y", (0, 0, 0)),
        ("no digits", (0, 0, 0)),
    ],
)
def test_parse_judgment_vsod_table(raw, expected):
    verdict = parse_judgment(raw, num_answers=4, proactive_count=3)  # VSOD: 4 items, THR 3 (docs/protocol.md §6.4)
    assert (verdict.proactive_suggestion, verdict.category_prediction, verdict.aggregate) == expected


def test_visible_output_drops_the_thinking():
    assert visible_output("<think>1,1,1</think>\n\n0,1\n") == "0,1"
    assert visible_output("\n1,0\n") == "1,0"
    assert parse_judgment(visible_output("<think>0,0</think>1,0"), 2, 2).proactive_suggestion == 1


class ScriptedJudge(Backend):
    """A judge that marks the first answer item present when the system output mentions it, else all 0."""

    kind = "scripted"
    needs_images = False

    def __init__(self):
        super().__init__("scripted:judge")
        self.calls = 0

    def _generate(self, requests: Sequence[Request]) -> list[str]:
        self.calls += len(requests)
        outputs = []
        for request in requests:
            user = request.messages[1]["content"]
            items = eval(user.split("### Correct Answers (List):\n")[1].split("\n")[0])  # the Python repr list
            generated = user.split("### System Output:\n")[1]
            marks = ["1" if i == 0 and items[0].lower() in generated.lower() else "0" for i in range(len(items))]
            outputs.append("<think>reasoning 1,1</think>\n" + ",".join(marks))
        return outputs


def test_judge_a_results_file_and_resume(imported_dir, tmp_path):
    results = tmp_path / "r.duckdb"
    run_eval(EvalConfig(str(imported_dir), "baseline:oracle", mode="oeg", hint=True), results, progress=False)
    run_eval(EvalConfig(str(imported_dir), "baseline:always-abstain", mode="oeg"), results, progress=False)
    judge = ScriptedJudge()
    summary = run_judge(results, "scripted:judge", backend=judge, progress=False)
    assert summary.judged == 20 and summary.failed == 0 and judge.calls == 20
    con = duckdb.connect(str(results), read_only=True)
    rows = con.execute(
        """SELECT r.model, avg(j.proactive_suggestion), avg(j.category_prediction), avg(j.aggregate), count(*)
           FROM judgments j JOIN runs r USING (run_id) GROUP BY r.model ORDER BY r.model"""
    ).fetchall()
    prompt = con.execute("SELECT prompt FROM turns WHERE sample_id = 'quickdraw-000000' AND run_id IN "
                         "(SELECT run_id FROM runs WHERE hint)").fetchone()[0]
    con.close()
    # The oracle names every valid answer: the first (proactive) item is always there; abstaining never is.
    assert rows == [("always-abstain", 0.0, 0.0, 0.0, 10), ("oracle", 1.0, 0.0, 1.0, 10)]
    assert prompt.endswith(" If you cannot answer this question, please tell me what I should do to help you.")
    again = run_judge(results, "scripted:judge", backend=judge, progress=False)
    assert again.judged == 0 and judge.calls == 20  # resumed: nothing judged twice


def test_judge_needs_an_oeg_run(imported_dir, tmp_path):
    results = tmp_path / "r.duckdb"
    run_eval(EvalConfig(str(imported_dir), "baseline:oracle"), results, progress=False)
    with pytest.raises(ValueError, match="no open-ended"):
        run_judge(results, "scripted:judge", backend=ScriptedJudge(), progress=False)


def test_cli_eval_and_judge_with_the_tiny_model(imported_dir, tiny_llava_dir, tmp_path, capsys):
    results = tmp_path / "r.duckdb"
    code = main([
        "eval", "--dataset", str(imported_dir), "--model", "baseline:oracle", "--mode", "oeg", "--sources",
        "quickdraw", "imagenet_c", "--results", str(results), "--no-progress", "--export-parquet", str(tmp_path / "pq"),
    ])
    out = capsys.readouterr().out
    assert code == 0 and "quickdraw: 1 episodes, generated" in out and (tmp_path / "pq" / "turns.parquet").is_file()
    code = main(["judge", "--results", str(results), "--judge", f"hf:{tiny_llava_dir}", "--max-new-tokens", "4",
                 "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0 and "2 judged, 0 failed" in out
    con = duckdb.connect(str(results), read_only=True)
    judge_model, raw = con.execute("SELECT judge_model, raw FROM judgments LIMIT 1").fetchone()
    con.close()
    assert judge_model == f"hf:{tiny_llava_dir}" and isinstance(raw, str)


def test_cli_bad_input_exits_2(imported_dir, tmp_path, capsys):
    assert main(["eval", "--dataset", str(imported_dir), "--model", "llava", "--results", str(tmp_path / "r.db")]) == 2
    assert "error: model spec 'llava' must look like" in capsys.readouterr().err
    assert main(["judge", "--results", str(tmp_path / "r.db"), "--judge", "baseline:oracle"]) == 2
    assert "no open-ended" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["eval", "judge"])
def test_commands_have_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0 and "--results" in capsys.readouterr().out
