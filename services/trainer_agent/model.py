"""The base model with its LoRA adapter, loaded for speed on the device at hand:
bf16 where the GPU computes in it, flash attention 2 where installed (sdpa
otherwise), non-reentrant activation checkpointing, 4-bit NF4 weights for
QLoRA and Liger's fused kernels on CUDA. A base model given as a GGUF file
loads too, de-quantized (see services.common.gguf_import)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from services.common.gguf_import import GgufError, check_gguf, gguf_location, pretrained_source
from services.trainer_agent.training_config import ConfigError, TrainingConfig


def unavailable_here(cfg: TrainingConfig, device: torch.device) -> list[str]:
    """The options of ``cfg`` this machine cannot honour, each as ``field: why``."""
    problems = []
    if cfg.quantization == "nf4":
        problems += _needs_cuda_and(device, "bitsandbytes", "quantization: nf4 weights", "train without quantization")
    if cfg.fused_kernels:
        problems += _needs_cuda_and(device, "liger_kernel", "fused_kernels: Liger's kernels", "train without them")
    if cfg.quantization == "nf4" and gguf_location(cfg.base_model):
        problems.append("quantization: nf4 needs a transformers model directory, not a GGUF file; convert it with "
                        "python -m services.common.gguf_import convert FILE.gguf OUT_DIR, or train without quantization")
    return problems


def _needs_cuda_and(device: torch.device, package: str, what: str, instead: str) -> list[str]:
    if device.type != "cuda":
        return [f"{what} need a CUDA GPU; {instead} on this machine"]
    if importlib.util.find_spec(package) is None:
        return [f"{what} need the {package} package, which this trainer lacks; {instead}"]
    return []


def attention_implementation(device: torch.device, dtype: torch.dtype) -> str:
    """flash_attention_2 on a GPU with the flash-attn package and half precision, sdpa otherwise.

    Both find the conversations of a packed row from its position ids (see
    batching), flash attention only in a batch of one row (packs_one_row_only)."""
    flash = device.type == "cuda" and dtype != torch.float32 and importlib.util.find_spec("flash_attn") is not None
    return "flash_attention_2" if flash else "sdpa"


def packs_one_row_only(model) -> bool:
    """True when the model's attention finds packed conversations only in a
    batch of one row: flash attention 2, whose varlen kernels take one flat
    sequence. (sdpa and eager take them from any number of rows.)"""
    return model.config._attn_implementation == "flash_attention_2"


def load_tokenizer(base_model: str):
    """The base model's tokenizer, from a directory, a hub id or a GGUF file.

    Raises OSError when it cannot be read, ConfigError when a GGUF file is not usable.
    """
    from transformers import AutoTokenizer

    source, options = pretrained_source(base_model)
    with _gguf_errors(source, options):
        return AutoTokenizer.from_pretrained(source, **options)


def load_base_model(base_model: str, **options):
    """The causal LM ``base_model`` names, with ``from_pretrained``'s ``options``; a GGUF
    file de-quantized into plain weights (LoRA trains on them like on any model's).

    Raises OSError when the model cannot be read, ConfigError when a GGUF file is not usable.
    """
    from transformers import AutoModelForCausalLM, GgufConfig

    source, gguf = pretrained_source(base_model)
    if gguf:
        options = {**options, **gguf, "quantization_config": GgufConfig(dequantize=True)}
    with _gguf_errors(source, gguf):
        model = AutoModelForCausalLM.from_pretrained(source, **options)
    if gguf and hasattr(model.config, "quantization_config"):
        del model.config.quantization_config  # plain weights now: saved and reloaded as any model
    return model


@contextmanager
def _gguf_errors(source: str, gguf: dict) -> Iterator[None]:
    """Raises ConfigError naming base_model (the user's to fix, never retried) when the GGUF file
    ``gguf`` names in ``source`` is not usable, or transformers fails to load it; other models pass."""
    if not gguf:
        yield
        return
    try:
        check_gguf(Path(source) / gguf["gguf_file"])
    except GgufError as exc:
        raise ConfigError([f"base_model: {exc}"]) from None
    try:
        yield
    except (ValueError, KeyError, OSError, RuntimeError) as exc:
        raise ConfigError([
            f"base_model: {gguf['gguf_file']!r} is a GGUF file transformers cannot load ({exc}); give a GGUF "
            "file of an architecture it reads (llama, mistral, qwen2, ...) or a model directory"
        ]) from exc


def load_lora_model(cfg: TrainingConfig, device: torch.device):
    """The base model of ``cfg`` with its LoRA adapter on ``device``; only the
    adapter's parameters are trainable.

    Callers check ``unavailable_here`` first. Raises OSError when the model cannot be read,
    ConfigError when it is a GGUF file that cannot be used.
    """
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import BitsAndBytesConfig

    # bf16 halves memory where the GPU computes in it; the CPU trains in fp32.
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    dtype = torch.bfloat16 if bf16 else torch.float32
    options = {"dtype": dtype, "attn_implementation": attention_implementation(device, dtype)}
    quantized = cfg.quantization == "nf4"
    if quantized:
        options["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=dtype,
            bnb_4bit_use_double_quant=True,
        )
        # Placed on the GPU while it loads: a 4-bit model cannot be moved after.
        options["device_map"] = {"": torch.cuda.current_device()}
    base = load_base_model(cfg.base_model, **options)
    if cfg.fused_kernels:
        from liger_kernel.transformers import _apply_liger_kernel_to_instance

        # RMSNorm, RoPE and SwiGLU; not the fused cross-entropy, as the recipe
        # computes its loss from the logits itself, per packed conversation.
        _apply_liger_kernel_to_instance(model=base, cross_entropy=False, fused_linear_cross_entropy=False)
    # Memory is what a GPU runs short of; on the CPU recomputing only costs time.
    checkpointing = device.type == "cuda" if cfg.gradient_checkpointing is None else cfg.gradient_checkpointing
    # Non-reentrant: it needs no input that requires grad, works with frozen
    # layers and keyword arguments, and replays dropout's random draws exactly.
    non_reentrant = {"use_reentrant": False}
    if quantized:
        base = prepare_model_for_kbit_training(
            base, use_gradient_checkpointing=checkpointing, gradient_checkpointing_kwargs=non_reentrant
        )
    elif checkpointing:
        base.activation_checkpointing_enable(activation_checkpointing_kwargs=non_reentrant)
    lora = LoraConfig(
        r=cfg.rank,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        # "all-linear": every attention and MLP projection of the architecture, never the output head.
        target_modules=list(cfg.target_modules) or "all-linear",
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(base, lora)
    return model if quantized else model.to(device)
