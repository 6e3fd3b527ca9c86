"""Whether vLLM and LoRAX can serve an adapter as trained: its rank, target
modules, modules_to_save, base architecture and dtype, checked against each
server's published LoRA limits when the artifact is recorded. Pure: no I/O.

The one table of those limits. Sources (read 2026-12):
- vLLM, ``vllm/config/lora.py`` (https://docs.vllm.ai/en/v0.11.0/api/vllm/config/lora.html):
  ``max_lora_rank: int = 16``; the CLI accepts ``--max-lora-rank`` of 8, 16, 32,
  64, 128 or 256; ``lora_dtype`` is "auto" (the base model's), "float16" or
  "bfloat16". vLLM's LoRA layers replace the attention and MLP projections of
  its supported models (Llama, Mistral, Qwen2: q/k/v/o and gate/up/down);
  ``modules_to_save`` (fully trained copies of modules, embeddings or the head)
  is refused when an adapter is loaded.
- LoRAX, its README (https://raw.githubusercontent.com/predibase/lorax/main/README.md):
  base models Llama (CodeLlama), Mistral (Zephyr), Mixtral, Gemma, Gemma2,
  Phi, Qwen2/Qwen, ... loaded in fp16 (or quantised); PEFT LoRA adapters of
  any linear layer; other architectures "on a best effort basis".
"""

from __future__ import annotations

from collections.abc import Mapping

PASS, WARNING, FAIL = "pass", "warning", "fail"
VLLM, LORAX = "vllm", "lorax"

VLLM_DEFAULT_MAX_RANK = 16
VLLM_MAX_RANK_CHOICES = (8, 16, 32, 64, 128, 256)

_PROJECTIONS = frozenset({"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"})
# Architecture (config.json "architectures") -> the modules vLLM applies LoRA to.
VLLM_TARGET_MODULES: dict[str, frozenset[str]] = {
    "LlamaForCausalLM": _PROJECTIONS,
    "MistralForCausalLM": _PROJECTIONS,
    "Qwen2ForCausalLM": _PROJECTIONS,
}
LORAX_ARCHITECTURES = frozenset({
    "LlamaForCausalLM", "MistralForCausalLM", "MixtralForCausalLM", "GemmaForCausalLM", "Gemma2ForCausalLM",
    "PhiForCausalLM", "Phi3ForCausalLM", "Qwen2ForCausalLM", "QWenLMHeadModel",
})
# Modules LoRA may not adapt in LoRAX: it adapts linear layers, not embeddings.
_EMBEDDINGS = frozenset({"embed_tokens", "wte", "word_embeddings"})
_HALF = ("float16", "bfloat16")


def check(server: str, status: str, what: str, reason: str) -> dict:
    return {"server": server, "status": status, "check": what, "reason": reason}


def serving_checks(adapter: Mapping | None) -> list[dict]:
    """Every check of ``adapter`` (the run summary's ADAPTER facts) for vLLM and
    LoRAX; one warning per server when the trainer recorded no facts."""
    if not adapter:
        why = "the trainer recorded no adapter facts (rank, target modules, architecture, dtype) for this model"
        return [check(VLLM, WARNING, "adapter", why), check(LORAX, WARNING, "adapter", why)]
    rank = int(adapter.get("rank") or 0)
    modules = sorted(adapter.get("target_modules") or [])
    saved = sorted(adapter.get("modules_to_save") or [])
    architecture = str(adapter.get("architecture") or "")
    dtype = str(adapter.get("dtype") or "")
    return [
        vllm_rank(rank),
        vllm_target_modules(architecture, modules),
        modules_to_save(VLLM, saved),
        vllm_architecture(architecture),
        vllm_dtype(dtype),
        lorax_target_modules(modules),
        modules_to_save(LORAX, saved),
        lorax_architecture(architecture),
        lorax_dtype(dtype),
    ]


def vllm_rank(rank: int) -> dict:
    """Pass up to the default max rank; above it a warning naming the --max-lora-rank to start with; above 256 fail."""
    if rank <= VLLM_DEFAULT_MAX_RANK:
        return check(VLLM, PASS, "rank", f"rank {rank} is within vLLM's default --max-lora-rank {VLLM_DEFAULT_MAX_RANK}")
    needed = next((choice for choice in VLLM_MAX_RANK_CHOICES if choice >= rank), None)
    if needed is None:
        return check(VLLM, FAIL, "rank", f"rank {rank} is above {VLLM_MAX_RANK_CHOICES[-1]}, the largest "
                                         "--max-lora-rank vLLM accepts; train with a lower rank")
    return check(VLLM, WARNING, "rank", f"rank {rank} is above vLLM's default --max-lora-rank "
                                        f"{VLLM_DEFAULT_MAX_RANK}: start the server with --max-lora-rank {needed}")


def vllm_target_modules(architecture: str, modules: list[str]) -> dict:
    supported = VLLM_TARGET_MODULES.get(architecture)
    if supported is None:
        return check(VLLM, WARNING, "target_modules",
                     f"no published LoRA module list for {architecture or 'an unknown architecture'}")
    unsupported = [m for m in modules if m not in supported]
    if unsupported:
        return check(VLLM, FAIL, "target_modules", f"vLLM applies LoRA to {', '.join(sorted(supported))} of "
                                                   f"{architecture}, not {', '.join(unsupported)}")
    return check(VLLM, PASS, "target_modules", f"{', '.join(modules)} are LoRA modules vLLM supports")


def modules_to_save(server: str, saved: list[str]) -> dict:
    """Fully trained module copies (embeddings, the head) are not LoRA weights: vLLM refuses them, LoRAX too."""
    if saved:
        return check(server, FAIL, "modules_to_save", f"the adapter saves whole modules ({', '.join(saved)}), "
                                                      "which the server cannot load; train without modules_to_save")
    return check(server, PASS, "modules_to_save", "LoRA weights only")


def vllm_architecture(architecture: str) -> dict:
    if architecture in VLLM_TARGET_MODULES:
        return check(VLLM, PASS, "architecture", f"vLLM serves LoRA adapters of {architecture}")
    return check(VLLM, WARNING, "architecture", f"{architecture or 'the base architecture'} is not among the "
                                                "checked LoRA architectures (Llama, Mistral, Qwen2); check vLLM's list")


def vllm_dtype(dtype: str) -> dict:
    if dtype in _HALF:
        return check(VLLM, PASS, "dtype", f"{dtype} is a vLLM lora_dtype")
    if dtype == "float32":
        return check(VLLM, WARNING, "dtype", "float32 weights are cast to the server's lora_dtype (the base "
                                             "model's, float16 or bfloat16) when loaded")
    return check(VLLM, FAIL, "dtype", f"{dtype or 'an unknown dtype'} is not a dtype vLLM loads LoRA weights in")


def lorax_target_modules(modules: list[str]) -> dict:
    embeddings = [m for m in modules if m in _EMBEDDINGS]
    if embeddings:
        return check(LORAX, FAIL, "target_modules", f"LoRAX adapts linear layers, not embeddings ({', '.join(embeddings)})")
    return check(LORAX, PASS, "target_modules", f"{', '.join(modules)} are linear layers LoRAX adapts")


def lorax_architecture(architecture: str) -> dict:
    if architecture in LORAX_ARCHITECTURES:
        return check(LORAX, PASS, "architecture", f"LoRAX supports {architecture} base models")
    return check(LORAX, WARNING, "architecture",
                 f"{architecture or 'the base architecture'} is served by LoRAX on a best-effort basis only")


def lorax_dtype(dtype: str) -> dict:
    if dtype in _HALF:
        return check(LORAX, PASS, "dtype", f"{dtype} weights load as they are")
    if dtype == "float32":
        return check(LORAX, WARNING, "dtype", "float32 weights are cast to the base model's fp16 when loaded")
    return check(LORAX, FAIL, "dtype", f"{dtype or 'an unknown dtype'} is not a dtype LoRAX loads LoRA weights in")
