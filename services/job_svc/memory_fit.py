"""How much memory one GPU needs to train a job's LoRA adapter, and what to
lower when that is more than the GPU has. Pure: no I/O.

The figure models what the trainer does (services/trainer_agent/model.py and
distributed.py): bf16 base weights, or NF4 for QLoRA with the rest in fp32;
LoRA on every linear layer of the decoder ("all-linear"), its weights, grads
and AdamW states in fp32; a micro-batch of ``batch_size / gpu_count`` rows of
``max_seq_length`` tokens; DeepSpeed ZeRO sharding across GPUs. It is a
planning estimate, held within 25% of published figures by
tests/unit/test_memory_fit.py, not a promise to the byte.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

GIB = 1 << 30
# Bytes per value of the bf16 tensors the trainer computes in.
_BF16 = 2
# NF4 with double quantisation: 4 bits a weight plus about 0.127 bits of scales.
_NF4 = 0.5 + 0.127 / 8
# prepare_model_for_kbit_training casts what stays unquantised (embeddings, head, norms) to fp32.
_FP32 = 4
# An fp32 adapter weight, its fp32 gradient and AdamW's two fp32 moments.
_ADAPTER_BYTES = 4 + 4 + 8
# bf16 values a decoder layer keeps for backward per token, as multiples of
# (hidden, key/value width, intermediate): norm inputs and outputs (norms
# compute in fp32), the dropout copies LoRA makes of each projection's input,
# q/k/v before and after RoPE with GQA's repeated heads, attention output;
# SwiGLU's gate, up, activation and product.
_SAVED_PER_TOKEN = (22, 3, 5.5)
# Logits per token and vocabulary entry: bf16 logits, the fp32 copy the loss
# reads, and its fp32 gradient.
_LOGIT_BYTES = 2 + 4 + 4
# ZeRO-3 gathers a layer's full weights to run it and prefetches the next.
_ZERO3_LIVE_LAYERS = 2
# CUDA context, cuBLAS workspaces and the caching allocator's fragmentation.
_OVERHEAD = 1.0 * GIB


class UnknownArchitecture(ValueError):
    """The model's config lacks a size the estimate needs; the message names it."""


@dataclass(frozen=True)
class ModelShape:
    """The sizes of a decoder-only transformer (Llama, Mistral, Qwen...) that set its memory."""

    hidden_size: int
    num_layers: int
    intermediate_size: int
    vocab_size: int
    num_heads: int
    num_kv_heads: int
    tie_word_embeddings: bool = False

    @classmethod
    def from_config(cls, config: dict) -> ModelShape:
        """From a ``transformers`` config.json as a dict; raises UnknownArchitecture naming a missing size."""
        missing = [key for key in ("hidden_size", "num_hidden_layers", "intermediate_size", "vocab_size",
                                   "num_attention_heads") if not isinstance(config.get(key), int)]
        if missing:
            raise UnknownArchitecture(f"its config.json has no {', '.join(missing)}")
        return cls(
            hidden_size=config["hidden_size"], num_layers=config["num_hidden_layers"],
            intermediate_size=config["intermediate_size"], vocab_size=config["vocab_size"],
            num_heads=config["num_attention_heads"],
            num_kv_heads=config.get("num_key_value_heads") or config["num_attention_heads"],
            tie_word_embeddings=bool(config.get("tie_word_embeddings", False)),
        )

    @property
    def kv_width(self) -> int:
        return self.hidden_size // self.num_heads * self.num_kv_heads

    def linear_layers(self) -> list[tuple[int, int]]:
        """(in, out) of one decoder layer's projections: q, k, v, o, gate, up, down."""
        h, kv, i = self.hidden_size, self.kv_width, self.intermediate_size
        return [(h, h), (h, kv), (h, kv), (h, h), (h, i), (h, i), (i, h)]

    def layer_linear_parameters(self) -> int:
        return sum(a * b for a, b in self.linear_layers())

    def embedding_parameters(self) -> int:
        """Input embeddings and output head; one matrix when tied."""
        return self.vocab_size * self.hidden_size * (1 if self.tie_word_embeddings else 2)

    def parameters(self) -> int:
        norms = (2 * self.num_layers + 1) * self.hidden_size
        return self.num_layers * self.layer_linear_parameters() + self.embedding_parameters() + norms

    def adapter_parameters(self, rank: int) -> int:
        """LoRA's A and B on every projection of every layer."""
        return self.num_layers * rank * sum(a + b for a, b in self.linear_layers())


@dataclass(frozen=True)
class RunShape:
    """The job's settings that set its memory, as the trainer will run them."""

    rank: int
    micro_batch_size: int
    seq_length: int
    gradient_checkpointing: bool
    quantization: str = "none"
    gpu_count: int = 1
    zero_stage: int = 2


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes one GPU needs, by what needs them."""

    weights: float
    adapter: float
    activations: float
    logits: float
    overhead: float

    @property
    def total_gib(self) -> float:
        return (self.weights + self.adapter + self.activations + self.logits + self.overhead) / GIB


def estimate_memory(model: ModelShape, run: RunShape) -> MemoryEstimate:
    """Peak memory of one GPU training ``model`` with ``run``."""
    zero_3 = run.gpu_count > 1 and run.zero_stage == 3
    # The trainer places a whole 4-bit model on each GPU: ZeRO-3 shards only bf16 weights.
    sharded = run.gpu_count if zero_3 and run.quantization != "nf4" else 1
    linear = model.num_layers * model.layer_linear_parameters()
    rest = model.parameters() - linear
    if run.quantization == "nf4":
        weights = linear * _NF4 + rest * _FP32
    else:
        weights = model.parameters() * _BF16
    weights /= sharded
    if sharded > 1:
        weights += _ZERO3_LIVE_LAYERS * model.layer_linear_parameters() * _BF16
    # ZeRO (2 or 3) shards the adapter's gradients and optimizer states; only ZeRO-3 its weights.
    adapter = model.adapter_parameters(run.rank) * (
        4 / (run.gpu_count if zero_3 else 1) + (_ADAPTER_BYTES - 4) / run.gpu_count)
    tokens = run.micro_batch_size * run.seq_length
    h, kv, i = model.hidden_size, model.kv_width, model.intermediate_size
    a, b, c = _SAVED_PER_TOKEN
    layer = tokens * (a * h + b * kv + c * i) * _BF16
    if run.gradient_checkpointing:
        # Each layer keeps only its input; backward recomputes one layer at a time.
        activations = model.num_layers * tokens * h * _BF16 + layer
    else:
        activations = model.num_layers * layer
    logits = tokens * model.vocab_size * _LOGIT_BYTES
    return MemoryEstimate(weights, adapter, activations, logits, _OVERHEAD)


def what_to_lower(model: ModelShape, run: RunShape, batch_size: int, limit_gib: float, max_gpus: int) -> list[str]:
    """Each single change that brings the figure under ``limit_gib``, with the figure it gives,
    or, when none does, each that lowers it; in the job's field names."""
    current = estimate_memory(model, run).total_gib
    options: list[tuple[str, RunShape]] = []
    if not run.gradient_checkpointing:
        options.append(("set hyperparameters.gradient_checkpointing to true",
                        replace(run, gradient_checkpointing=True)))
    if run.micro_batch_size > 1:
        options.append((f"lower hyperparameters.batch_size to {run.gpu_count} (one row per GPU at a time)",
                        replace(run, micro_batch_size=1)))
    if run.seq_length > 512:
        options.append((f"lower hyperparameters.max_seq_length to {run.seq_length // 2}",
                        replace(run, seq_length=run.seq_length // 2)))
    if run.quantization != "nf4":
        options.append(("set hyperparameters.quantization to nf4 (QLoRA)", replace(run, quantization="nf4")))
    # Same effective batch over more GPUs: a smaller share each, and ZeRO-3 shards the weights.
    counts = [n for n in range(run.gpu_count + 1, max_gpus + 1) if batch_size % n == 0]
    if counts:
        more = replace(run, gpu_count=counts[-1], zero_stage=3, micro_batch_size=batch_size // counts[-1])
        options.append((f"use gpu_config.count {counts[-1]} with hyperparameters.zero_stage 3", more))
    figures = [(what, estimate_memory(model, changed).total_gib) for what, changed in options]
    fitting = [(what, gib) for what, gib in figures if gib <= limit_gib]
    chosen = fitting or [(what, gib) for what, gib in figures if gib < current]
    return [f"{what} (about {gib:.1f} GB per GPU)" for what, gib in chosen]
