"""A job's optional training options and the values they may take, shared by
job_svc (which refuses any other when the job is created) and the trainer
(which refuses any other when a run is configured)."""

from __future__ import annotations

LR_SCHEDULERS = ("cosine", "linear")
# "nf4": QLoRA, the frozen base model in 4-bit NormalFloat (bitsandbytes, CUDA only).
QUANTIZATIONS = ("none", "nf4")
ZERO_STAGES = (2, 3)

# Optional Hyperparameters fields, under their proto names, and the type each
# reads as from proto JSON. A job keeps them unset unless the user gave them:
# the trainer then picks its default, which may depend on the machine
# (gradient checkpointing on GPUs).
TRAINER_OPTIONS = {
    "packing": bool,
    "gradient_checkpointing": bool,
    "warmup_ratio": float,
    "lr_scheduler": str,
    "eval_steps": int,
    "early_stopping_patience": int,
    "quantization": str,
    "zero_stage": int,
    "fused_kernels": bool,
}

# The range of each numeric Hyperparameters field, inclusive: job_svc refuses a
# job outside it, and the gateway states it (in its messages and the OpenAPI
# document) instead of the range of the field's wire type.
HYPERPARAMETER_RANGES: dict[str, tuple[float, float]] = {
    "learning_rate": (1e-5, 1e-3),
    "batch_size": (1, 64),
    "epochs": (1, 20),
    "rank": (4, 128),
    "alpha": (1, 1024),
    "dropout": (0, 0.5),
    "warmup_steps": (0, 100_000),
    "weight_decay": (0, 1),
    "max_seq_length": (64, 32768),
    "warmup_ratio": (0, 1),
    "eval_steps": (0, 100_000),
    "early_stopping_patience": (0, 100),
}
