"""The backend interface: hf (tiny LLaVA and Qwen2.5-VL), error isolation, spec parsing, baselines on episodes."""

from __future__ import annotations

import pytest
from PIL import Image

from proactivebench.eval import Episode
from proactivebench.eval.backends import Request, load_backend, parse_spec, single_turn
from proactivebench.eval.backends.baseline import POLICIES



def _requests():
    return [
        single_turn("What is the object? Options:\nA. Banana.\n", [Image.new("RGB", (50, 40), (200, 10, 10))], key="a"),
        single_turn("Hint: moving helps. A. Cup.", [Image.new("RGB", (64, 96), (0, 100, 10))], key="b"),
        single_turn("Q? A. Bed. B. Tooth. C. Potato. D. The eiffel tower.", [Image.new("RGB", (33, 33), 7)], key="c"),
    ]


@pytest.fixture(scope="module", params=["tiny_llava_dir", "tiny_qwen_dir"])
def hf_backend(request):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # see one_torch_thread
    backend = load_backend(f"hf:{request.getfixturevalue(request.param)}", max_new_tokens=6)
    yield backend
    backend.close()
    torch.set_num_threads(before)


def test_hf_batch_equals_one_by_one(hf_backend):
    requests = _requests()
    batched = hf_backend.generate(requests)
    singles = [hf_backend.generate([r])[0] for r in requests]
    assert [g.error for g in batched] == ["", "", ""]
    assert [g.text for g in batched] == [g.text for g in singles]
    assert all(isinstance(g.text, str) and g.latency_s > 0 for g in batched)
    config = hf_backend.config()
    assert config["device"] == "cpu" and config["dtype"] == "float32" and config["max_new_tokens"] == 6


def test_hf_failing_request_is_isolated(tiny_qwen_dir, one_torch_thread):
    """Qwen's processor rejects an extreme aspect ratio (a 1-pixel-high crop): only that request fails."""
    backend = load_backend(f"hf:{tiny_qwen_dir}", max_new_tokens=4)
    requests = _requests()
    requests.insert(1, single_turn("Q?", [Image.new("RGB", (400, 1))], key="bad"))
    out = backend.generate(requests)
    assert [bool(g.error) for g in out] == [False, True, False, False]
    assert "ValueError" in out[1].error and out[1].text == ""
    assert out[0].text == backend.generate([requests[0]])[0].text


def test_hf_text_only_request(tiny_llava_dir, one_torch_thread):
    backend = load_backend(f"hf:{tiny_llava_dir}", max_new_tokens=3)
    request = Request([{"role": "system", "content": "You judge."}, {"role": "user", "content": "0,1"}])
    (out,) = backend.generate([request])
    assert out.error == "" and isinstance(out.text, str)


def test_spec_errors():
    assert parse_spec("hf:org/model+adapter") == ("hf", "org/model+adapter")
    with pytest.raises(ValueError, match="must look like"):
        parse_spec("llava")
    with pytest.raises(ValueError, match="unknown backend"):
        load_backend("vllm:x")
    with pytest.raises(ValueError, match="unknown baseline"):
        load_backend("baseline:genius")


def _play(row, spec, mode="mcqa"):
    backend = load_backend(spec, max_new_tokens=9)  # an option baselines do not use is dropped
    episode = Episode(row, mode=mode)
    while not episode.done:
        request = single_turn(episode.observe().prompt, context=episode, key=f"{row['sample_id']}/{len(episode.turns)}")
        (out,) = backend.generate([request])
        assert out.error == "" and len(out.text) >= 1
        episode.step(out.text)
    return episode.result


def test_baselines_answer_through_the_parser(imported_rows):
    assert set(POLICIES) == {"random", "oracle", "oracle-proactive", "always-proactive", "always-abstain"}
    for row in imported_rows.values():
        oracle = _play(row, "baseline:oracle")
        assert oracle.correct and oracle.stop_reason == "correct"
        assert all(len(t.output) == 1 for t in oracle.turns)  # a letter, like a model
        abstain = _play(row, "baseline:always-abstain")
        assert not abstain.correct and abstain.stop_reason == "abstain" and abstain.num_turns == 1
        proactive = _play(row, "baseline:always-proactive")
        assert not proactive.correct
        assert _play(row, "baseline:oracle", mode="reference").correct
        assert not _play(row, "baseline:always-abstain", mode="reference").correct


def test_random_baseline_is_seeded_by_key(imported_rows):
    row = next(iter(imported_rows.values()))
    episode = Episode(row)
    backend = load_backend("baseline:random", seed=3)
    requests = [single_turn("x", context=episode, key=f"k{i}") for i in range(20)]
    first = [g.text for g in backend.generate(requests)]
    again = [g.text for g in backend.generate(requests[::-1])][::-1]
    assert first == again and len(set(first)) > 1
    assert first != [g.text for g in load_backend("baseline:random", seed=4).generate(requests)]


def test_hf_base_plus_lora_adapter(tiny_llava_dir, tmp_path, one_torch_thread):
    """`hf:<base>+<adapter>` (what GRPO evaluates) and an adapter folder alone both load and merge the LoRA."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    base = AutoModelForImageTextToText.from_pretrained(tiny_llava_dir)
    torch.manual_seed(1)
    # init_lora_weights=False: random A and B, so the adapter visibly changes the outputs.
    lora = LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    adapter = tmp_path / "adapter"
    model = get_peft_model(base, lora)
    model.peft_config["default"].base_model_name_or_path = str(tiny_llava_dir)
    model.save_pretrained(adapter)
    requests = _requests()
    plain = [g.text for g in load_backend(f"hf:{tiny_llava_dir}", max_new_tokens=8).generate(requests)]
    combined = load_backend(f"hf:{tiny_llava_dir}+{adapter}", max_new_tokens=8)
    alone = load_backend(f"hf:{adapter}", max_new_tokens=8)
    with_adapter = [g.text for g in combined.generate(requests)]
    assert with_adapter != plain
    assert [g.text for g in alone.generate(requests)] == with_adapter
    assert combined.config()["adapter"] == str(adapter) and combined.model_name == f"{tiny_llava_dir}+{adapter}"


def test_hf_missing_model_is_a_one_line_error(tmp_path):
    with pytest.raises(ValueError, match="cannot load model"):
        load_backend(f"hf:{tmp_path / 'no-such-model'}")


def test_oracle_proactive_walks_to_the_informative_view(imported_dir, tmp_path):
    from proactivebench.eval.runner import EvalConfig, run_eval

    summary = run_eval(EvalConfig(str(imported_dir), "baseline:oracle-proactive"), tmp_path / "r.duckdb", progress=False)
    assert summary.acc == 100.0
    # Moves to the reference frame, counted by hand on the sample release: ROD 7 each way round (two episodes),
    # VSOD 1 -> 3 (2 waits), MVP-N 2 rotations, IN-C 4 fixes, QuickDraw 2 strokes, ChangeIt 0 -> 9 is not on the
    # step-4 grid so it walks (wait, wait, then only rewind is new: stop) = 2, COCO: the full image is no state, so
    # every move until none remain: up_left 2 + 2, zoom 3, right 2.
    expected = {"rod": 7, "vsod": 2, "mvpn": 2, "imagenet_c": 4, "quickdraw": 2, "changeit": 2, "coco": (4 + 3 + 2) / 3}
    for source, (count, acc, psr) in summary.per_source.items():
        assert acc == 100.0 and psr == pytest.approx(expected[source]), source
