"""`hf:<id or dir>[+<adapter dir>]`: any transformers image-text-to-text model (or a text-only causal LM, e.g. a
judge) through its processor's chat template, batched with left padding, greedy unless told otherwise.

Device and dtype are chosen automatically (CUDA → bf16 where supported, spread with device_map="auto";
otherwise fp32 on the CPU or MPS) and can be forced. `base+adapter` loads a PEFT LoRA adapter on the base and
merges it, so it generates as fast as the base; an adapter folder alone works too (its config names the base).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from proactivebench.store import one_line

from .base import Backend, Request, check_option_ranges, register_backend
from .options import cli_flag

log = logging.getLogger(__name__)

DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass
class HFOptions:
    max_new_tokens: int = field(default=50, metadata=cli_flag("generation budget per turn (default: the paper's 50)"))
    do_sample: bool = False
    temperature: float | None = field(default=None, metadata=cli_flag("sample at this temperature (default: greedy)"))
    top_p: float | None = field(default=None, metadata=cli_flag("nucleus sampling (with --temperature)"))
    seed: int = 0
    device: str = field(default="auto", metadata=cli_flag("auto (default), cpu, cuda, cuda:N, mps"))
    dtype: str = field(default="auto", metadata=cli_flag("default auto", choices=DTYPES))
    attn_implementation: str | None = None
    chat_template_kwargs: dict = field(default_factory=dict)  # e.g. {"enable_thinking": True} for a judge
    trust_remote_code: bool = False  # only when the user asks

    def __post_init__(self):
        check_option_ranges(self)


def resolve_device(device: str) -> str:
    import torch

    if device != "auto":
        try:
            torch.device(device)
        except RuntimeError:
            raise ValueError(f"--device {device!r}: not a torch device; expected auto, cpu, cuda, cuda:N or mps") from None
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def resolve_dtype(dtype: str, device: str):
    import torch

    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
    if dtype != "auto":
        return getattr(torch, dtype)
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32  # CPU/MPS: exact and batch-invariant enough to compare runs


def split_target(target: str) -> tuple[str, str | None]:
    """`base+adapter` → (base, adapter); an adapter folder alone → (its base, folder); else (target, None)."""
    if "+" in target and not Path(target).exists():
        base, adapter = target.rsplit("+", 1)
        return base, adapter
    config = Path(target) / "adapter_config.json"
    if config.is_file():
        base = json.loads(config.read_text()).get("base_model_name_or_path")
        if not base:
            raise ValueError(f"{config}: no base_model_name_or_path; use hf:<base>+{target}")
        return base, target
    return target, None


def check_local_or_repo(target: str) -> None:
    """A target that cannot be a Hub repo id (`./x`, `/x`, `a/b/c`) is a folder: say it is missing, not that the
    repo id is malformed."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if Path(target).expanduser().exists():
        return
    try:
        validate_repo_id(target)
    except HFValidationError:
        raise ValueError(f"cannot load model {target!r}: no such model folder") from None


def _has_processor_files(folder: str) -> bool:
    names = ("processor_config.json", "preprocessor_config.json", "tokenizer_config.json", "tokenizer.json")
    return Path(folder).is_dir() and any((Path(folder) / n).is_file() for n in names)


class HFBackend(Backend):
    kind = "hf"
    default_batch_size = 8

    def __init__(self, target: str, options: HFOptions | None = None):
        super().__init__(f"hf:{target}")
        self.options = options or HFOptions()
        self.base, self.adapter = split_target(target)
        self._load()

    def _load(self) -> None:
        import torch
        import transformers
        from transformers import AutoConfig, AutoProcessor

        opts = self.options
        self.device = resolve_device(opts.device)
        self.dtype = resolve_dtype(opts.dtype, self.device)
        remote = {"trust_remote_code": opts.trust_remote_code}
        check_local_or_repo(self.base)
        try:
            config = AutoConfig.from_pretrained(self.base, **remote)
        except OSError as error:  # not a local folder, not on the Hub (or offline)
            raise ValueError(f"cannot load model {self.base!r}: {str(error).strip().splitlines()[0]}") from None
        # Image-text-to-text where the architecture has one; a text-only causal LM otherwise (judges).
        vision = type(config) in transformers.MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING
        model_class = transformers.AutoModelForImageTextToText if vision else transformers.AutoModelForCausalLM
        kwargs = {"dtype": self.dtype, **remote}
        if opts.attn_implementation:
            kwargs["attn_implementation"] = opts.attn_implementation
        if self.device == "cuda":
            kwargs["device_map"] = "auto"
        try:
            model = model_class.from_pretrained(self.base, **kwargs)
        except (OSError, ValueError, RuntimeError, KeyError) as error:
            # truncated or foreign weights (safetensors' error is neither OSError nor ValueError): one line
            raise ValueError(f"cannot load model {self.base!r}: {type(error).__name__}: {one_line(error)}") from None
        except Exception as error:
            if type(error).__module__.startswith("safetensors"):
                raise ValueError(f"cannot load model {self.base!r}: weights unreadable ({one_line(error)})") from None
            raise
        if self.adapter:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, self.adapter).merge_and_unload()
        if "device_map" not in kwargs:
            model = model.to(self.device)
        self.model = model.eval()
        source = self.adapter if self.adapter and _has_processor_files(self.adapter) else self.base
        self.processor = AutoProcessor.from_pretrained(source, **remote)
        self.tokenizer = getattr(self.processor, "tokenizer", self.processor)
        self.tokenizer.padding_side = "left"  # decoder-only batched generation
        self.is_vision = vision and hasattr(self.processor, "image_processor")
        generation = self.model.generation_config
        self.pad_token_id = next(
            (t for t in (generation.pad_token_id, self.tokenizer.pad_token_id, self.tokenizer.eos_token_id) if t is not None),
            None,
        )
        torch.manual_seed(opts.seed)
        log.info("loaded %s on %s (%s)", self.spec, self.device, str(self.dtype).replace("torch.", ""))

    @property
    def model_name(self) -> str:
        return f"{self.base}+{self.adapter}" if self.adapter else self.base

    def config(self) -> dict:
        options = asdict(self.options)
        options.update(device=self.device, dtype=str(self.dtype).replace("torch.", ""))
        return {**super().config(), "base": self.base, "adapter": self.adapter, **options}

    def _chat(self, request: Request) -> str:
        messages = request.messages
        if self.is_vision:  # processor templates iterate content lists
            messages = [
                {**m, "content": [{"type": "text", "text": m["content"]}]} if isinstance(m["content"], str) else m
                for m in messages
            ]
        return self.processor.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False, **self.options.chat_template_kwargs
        )

    def _generate(self, requests: Sequence[Request]) -> list[str]:
        import torch

        texts = [self._chat(r) for r in requests]
        images = [r.load_images() for r in requests]
        if any(images):
            if not self.is_vision:
                raise ValueError(f"{self.spec} is a text-only model but the request has images")
            # Nested per request: what multi-image processors (SmolVLM, Idefics) expect; LLaVA/Qwen flatten it.
            inputs = self.processor(images=images, text=texts, padding=True, return_tensors="pt")
        elif self.is_vision:
            inputs = self.processor(text=texts, padding=True, return_tensors="pt")
        else:
            inputs = self.tokenizer(texts, padding=True, return_tensors="pt", add_special_tokens=False)
        inputs = inputs.to(self.model.device)
        for name, value in inputs.items():  # pixel tensors follow the model's dtype; ids stay integers
            if torch.is_floating_point(value):
                inputs[name] = value.to(self.model.dtype)
        opts = self.options
        sampling = {"do_sample": opts.do_sample}
        if opts.do_sample:
            sampling.update({k: v for k, v in (("temperature", opts.temperature), ("top_p", opts.top_p)) if v is not None})
        with torch.inference_mode():
            output = self.model.generate(
                **inputs, max_new_tokens=opts.max_new_tokens, pad_token_id=self.pad_token_id, **sampling
            )
        new_tokens = output[:, inputs["input_ids"].shape[1]:]
        return self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True, clean_up_tokenization_spaces=True)

    def close(self) -> None:
        self.model = None


@register_backend("hf")
def make_hf(target: str, **options) -> HFBackend:
    return HFBackend(target, HFOptions(**options))


make_hf.OPTION_CLASS = HFOptions
make_hf.OPTIONS = tuple(HFOptions.__dataclass_fields__)
