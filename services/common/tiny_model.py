"""Build the platform's tiny offline base model: a Llama-architecture causal LM
with its own byte-level BPE tokenizer and a ChatML chat template.

The machines that build and test BrightRun cannot reach a model hub, so the
embedded default, the demo and the tests train on this model. It is a real
``transformers`` model directory (config, safetensors weights, tokenizer files)
and loads through the same code path as any local model.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from services.common.chat_template import DEFAULT_CHAT_TEMPLATE

# The platform's default template, after the model's begin-of-text token.
CHAT_TEMPLATE = "{{ bos_token }}" + DEFAULT_CHAT_TEMPLATE

SPECIAL_TOKENS = ["<|pad|>", "<|begin_of_text|>", "<|end_of_text|>", "<|im_start|>", "<|im_end|>"]
TINY_MODEL_NAME = "brightrun/tiny-llama"
_WORDS = (
    "the a model data train learn loss token adapter rank alpha user assistant system "
    "question answer hello world what is how do you make reverse upper lower number "
    "one two three four five six seven eight nine ten please thanks yes no because "
    "platform dataset job gpu cost fine tune lora weight layer attention python code"
).split()


def _corpus(n_lines: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    lines = []
    for _ in range(n_lines):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(3, 16))]
        lines.append(" ".join(words) + rng.choice([".", "?", "!", ""]))
    # Cover every printable ASCII character so no text falls back to raw bytes
    # only because the sample corpus never showed it.
    lines.append("".join(chr(c) for c in range(32, 127)))
    return lines


def build_tiny_model(out_dir: str | Path, *, vocab_size: int = 2048, seed: int = 0) -> Path:
    """Write a tiny Llama model with tokenizer into ``out_dir`` and return it.

    Deterministic for a given ``seed``. Idempotent: an existing complete model
    directory is left as it is.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = Path(out_dir)
    marker = out / "brightrun_model.json"
    if marker.exists():
        return out
    out.mkdir(parents=True, exist_ok=True)

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(4000, seed), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|begin_of_text|>",
        eos_token="<|im_end|>",
        pad_token="<|pad|>",
        additional_special_tokens=["<|im_start|>", "<|end_of_text|>"],
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.model_max_length = 4096
    fast.save_pretrained(out)

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=64,
        intermediate_size=172,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(out, safe_serialization=True)
    marker.write_text(json.dumps({"name": TINY_MODEL_NAME, "seed": seed}) + "\n")
    return out


if __name__ == "__main__":  # python -m services.common.tiny_model OUT_DIR
    import sys

    build_tiny_model(sys.argv[1])
