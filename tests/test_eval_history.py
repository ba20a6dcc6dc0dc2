"""`eval --history` (docs/protocol.md §5.1): the exact multi-turn messages, resizing, resume, oracle, tiny LLaVA."""

from __future__ import annotations

import json

import pytest

from proactivebench.eval.backends import Backend, load_backend
from proactivebench.engine import Episode, decode_image
from proactivebench.eval.history import history_request_maker, resize_short_edge
from proactivebench.eval.results import connect
from proactivebench.eval.runner import EvalConfig, run_eval
from proactivebench.store import iter_rows


class Walker(Backend):
    """Takes the lowest-index valid move while one exists, then answers: a scripted multi-turn episode.
    Records every request it is sent, with its decoded images."""

    kind = "baseline"

    def __init__(self):
        super().__init__("baseline:walker")
        self.sent = []

    def _generate(self, requests):
        texts = []
        for request in requests:
            self.sent.append((request, request.load_images()))
            episode = request.context
            moves = sorted(episode.states[episode.state].moves, key=lambda m: m.option)
            shown = episode.shown_options()
            if moves and len(episode.turns) < episode.max_turns - 1:
                texts.append(f"{chr(65 + shown.index(moves[0].option))}.")
            else:
                texts.append(f"{chr(65 + len(shown) + episode.categories.index(episode.answer))}.")
        return texts


def _config(dataset, **kwargs) -> EvalConfig:
    return EvalConfig(dataset=str(dataset), model="baseline:walker", **kwargs)


def _roles(request):
    return [m["role"] for m in request.messages]


def test_three_turn_history_message_structure(imported_dir, tmp_path):
    """MVP-N sample: rotate, rotate, answer. Turn t carries every earlier (image, prompt, own answer)."""
    backend = Walker()
    results = tmp_path / "r.duckdb"
    summary = run_eval(_config(imported_dir, sources=("mvpn",), history=True), results, backend=backend, progress=False)
    assert summary.acc == 100.0
    assert [_roles(r) for r, _ in backend.sent] == [
        ["user"], ["user", "assistant", "user"], ["user", "assistant", "user", "assistant", "user"],
    ]
    con = connect(results, read_only=True)
    turns = con.execute("SELECT turn, frame, prompt, output FROM turns ORDER BY turn").fetchall()
    assert len(turns) == 3 and [t[1] for t in turns] == [0, 1, 2]
    (row,) = list(iter_rows(imported_dir, ["mvpn"]))
    request, images = backend.sent[-1]
    for index, (_, frame, prompt, output) in enumerate(turns):
        user = request.messages[2 * index]
        assert user["content"] == [{"type": "image"}, {"type": "text", "text": prompt}]
        if index < 2:
            assert request.messages[2 * index + 1]["content"] == [{"type": "text", "text": output}]
        # every image, the current one included, is the turn's frame at a 224 px short edge
        expected = resize_short_edge(decode_image(row["frames"][frame]), 224)
        assert min(images[index].size) == 224 and images[index].tobytes() == expected.tobytes()
    assert len(images) == 3 and request.key == f"{row['sample_id']}/2"
    config = json.loads(con.execute("SELECT config_json FROM runs").fetchone()[0])
    assert config["history"] is True and config["history_size"] == 224 and config["shots"] == 0


def test_history_size_zero_keeps_frames(imported_rows):
    row = imported_rows["mvpn-000005"]
    episode = Episode(row)
    episode.step("A.")
    request = history_request_maker(size=0)(episode, episode.observe())
    assert [image.size for image in request.load_images()] == [
        decode_image(row["frames"][row["states"][s]["frame"]]).size for s in (0, 1)
    ]


def test_history_oracle_and_resume(imported_dir, tmp_path):
    results = tmp_path / "r.duckdb"
    oracle = lambda **kw: EvalConfig(dataset=str(imported_dir), model="baseline:oracle", **kw)  # noqa: E731
    first = run_eval(oracle(history=True, limit=1), results, progress=False)
    full = run_eval(oracle(history=True), results, progress=False)
    again = run_eval(oracle(history=True), results, progress=False)
    plain = run_eval(oracle(), results, progress=False)
    assert full.run_id == first.run_id == again.run_id != plain.run_id
    assert full.acc == 100.0 and full.errors == 0 and full.episodes == 10  # the 10 test episodes, 7 sources
    assert full.new_episodes == full.episodes - first.episodes and again.new_episodes == 0
    sized = run_eval(oracle(history=True, history_size=112), results, progress=False)
    assert sized.run_id not in (full.run_id, plain.run_id)


def test_history_needs_mcqa(imported_dir, tmp_path):
    with pytest.raises(ValueError, match="mcqa"):
        run_eval(_config(imported_dir, mode="reference", history=True), tmp_path / "r.duckdb", backend=Walker(),
                 progress=False)


def test_history_through_tiny_llava_chat_template(imported_rows, tiny_llava_dir):
    """A 3-turn history goes through the processor's chat template: 3 image tokens, both own answers, batched."""
    backend = load_backend(f"hf:{tiny_llava_dir}", max_new_tokens=3)
    try:
        episode = Episode(imported_rows["mvpn-000005"])
        episode.step("Rotate the object.")
        episode.step("A. Rotate the object.")
        make = history_request_maker()
        request = make(episode, episode.observe())
        text = backend._chat(request)
        assert text.count("<image>") == 3 and text.count("Rotate the object.") >= 4  # 2 answers, 3 option lists
        fresh = Episode(imported_rows["rod-000000"])
        out = backend.generate([request, make(fresh, fresh.observe())])
        assert [g.error for g in out] == ["", ""] and all(isinstance(g.text, str) for g in out)
    finally:
        backend.close()


def test_history_as_openai_messages(imported_rows):
    """The openai backend sends the same chat: one image_url per earlier and current turn, assistant turns kept."""
    from proactivebench.eval.backends.openai_server import to_openai_messages

    episode = Episode(imported_rows["mvpn-000005"])
    episode.step("A. Rotate the object.")
    messages = to_openai_messages(history_request_maker()(episode, episode.observe()))
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    urls = [i for m in messages for i in m["content"] if i["type"] == "image_url"]
    assert len(urls) == 2 and all(u["image_url"]["url"].startswith("data:image/png;base64,") for u in urls)
    assert messages[1]["content"] == [{"type": "text", "text": "A. Rotate the object."}]
