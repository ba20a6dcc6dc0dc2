"""A tiny random-weight LLaVA that mostly answers one letter: episodes where that letter is the proactive option
run several turns, which is what multi-turn GRPO tests and benchmarks need from a model with random weights.

The transformer layers' output projections are damped, so the last hidden state is close to the normalised
embedding of the current token: the model becomes (nearly) a bigram table. The LM head then gets two rows
nudged: after the generation prompt's last token the letter, after the letter the end-of-turn token. Sampling
at temperature 1 still leaves a few other answers, so rollouts differ.
"""

from __future__ import annotations

from pathlib import Path

from .tiny_models import build_tiny_llava

DAMPING = 0.05  # attention/MLP outputs scaled by this: the residual stream stays mostly the token embedding
STRENGTH = 1.0  # added to the LM-head row along the unit context embedding: ≈ +8 logits at hidden size 64


def build_letter_policy(out: str | Path, letter: str = "B") -> Path:
    """A tiny LLaVA checkpoint in `out` that answers `letter` then ends its turn, most of the time."""
    import torch
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    out = build_tiny_llava(out)
    model = LlavaForConditionalGeneration.from_pretrained(out)
    processor = AutoProcessor.from_pretrained(out)
    tokenizer = processor.tokenizer
    prompt = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "text", "text": "?"}]}], add_generation_prompt=True, tokenize=False
    )
    after_prompt = tokenizer(prompt, add_special_tokens=False)["input_ids"][-1]
    letter_ids = tokenizer(letter, add_special_tokens=False)["input_ids"]
    if len(letter_ids) != 1:
        raise ValueError(f"{letter!r} is not one token of the tiny tokenizer")
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    language = model.model.language_model
    with torch.no_grad():
        for layer in language.layers:
            layer.self_attn.o_proj.weight.mul_(DAMPING)
            layer.mlp.down_proj.weight.mul_(DAMPING)
        embeddings = language.embed_tokens.weight
        head = model.lm_head.weight
        if head.data_ptr() == embeddings.data_ptr():
            raise ValueError("the tiny model ties its LM head to the embeddings; cannot bias one without the other")
        for context, target in ((after_prompt, letter_ids[0]), (letter_ids[0], end)):
            direction = embeddings[context] / embeddings[context].norm()
            head[target] += STRENGTH * direction
    model.save_pretrained(out)
    return out
