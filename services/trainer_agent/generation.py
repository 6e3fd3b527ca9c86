"""The generation core: answer conversations with a LoRA model, and with its
base model alone (the adapter disabled through PEFT's ``disable_adapter()``,
so one loaded model gives both answers).

Prompts are rendered as training renders conversations
(``conversations.prompt_ids``), so the adapter is asked in the format it
learned. Greedy at temperature 0; sampled above it, from ``seed`` when given,
so that the same request gives the same text. Only the new tokens are
decoded. Used by the generation worker (POST /api/models/{id}/generate) and by
the training worker for the smoke samples stored with a new model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from services.common.chat_template import chat_template_of
from services.common.sampling import shown_prompt
from services.trainer_agent.conversations import prompt_ids
from services.trainer_agent.model import attention_implementation, load_base_model, load_tokenizer


@dataclass(frozen=True)
class SamplingSettings:
    max_new_tokens: int
    temperature: float = 0.0  # 0: greedy
    seed: int | None = None


def load_for_generation(base_model: str, adapter_dir: Path, device: torch.device):
    """(model, tokenizer): ``base_model`` with the PEFT adapter in ``adapter_dir``, for inference on ``device``.

    Loaded as training loads them (``model.load_tokenizer``, ``model.load_base_model``: a GGUF file too);
    the tokenizer carries the chat template training used. Raises OSError when either cannot be read,
    ConfigError when a GGUF file is not usable.
    """
    from peft import PeftModel

    tokenizer = load_tokenizer(base_model)
    tokenizer.chat_template = chat_template_of(tokenizer)
    dtype = torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    base = load_base_model(base_model, dtype=dtype, attn_implementation=attention_implementation(device, dtype))
    model = PeftModel.from_pretrained(base, str(adapter_dir)).to(device)
    model.eval()
    return model, tokenizer


@torch.no_grad()
def generate(model, tokenizer, conversations: list[list[dict]], sampling: SamplingSettings,
             *, include_base: bool = False) -> list[dict]:
    """One ``{completion[, base_completion]}`` per conversation of ``[{role, content}]``, in order.

    ``model`` is a PeftModel; ``base_completion`` (with ``include_base``) is
    what it writes with its adapter disabled, from the same seed.
    """
    was_training = model.training
    model.eval()
    try:
        results = []
        for messages in conversations:
            ids = prompt_ids(tokenizer, messages)
            result = {"completion": _complete(model, tokenizer, ids, sampling)}
            if include_base:
                with model.disable_adapter():
                    result["base_completion"] = _complete(model, tokenizer, ids, sampling)
            results.append(result)
        return results
    finally:
        model.train(was_training)


def smoke_samples(model, tokenizer, conversations: list[list[dict]], *, count: int, max_new_tokens: int) -> list[dict]:
    """Up to ``count`` of ``conversations`` (held-out ones) answered greedily with and without the adapter:
    each ``{prompt, expected, completion, base_completion}``, asked with the messages before the last
    assistant message (the one ``expected`` quotes). Conversations without a user message before one are skipped."""
    asked, expected = [], []
    for messages in conversations:
        last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
        if last is None or not any(m["role"] == "user" for m in messages[:last]):
            continue
        asked.append(messages[:last])
        expected.append(messages[last]["content"])
        if len(asked) == count:
            break
    answers = generate(model, tokenizer, asked, SamplingSettings(max_new_tokens), include_base=True)
    return [
        {"prompt": shown_prompt(messages), "expected": reference, **answer}
        for messages, reference, answer in zip(asked, expected, answers)
    ]


def _complete(model, tokenizer, ids: list[int], sampling: SamplingSettings) -> str:
    device = next(model.parameters()).device
    inputs = torch.tensor([ids], device=device)
    options = {"do_sample": False}
    if sampling.temperature > 0:
        options = {"do_sample": True, "temperature": sampling.temperature, "top_k": 0, "top_p": 1.0}
        if sampling.seed is not None:
            torch.manual_seed(sampling.seed)
    output = model.generate(
        input_ids=inputs,
        attention_mask=torch.ones_like(inputs),
        max_new_tokens=sampling.max_new_tokens,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **options,
    )
    return tokenizer.decode(output[0, len(ids):], skip_special_tokens=True)
