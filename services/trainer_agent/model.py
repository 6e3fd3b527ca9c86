"""The base model with its LoRA adapter, loaded for speed on the device at hand:
bf16 where the GPU computes in it, flash attention 2 where installed (sdpa
otherwise), non-reentrant activation checkpointing, and 4-bit NF4 weights for
QLoRA on CUDA."""

from __future__ import annotations

import importlib.util

import torch


def nf4_unavailable(device: torch.device) -> str | None:
    """Why 4-bit NF4 weights cannot be loaded here; None when they can."""
    if device.type != "cuda":
        return "nf4 needs a CUDA GPU; train without quantization on this machine"
    if importlib.util.find_spec("bitsandbytes") is None:
        return "nf4 needs the bitsandbytes package, which this trainer lacks; train without quantization"
    return None


def attention_implementation(device: torch.device, dtype: torch.dtype) -> str:
    """flash_attention_2 on a GPU with the flash-attn package and half precision, sdpa otherwise.

    Both find the conversations of a packed row from its position ids (see batching)."""
    flash = device.type == "cuda" and dtype != torch.float32 and importlib.util.find_spec("flash_attn") is not None
    return "flash_attention_2" if flash else "sdpa"


def load_lora_model(
    base_model: str,
    device: torch.device,
    lora_config,
    *,
    checkpointing: bool,
    quantization: str,
):
    """The base model from ``base_model`` with the adapter of ``lora_config`` (a
    peft LoraConfig) on ``device``; only the adapter's parameters are trainable.

    Callers check ``nf4_unavailable`` first. Raises OSError when the model cannot be read.
    """
    from peft import get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    # bf16 halves memory where the GPU computes in it; the CPU trains in fp32.
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    dtype = torch.bfloat16 if bf16 else torch.float32
    options = {"dtype": dtype, "attn_implementation": attention_implementation(device, dtype)}
    if quantization == "nf4":
        options["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=dtype,
            bnb_4bit_use_double_quant=True,
        )
        # A 4-bit model is placed while it loads and cannot be moved after.
        options["device_map"] = {"": device}
    base = AutoModelForCausalLM.from_pretrained(base_model, **options)
    # Non-reentrant: it needs no input that requires grad, works with frozen
    # layers and keyword arguments, and keeps dropout's random draws in step.
    non_reentrant = {"use_reentrant": False}
    if quantization == "nf4":
        base = prepare_model_for_kbit_training(
            base, use_gradient_checkpointing=checkpointing, gradient_checkpointing_kwargs=non_reentrant
        )
    elif checkpointing:
        base.activation_checkpointing_enable(activation_checkpointing_kwargs=non_reentrant)
    model = get_peft_model(base, lora_config)
    return model if quantization == "nf4" else model.to(device)
