"""config.json sizes of well-known hub models, so a job naming one gets a
memory figure without downloading anything (job_svc never reaches the hub
for a config). Keys are lower-case hub ids."""

from __future__ import annotations

_LLAMA_2_7B = {"hidden_size": 4096, "num_hidden_layers": 32, "intermediate_size": 11008, "vocab_size": 32000,
               "num_attention_heads": 32, "num_key_value_heads": 32}
_LLAMA_2_13B = {"hidden_size": 5120, "num_hidden_layers": 40, "intermediate_size": 13824, "vocab_size": 32000,
                "num_attention_heads": 40, "num_key_value_heads": 40}
_LLAMA_2_70B = {"hidden_size": 8192, "num_hidden_layers": 80, "intermediate_size": 28672, "vocab_size": 32000,
                "num_attention_heads": 64, "num_key_value_heads": 8}
_LLAMA_3_8B = {"hidden_size": 4096, "num_hidden_layers": 32, "intermediate_size": 14336, "vocab_size": 128256,
               "num_attention_heads": 32, "num_key_value_heads": 8}
_LLAMA_3_70B = {"hidden_size": 8192, "num_hidden_layers": 80, "intermediate_size": 28672, "vocab_size": 128256,
                "num_attention_heads": 64, "num_key_value_heads": 8}
_MISTRAL_7B = {"hidden_size": 4096, "num_hidden_layers": 32, "intermediate_size": 14336, "vocab_size": 32000,
               "num_attention_heads": 32, "num_key_value_heads": 8}

KNOWN_CONFIGS: dict[str, dict] = {
    "meta-llama/llama-2-7b-hf": _LLAMA_2_7B,
    "meta-llama/llama-2-7b-chat-hf": _LLAMA_2_7B,
    "meta-llama/llama-2-13b-hf": _LLAMA_2_13B,
    "meta-llama/llama-2-13b-chat-hf": _LLAMA_2_13B,
    "meta-llama/llama-2-70b-hf": _LLAMA_2_70B,
    "meta-llama/llama-2-70b-chat-hf": _LLAMA_2_70B,
    "meta-llama/meta-llama-3-8b": _LLAMA_3_8B,
    "meta-llama/meta-llama-3-8b-instruct": _LLAMA_3_8B,
    "meta-llama/llama-3.1-8b": _LLAMA_3_8B,
    "meta-llama/llama-3.1-8b-instruct": _LLAMA_3_8B,
    "meta-llama/meta-llama-3-70b": _LLAMA_3_70B,
    "meta-llama/meta-llama-3-70b-instruct": _LLAMA_3_70B,
    "meta-llama/llama-3.1-70b": _LLAMA_3_70B,
    "meta-llama/llama-3.1-70b-instruct": _LLAMA_3_70B,
    "mistralai/mistral-7b-v0.1": _MISTRAL_7B,
    "mistralai/mistral-7b-instruct-v0.2": _MISTRAL_7B,
}
