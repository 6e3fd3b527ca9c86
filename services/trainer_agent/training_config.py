"""The training recipe's configuration: flat parameters, every one checked
when built, every problem reported at once."""

from __future__ import annotations

import math
from dataclasses import dataclass

from services.common.formats import FORMATS
from services.common.splits import DEFAULT_VALIDATION_FRACTION
from services.common.training_choices import LR_SCHEDULERS, QUANTIZATIONS, ZERO_STAGES


class ConfigError(ValueError):
    """The run cannot start as configured: the user's to fix, never retried. ``problems`` names each cause."""

    def __init__(self, problems: list[str], heading: str = "invalid training configuration"):
        super().__init__(f"{heading}: " + "; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class TrainingConfig:
    """Everything one training run needs, checked when built.

    Raises ConfigError listing every bad field at once.
    """

    base_model: str  # a local directory or a Hugging Face hub id
    learning_rate: float = 2e-4
    batch_size: int = 8  # effective: examples per optimizer step
    epochs: int = 1
    rank: int = 16
    alpha: float = 32.0
    dropout: float = 0.05
    # Empty: every attention and MLP projection of the architecture
    # (q, k, v, o, gate, up and down for Llama), whatever they are called.
    target_modules: tuple[str, ...] = ()
    warmup_steps: int = 0
    warmup_ratio: float = 0.0  # of the run's steps, rounded up; instead of warmup_steps
    lr_scheduler: str = "cosine"  # decay after warmup: cosine or linear, to 0 at the last step
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    max_seq_length: int = 2048
    seed: int = 0
    micro_batch_size: int | None = None  # examples per forward pass (packed when packing); None: the whole batch
    log_every: int | None = None  # steps between metric points; None: see schedule.metric_interval
    validation_fraction: float = DEFAULT_VALIDATION_FRACTION  # held out when no record names its split
    dataset_format: str = ""  # empty: detected per record
    checkpoint_steps: int = 0  # steps between checkpoints; 0: none
    zero_stage: int = 2  # DeepSpeed ZeRO stage when training on several GPUs: 2, or 3 to shard the weights too
    packing: bool = True  # conversations share rows of max_seq_length tokens
    gradient_checkpointing: bool | None = None  # recompute activations in backward; None: on CUDA only
    eval_steps: int = 0  # steps between validations, besides each epoch's end; 0: at epoch ends only
    early_stopping_patience: int = 0  # validations without a new best loss before stopping; 0: never stop
    quantization: str = "none"  # "nf4": QLoRA, the frozen base model in 4 bits (CUDA with bitsandbytes)
    fused_kernels: bool = False  # Liger's Triton RMSNorm, RoPE and SwiGLU (CUDA with liger-kernel)

    def __post_init__(self):
        problems = [f"{name}: {why}" for name, ok, why in self._rules() if not ok]
        if problems:
            raise ConfigError(problems)

    def _rules(self):
        def number(value, low, high=math.inf, low_open=False) -> bool:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                return False
            return (value > low if low_open else value >= low) and value <= high

        def whole(value, low, high=math.inf) -> bool:
            return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high

        micro = self.micro_batch_size
        batch = self.batch_size if whole(self.batch_size, 1) else math.inf
        return [
            ("base_model", isinstance(self.base_model, str) and self.base_model.strip() != "", "must name a model"),
            ("learning_rate", number(self.learning_rate, 0, 1, low_open=True), "must be in (0, 1]"),
            ("batch_size", whole(self.batch_size, 1), "must be a whole number of at least 1"),
            ("epochs", whole(self.epochs, 1), "must be a whole number of at least 1"),
            ("rank", whole(self.rank, 1), "must be a whole number of at least 1"),
            ("alpha", number(self.alpha, 0, low_open=True), "must be above 0"),
            ("dropout", number(self.dropout, 0, 1) and self.dropout < 1, "must be in [0, 1)"),
            (
                "target_modules",
                isinstance(self.target_modules, tuple) and all(isinstance(m, str) and m for m in self.target_modules),
                "must be a tuple of module names",
            ),
            ("warmup_steps", whole(self.warmup_steps, 0), "must be a whole number of at least 0"),
            ("warmup_ratio", number(self.warmup_ratio, 0, 1), "must be in [0, 1]"),
            (
                "warmup_ratio",
                not (self.warmup_ratio and self.warmup_steps),
                "give warmup_steps or warmup_ratio, not both",
            ),
            ("lr_scheduler", self.lr_scheduler in LR_SCHEDULERS, f"must be one of {', '.join(LR_SCHEDULERS)}"),
            ("weight_decay", number(self.weight_decay, 0), "must be at least 0"),
            ("max_grad_norm", number(self.max_grad_norm, 0, low_open=True), "must be above 0"),
            ("max_seq_length", whole(self.max_seq_length, 2), "must be a whole number of at least 2"),
            ("seed", whole(self.seed, 0, 2**32 - 1), "must be a whole number in [0, 2**32)"),
            ("micro_batch_size", micro is None or whole(micro, 1, batch), "must be None or in [1, batch_size]"),
            ("log_every", self.log_every is None or whole(self.log_every, 1), "must be None or at least 1"),
            (
                "validation_fraction",
                number(self.validation_fraction, 0, 1) and self.validation_fraction < 1,
                "must be in [0, 1)",
            ),
            ("dataset_format", self.dataset_format in ("", *FORMATS), f"must be empty or one of {', '.join(FORMATS)}"),
            ("checkpoint_steps", whole(self.checkpoint_steps, 0), "must be a whole number of at least 0"),
            ("zero_stage", whole(self.zero_stage, 0) and self.zero_stage in ZERO_STAGES, "must be 2 or 3"),
            ("packing", isinstance(self.packing, bool), "must be true or false"),
            (
                "gradient_checkpointing",
                self.gradient_checkpointing is None or isinstance(self.gradient_checkpointing, bool),
                "must be None, true or false",
            ),
            ("eval_steps", whole(self.eval_steps, 0), "must be a whole number of at least 0"),
            ("early_stopping_patience", whole(self.early_stopping_patience, 0), "must be a whole number of at least 0"),
            ("quantization", self.quantization in QUANTIZATIONS, f"must be one of {', '.join(QUANTIZATIONS)}"),
            ("fused_kernels", isinstance(self.fused_kernels, bool), "must be true or false"),
        ]


class DatasetError(ConfigError):
    """The dataset has no conversation to train on: the user's to fix, like a bad configuration."""
