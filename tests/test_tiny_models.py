"""The tiny test checkpoints: every attention head is at least 32 wide (serving engines' CPU kernels refuse
narrower ones, e.g. vLLM's CPU attention), and the checkpoints still load and generate."""

import pytest

from proactivebench.eval.tiny_models import HEAD_DIM

MIN_HEAD_DIM = 32


def _head_dims(model) -> dict[str, int]:
    """{module name: head width} for every attention module, read off its projection weights."""
    dims = {}
    for name, module in model.named_modules():
        heads = getattr(module, "num_heads", None) or getattr(getattr(module, "config", None), "num_attention_heads", None)
        width = getattr(module, "head_dim", None)
        if width is None or not heads:
            continue
        # The query projection (fused qkv in Qwen's vision tower) holds heads * head_dim outputs per part.
        projection = getattr(module, "q_proj", None) or getattr(module, "qkv", None)
        if projection is not None:
            parts = 3 if hasattr(module, "qkv") and not hasattr(module, "q_proj") else 1
            assert projection.out_features == parts * heads * width, name
        dims[name] = width
    return dims


@pytest.mark.parametrize("fixture", ["tiny_llava_dir", "tiny_qwen_dir"])
def test_every_attention_head_is_at_least_32_wide(fixture, request, one_torch_thread):
    import torch
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(request.getfixturevalue(fixture))
    dims = _head_dims(model)
    towers = {name.split(".")[1] if name.startswith("model.") else name.split(".")[0] for name in dims}
    assert {"vision_tower", "language_model"} <= towers or {"visual", "language_model"} <= towers, sorted(dims)
    assert min(dims.values()) >= MIN_HEAD_DIM == HEAD_DIM, dims
    # Still a working checkpoint: a forward pass over text gives logits over the vocabulary.
    ids = torch.tensor([[1, 2, 3]])
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    assert logits.shape[-1] == model.config.get_text_config().vocab_size
