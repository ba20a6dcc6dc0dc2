"""`eval --shots K` (docs/protocol.md §5.2): trajectories for all seven sources, the exact 3-shot message structure,
the shot never being the evaluated episode, short pools, resume, oracle sanity, the report table, tiny LLaVA."""

from __future__ import annotations

import json

import pytest

from proactivebench.eval.analytics import open_results
from proactivebench.eval.backends import Backend, load_backend
from proactivebench.engine import Episode, decode_image
from proactivebench.eval.fewshot import (
    ContextOptions, ShotOptions, ShotPool, cot_prompt, prepare_context, reduce_steps, solved_trajectory,
)
from proactivebench.eval.results import connect
from proactivebench.eval.runner import MODES, EvalConfig, run_eval
from proactivebench.store import load_episodes
from proactivebench.store import iter_rows, write_split

MVPN_COPIES = 4


class Recorder(Backend):
    """The oracle's answers; records every request with its decoded images."""

    kind = "baseline"

    def __init__(self):
        super().__init__("baseline:recorder")
        self.oracle = load_backend("baseline:oracle")
        self.sent = []

    def _generate(self, requests):
        self.sent.extend((r, r.load_images()) for r in requests)
        self.prompts = getattr(self, "prompts", []) + [r.context.observe().prompt for r in requests]
        return self.oracle._generate(requests)


@pytest.fixture(scope="module")
def mvpn_dir(imported_dir, tmp_path_factory):
    """Four MVP-N episodes told apart by their answer (category i), plus the two ROD ones."""
    (row,) = list(iter_rows(imported_dir, ["mvpn"]))
    copies = [dict(row, sample_id=f"mvpn-{100 + i:06d}", answer=row["categories"][i]) for i in range(MVPN_COPIES)]
    root = tmp_path_factory.mktemp("fewshot") / "bench"
    write_split(root, "mvpn", "test", copies, render_card=False)
    write_split(root, "rod", "test", list(iter_rows(imported_dir, ["rod"])))
    return root


def _config(dataset, **kwargs):
    return EvalConfig(dataset=str(dataset), model="baseline:oracle", **kwargs)


def test_trajectories_solve_every_source(imported_rows):
    """ROD: one random move then the category (docs/protocol.md §5.2); MVP-N: every rotation then the category;
    the others walk to their reference frame; all are stepped through the engine, never loop, fit the budget."""
    for sample_id, row in imported_rows.items():
        steps = solved_trajectory(row, seed=0)
        assert 1 <= len(steps) <= row["max_turns"] and steps[-1].answer == row["answer"], sample_id
        if sample_id.startswith("rod"):
            assert len(steps) == 2
        elif sample_id.startswith("mvpn"):
            assert len(steps) == len(row["states"])  # every view until the last, informative one
        else:
            shows_reference = any(st["frame"] == row["reference_frame"] and st["accepts_answer"] for st in row["states"])
            # the reference frame where a state shows it; otherwise (ChangeIt here, COCO) the walk's end
            assert steps[-1].frame == row["reference_frame"] or not shows_reference, sample_id
        assert solved_trajectory(row, seed=0) == steps  # deterministic
    rod_moves = {solved_trajectory(imported_rows["rod-000000"], seed=s)[0].answer for s in range(12)}
    assert len(rod_moves) == 2  # the reference's random left/right pick, seeded


def test_cot_and_reduce(imported_rows):
    row = imported_rows["imagenet_c-000002"]
    steps = solved_trajectory(row, cot=True)
    letter = chr(65 + [o["text"] for o in row["options"]].index("Deblur the image."))
    assert steps[0].answer == f"{cot_prompt('imagenet_c')} {letter}. Deblur the image."
    assert steps[-1].answer == row["answer"]  # the category carries no CoT
    assert cot_prompt("rod").startswith("I cannot see what is behind the occluding object.")
    reduced = reduce_steps(steps)
    assert [s.frame for s in reduced] == [steps[0].frame, steps[-1].frame]


def test_three_shot_message_structure(mvpn_dir, tmp_path):
    backend = Recorder()
    results = tmp_path / "r.duckdb"
    summary = run_eval(_config(mvpn_dir, sources=("mvpn",), shots=3), results, backend=backend, progress=False)
    assert summary.acc == 100.0 and len(backend.sent) == MVPN_COPIES  # the oracle answers at once
    own_answer = {f"mvpn-{100 + i:06d}": i for i in range(MVPN_COPIES)}
    rows = {r["sample_id"]: r for r in iter_rows(mvpn_dir, ["mvpn"])}
    for (request, images), prompt in zip(backend.sent, backend.prompts):
        episode = request.context
        # 3 shots x 3 steps (rotate, rotate, category) as user/assistant pairs, then the evaluated turn
        assert [m["role"] for m in request.messages] == ["user", "assistant"] * 9 + ["user"]
        assert all(m["content"][0] == {"type": "image"} for m in request.messages if m["role"] == "user")
        assert len(images) == 10 and len(request.images) == 10
        assert request.messages[-1]["content"][1]["text"] == prompt
        answers = [m["content"][0]["text"] for m in request.messages[1::2]]
        assert answers[:2] == ["Rotate the object.", "Rotate the object."]
        shot_answers = {answers[i] for i in (2, 5, 8)}
        categories = episode.categories
        # the three shots are the three other episodes, never the evaluated one (told apart by their answers)
        assert shot_answers == {categories[i] for i in range(MVPN_COPIES) if i != own_answer[episode.sample_id]}
        assert all(min(image.size) == 112 for image in images[:-1])  # MVP-N's ICL size
        own = decode_image(rows[episode.sample_id]["frames"][0])
        assert images[-1].size == own.size  # the evaluated frame is not resized
    config = json.loads(connect(results, read_only=True).execute("SELECT config_json FROM runs").fetchone()[0])
    assert config["shots"] == 3 and config["shots_used"] == {"mvpn": 3} and config["history"] is False


def test_reduced_cot_shots_with_history(mvpn_dir, tmp_path):
    config = _config(mvpn_dir, sources=("mvpn",), shots=3, reduce_shots=True, cot=True, shot_size=64, history=True)
    mode, record = prepare_context(MODES["mcqa"], load_episodes(config.dataset, config.split), config)
    assert record["cot"] and record["reduce_shots"] and record["shot_size"] == 64 and record["history"]
    episode = Episode(next(iter(iter_rows(mvpn_dir, ["mvpn"]))))
    episode.step("A.")  # one rotation: the request now carries one history turn after the shots
    request = mode.make_request(episode, episode.observe())
    assert [m["role"] for m in request.messages] == ["user", "assistant"] * 6 + ["user", "assistant", "user"]
    images = request.load_images()
    assert len(images) == 8 and [min(i.size) for i in images] == [64] * 6 + [224, 224]
    first_answer = request.messages[1]["content"][0]["text"]
    assert first_answer == f"{cot_prompt('mvpn')} A. Rotate the object."


def test_short_pools_and_oracle(imported_dir, tmp_path):
    """ROD has one other episode, the single-episode sources none: fewer shots, recorded; oracle stays 100%."""
    backend = Recorder()
    results = tmp_path / "r.duckdb"
    summary = run_eval(_config(imported_dir, shots=3), results, backend=backend, progress=False)
    assert summary.acc == 100.0 and summary.errors == 0 and summary.episodes == 10
    config = json.loads(connect(results, read_only=True).execute("SELECT config_json FROM runs").fetchone()[0])
    assert config["shots_used"] == {
        "rod": 1, "vsod": 0, "mvpn": 0, "imagenet_c": 0, "quickdraw": 0, "changeit": 0, "coco": 2,
    }
    by_sample = {}
    for request, _ in backend.sent:
        by_sample.setdefault(request.context.sample_id, request)
    assert [m["role"] for m in by_sample["vsod-000006"].messages] == ["user"]
    rod = by_sample["rod-000000"]
    assert [m["role"] for m in rod.messages] == ["user", "assistant", "user", "assistant", "user"]
    pool = ShotPool(load_episodes(str(imported_dir)), ShotOptions(shots=3))
    assert pool.shots_for("rod-000000", "rod") == [pool.sample_ids.index("rod-000001")]


def test_fewshot_resume_and_run_identity(mvpn_dir, tmp_path):
    results = tmp_path / "r.duckdb"
    first = run_eval(_config(mvpn_dir, shots=3, limit=2), results, progress=False)
    full = run_eval(_config(mvpn_dir, shots=3), results, progress=False)
    assert full.run_id == first.run_id and full.new_episodes == full.episodes - first.episodes == 2
    assert run_eval(_config(mvpn_dir, shots=3), results, progress=False).new_episodes == 0
    others = {run_eval(_config(mvpn_dir, **kw), results, progress=False).run_id
              for kw in ({}, {"shots": 1}, {"shots": 3, "cot": True}, {"shots": 3, "reduce_shots": True})}
    assert len(others | {full.run_id}) == 5


def test_bad_options():
    with pytest.raises(ValueError, match="need --shots"):
        ContextOptions(cot=True).validate("mcqa")
    with pytest.raises(ValueError, match="mcqa"):
        ContextOptions(shots=1).validate("oeg")


def test_report_puts_plain_history_fewshot_side_by_side(imported_dir, tmp_path):
    results = tmp_path / "r.duckdb"
    for kwargs in ({}, {"history": True}, {"shots": 3}):
        run_eval(_config(imported_dir, **kwargs), results, progress=False)
    con = open_results(results)
    rows = con.execute("SELECT run, variant, avg_acc FROM table1 ORDER BY run").fetchall()
    assert sorted(r[1] for r in rows) == sorted(["", "history=true", "shots=3"])
    assert all(r[2] == 100.0 for r in rows)
    con.close()
    run_eval(_config(imported_dir, shots=3, cot=True, reduce_shots=True), results, progress=False)
    con = open_results(results)
    variants = {r[0] for r in con.execute("SELECT variant FROM table1").fetchall()}
    con.close()
    assert "shots=3 cot=true reduce_shots=true" in variants and len(variants) == 4


def test_fewshot_through_tiny_llava(mvpn_dir, tiny_llava_dir):
    config = _config(mvpn_dir, shots=3)
    mode, _ = prepare_context(MODES["mcqa"], load_episodes(config.dataset, config.split), config)
    backend = load_backend(f"hf:{tiny_llava_dir}", max_new_tokens=3)
    try:
        episode = Episode(next(iter(iter_rows(mvpn_dir, ["mvpn"]))))
        request = mode.make_request(episode, episode.observe())
        assert backend._chat(request).count("<image>") == 10
        (out,) = backend.generate([request])
        assert out.error == "" and isinstance(out.text, str)
    finally:
        backend.close()
