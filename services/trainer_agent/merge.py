"""``python -m services.trainer_agent.merge``: one merged export, in its own
process (the agent never imports torch): the base model with a LoRA adapter
merged into its weights, written as safetensors shards with the config, the
generation config and the tokenizer, a directory any transformers or vLLM
server loads without PEFT.

An adapter trained with QLoRA (``--quantization nf4``) is merged the way PEFT
documents it: into the base loaded in full or half precision, never into the
4-bit weights, which would round the merged result to 4 bits.

It prints one JSON line on stdout: ``{"type": "completed"}`` or
``{"type": "failed", "reason", "retryable"}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path

import torch

from services.common.lifeline import die_with_parent

# Shards small enough to download and resume one by one.
DEFAULT_MAX_SHARD_SIZE = "2GB"


def merge_dtype(device: torch.device) -> torch.dtype:
    """bf16 where the GPU computes in it (half the memory), fp32 otherwise: the CPU trains and merges in fp32."""
    return torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float32


def merge_adapter(base_model: str, adapter_dir: Path, out_dir: Path, *, max_shard_size: str = DEFAULT_MAX_SHARD_SIZE,
                  device: torch.device | None = None) -> Path:
    """Merge the PEFT adapter in ``adapter_dir`` into ``base_model`` and save the result in ``out_dir``.

    The tokenizer comes from the adapter directory, which holds the one the
    adapter was trained with (its chat template included). Raises OSError when
    the base model or the adapter cannot be read.
    """
    from peft import PeftModel
    from transformers import AutoTokenizer

    from services.trainer_agent.model import load_base_model

    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    # Unquantised whatever the adapter trained on: merge_and_unload adds B·A·scale to each full weight.
    # load_base_model: a GGUF base model is read de-quantised, as training read it.
    base = load_base_model(base_model, dtype=merge_dtype(device)).to(device)
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    out_dir.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out_dir, safe_serialization=True, max_shard_size=max_shard_size)
    AutoTokenizer.from_pretrained(str(adapter_dir)).save_pretrained(out_dir)
    return out_dir


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-model", required=True)
    parser.add_argument("--adapter", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True)
    # How the adapter's base was quantised while training ("nf4": QLoRA); the merge loads it unquantised.
    parser.add_argument("--quantization", default="")
    parser.add_argument("--max-shard-size", default=DEFAULT_MAX_SHARD_SIZE)
    # The agent's pid: the merge ends when that process does.
    parser.add_argument("--agent-pid", type=int)
    args = parser.parse_args()
    die_with_parent(args.agent_pid)
    if args.quantization and args.quantization != "none":
        print(f"the adapter trained on a {args.quantization} base: merging into the unquantised weights",
              file=sys.stderr)
    try:
        merge_adapter(args.base_model, args.adapter, args.output, max_shard_size=args.max_shard_size)
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        # A model or adapter that cannot be read stays so: no retry. Anything else (memory, disk) may pass.
        line = {"type": "failed", "reason": f"{type(exc).__name__}: {exc}", "retryable": not isinstance(exc, OSError)}
        print(json.dumps(line), flush=True)
        return 1
    print(json.dumps({"type": "completed"}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
