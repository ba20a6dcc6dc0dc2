"""Tiny random-weight vision-language models for tests and the demo (docs/architecture.md §7): built from a config in
seconds, saved to a folder that `from_pretrained`, the `hf:` backend and `transformers serve` load like any Hub
checkpoint.

Two architectures, because the paper's roster is mostly Qwen2.5-VL / LLaVA-style:
- `build_tiny_llava(out)`: LlavaForConditionalGeneration (CLIP vision hidden 32, 1 layer + Llama hidden 64,
  2 layers), LlavaProcessor(patch_size=8, "default" strategy, 1 additional token) on 32 px → 16 image tokens.
- `build_tiny_qwen2_5_vl(out)`: Qwen2_5_VLForConditionalGeneration with a Qwen2VL image processor and an
  explicit Qwen2VLVideoProcessor (the processor will not build without one).
Every attention head is HEAD_DIM (32) wide: serving engines' CPU kernels refuse narrower heads (vLLM's CPU
attention takes 32 and up), so the same checkpoints load there too.
Both use a byte-level BPE trained with `tokenizers` on a small corpus, wrapped in PreTrainedTokenizerFast,
and a ChatML chat template.
"""

from __future__ import annotations

from pathlib import Path

SEED = 0
IMAGE_SIZE = 32
HEAD_DIM = 32  # per attention head, in every tower (see the docstring)
VOCAB_SIZE = 400

_CORPUS = [
    "What is the object in the image? Choose from the following options. Options:",
    "A. B. C. D. E. F. G. H. Please only return one of the options without any other words.",
    "Move the red blocks to the left. Move the red blocks to the right. I cannot tell.",
    "Rewind the video. Wait for the occlusion to disappear. Rotate the object. Deblur the image.",
    "Make this drawing more complete. Move the camera up. Move farther from the object. Banana. Bed. Cup.",
    "This is a frame extracted from a video. Answer the following question. Hint: moving the occluding object.",
    "If you cannot answer this question, please tell me what I should do to help you. 0,1,0,1",
]

# ChatML; an image content item becomes the model's image placeholder.
_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}IMAGE_PLACEHOLDER"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _tokenizer(special_tokens: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE, special_tokens=special_tokens, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    backend.train_from_iterator(_CORPUS * 4, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        padding_side="left",  # decoder-only batched generation
        additional_special_tokens=[t for t in special_tokens if t not in ("<|im_end|>", "<|endoftext|>")],
    )


def _finish(model, processor, tokenizer, out: Path) -> Path:
    model.generation_config.eos_token_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.do_sample = False
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def build_tiny_llava(out: str | Path) -> Path:
    """A tiny LLaVA-1.5-style checkpoint in `out` (returned)."""
    import torch
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    specials = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<image>"]
    tokenizer = _tokenizer(specials)
    vision = CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=32 // HEAD_DIM,
        image_size=IMAGE_SIZE, patch_size=8, projection_dim=32,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=64 // HEAD_DIM, num_key_value_heads=64 // HEAD_DIM, max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    config = LlavaConfig(
        vision_config=vision, text_config=text, image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default", vision_feature_layer=-1,
    )
    torch.manual_seed(SEED)
    model = LlavaForConditionalGeneration(config).eval()
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
    )
    processor = LlavaProcessor(
        image_processor=image_processor, tokenizer=tokenizer, patch_size=8,
        vision_feature_select_strategy="default", num_additional_image_tokens=1,
        chat_template=_CHAT_TEMPLATE.replace("IMAGE_PLACEHOLDER", "<image>\n"),
    )
    return _finish(model, processor, tokenizer, Path(out))


def build_tiny_qwen2_5_vl(out: str | Path) -> Path:
    """A tiny Qwen2.5-VL checkpoint in `out` (returned): 32 px → 4x4 patches of 8 → 4 merged image tokens."""
    import torch
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    specials = [
        "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
        "<|video_pad|>",
    ]
    tokenizer = _tokenizer(specials)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in specials}
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer), "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 64 // HEAD_DIM, "num_key_value_heads": 1, "max_position_embeddings": 512,
            # the multimodal rope splits half a head's dimensions over (time, height, width)
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 6, 6]},
            "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        vision_config={
            "depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 32 // HEAD_DIM, "patch_size": 8,
            "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 16, "out_hidden_size": 64,
            "fullatt_block_indexes": [0],
        },
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(SEED)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    pixels = {"min_pixels": IMAGE_SIZE * IMAGE_SIZE, "max_pixels": IMAGE_SIZE * IMAGE_SIZE}
    image_processor = Qwen2VLImageProcessor(patch_size=8, merge_size=2, temporal_patch_size=2, **pixels)
    video_processor = Qwen2VLVideoProcessor(patch_size=8, merge_size=2, temporal_patch_size=2, **pixels)
    processor = Qwen2_5_VLProcessor(
        image_processor=image_processor, tokenizer=tokenizer, video_processor=video_processor,
        chat_template=_CHAT_TEMPLATE.replace("IMAGE_PLACEHOLDER", "<|vision_start|><|image_pad|><|vision_end|>"),
    )
    return _finish(model, processor, tokenizer, Path(out))


BUILDERS = {"llava": build_tiny_llava, "qwen2_5_vl": build_tiny_qwen2_5_vl}
