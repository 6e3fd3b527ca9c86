"""The job's configuration: the preset's values under the user's, every
problem reported together. Pure but for resolving a local base model's real path."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from services.common.base_models import ModelNotAllowed, resolve_base_model
from services.common.errors import field_errors
from services.common.training_choices import (
    HYPERPARAMETER_RANGES,
    LR_SCHEDULERS,
    QUANTIZATIONS,
    TRAINER_OPTIONS,
    ZERO_STAGES,
)
from services.job_svc.catalogue import CUSTOM_REQUIRED, GPU_TYPES, PRESETS, GpuType

DEFAULT_MAX_SEQ_LENGTH = 2048


@dataclass(frozen=True)
class JobConfig:
    preset_id: str
    base_model: str
    learning_rate: float
    batch_size: int
    epochs: int
    rank: int
    alpha: float
    dropout: float
    warmup_steps: int
    weight_decay: float
    max_seq_length: int
    seed: int
    gpu: GpuType
    gpu_count: int
    # None: unset, the trainer's default (see TRAINER_OPTIONS).
    packing: bool | None = None
    gradient_checkpointing: bool | None = None
    warmup_ratio: float | None = None
    lr_scheduler: str | None = None
    eval_steps: int | None = None
    early_stopping_patience: int | None = None
    quantization: str | None = None
    zero_stage: int | None = None
    fused_kernels: bool | None = None

    def hyperparameters(self) -> dict:
        """The Hyperparameters message's fields as a dict, unset options left out."""
        values = asdict(self)
        for key in ("preset_id", "gpu", "gpu_count"):
            values.pop(key)
        return {key: value for key, value in values.items() if value is not None}


def resolve(
    preset_id: str, given: dict, gpu_type: str, gpu_count: int, default_base_model: str,
    model_dirs: Sequence[Path] = (),
) -> JobConfig:
    """Merge ``given`` (the fields the request set, zeros included) over the preset (empty: custom);
    raises InvalidArgument naming every bad field, a base model that is a local path outside
    ``model_dirs`` among them. A given 0 is checked like any value, never replaced by a default."""
    problems: dict[str, list[str]] = {}
    preset = PRESETS.get(preset_id or "custom")
    if preset is None:
        problems["preset_id"] = [f"must be one of {', '.join(PRESETS)}, got {preset_id[:40]!r}"]
        preset = PRESETS["custom"]
    elif preset.id == "custom":
        for name in CUSTOM_REQUIRED:
            if name not in given:
                problems[f"hyperparameters.{name}"] = ["required with preset custom; or choose a named preset"]

    def pick(name: str, default):
        return given[name] if name in given else default

    rank = int(pick("rank", preset.rank))
    config = dict(
        base_model=given.get("base_model") or default_base_model,
        learning_rate=float(pick("learning_rate", preset.learning_rate)),
        batch_size=int(pick("batch_size", preset.batch_size)),
        epochs=int(pick("epochs", preset.epochs)),
        rank=rank,
        alpha=float(pick("alpha", 2 * rank if "rank" in given else preset.alpha)),
        dropout=float(pick("dropout", preset.dropout)),
        warmup_steps=int(pick("warmup_steps", 0)),
        weight_decay=float(pick("weight_decay", 0.0)),
        max_seq_length=int(pick("max_seq_length", DEFAULT_MAX_SEQ_LENGTH)),
        seed=int(pick("seed", 0)),
    )
    try:
        config["base_model"] = resolve_base_model(config["base_model"], model_dirs)
    except ModelNotAllowed as exc:
        problems["hyperparameters.base_model"] = [str(exc)]
    for name in ("learning_rate", "batch_size", "epochs", "rank", "alpha", "dropout", "warmup_steps",
                 "weight_decay", "max_seq_length"):
        _check_range(problems, name, config[name])
    gpu = GPU_TYPES.get(gpu_type)
    if gpu is None:
        problems["gpu_config.type"] = [f"must be one of {', '.join(GPU_TYPES)}"]
        gpu = GPU_TYPES["CPU"]
    elif not 1 <= gpu_count <= gpu.max_count:
        problems["gpu_config.count"] = [f"must be 1 to {gpu.max_count} for {gpu.type}"]
    elif config["batch_size"] % gpu_count:
        # Every GPU trains the same share of each step's examples.
        problems.setdefault("hyperparameters.batch_size", []).append(
            f"must be a multiple of the GPU count ({gpu_count}) to split evenly across the GPUs"
        )
    options = {name: given[name] for name in TRAINER_OPTIONS if given.get(name) is not None}
    _check_options(problems, options, config["warmup_steps"], gpu)
    field_errors(problems)
    return JobConfig(preset_id=preset.id, gpu=gpu, gpu_count=gpu_count, **config, **options)


def _check_options(problems: dict, options: dict, warmup_steps: int, gpu: GpuType) -> None:
    if "warmup_ratio" in options:
        _check_range(problems, "warmup_ratio", options["warmup_ratio"])
        if options["warmup_ratio"] and warmup_steps:
            problems.setdefault("hyperparameters.warmup_ratio", []).append(
                "give warmup_steps or warmup_ratio, not both"
            )
    _check_choice(problems, options, "lr_scheduler", LR_SCHEDULERS)
    if "eval_steps" in options:
        _check_range(problems, "eval_steps", options["eval_steps"])
    if "early_stopping_patience" in options:
        _check_range(problems, "early_stopping_patience", options["early_stopping_patience"])
    _check_choice(problems, options, "quantization", QUANTIZATIONS)
    if options.get("quantization") == "nf4" and gpu.type == "CPU":
        problems["hyperparameters.quantization"] = ["nf4 needs a GPU: choose a GPU type, or quantization none"]
    if options.get("fused_kernels") and gpu.type == "CPU":
        problems["hyperparameters.fused_kernels"] = ["fused kernels need a GPU: choose a GPU type, or leave them off"]
    _check_choice(problems, options, "zero_stage", ZERO_STAGES)


def _check_choice(problems: dict, options: dict, name: str, choices: tuple) -> None:
    if name in options and options[name] not in choices:
        problems[f"hyperparameters.{name}"] = [
            f"must be one of {', '.join(map(str, choices))}, got {options[name]!r}"
        ]


def _check_range(problems: dict, name: str, value: float) -> None:
    low, high = HYPERPARAMETER_RANGES[name]
    if not low <= value <= high:
        problems[f"hyperparameters.{name}"] = [f"must be between {low:g} and {high:g}, got {value:g}"]
