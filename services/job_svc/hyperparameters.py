"""The job's configuration: the preset's values under the user's, every
problem reported together. Pure."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from services.common.errors import field_errors
from services.job_svc.catalogue import GPU_TYPES, PRESETS, GpuType

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

    def hyperparameters(self) -> dict:
        values = asdict(self)
        for key in ("preset_id", "gpu", "gpu_count"):
            values.pop(key)
        return values


def resolve(preset_id: str, given: dict, gpu_type: str, gpu_count: int, default_base_model: str) -> JobConfig:
    """Merge ``given`` (zero/empty = unset) over the preset; raises InvalidArgument naming every bad field."""
    problems: dict[str, list[str]] = {}
    preset = PRESETS.get(preset_id or "balanced")
    if preset is None:
        problems["preset_id"] = [f"must be one of {', '.join(PRESETS)}"]
        preset = PRESETS["balanced"]

    def pick(name: str, default):
        value = given.get(name)
        return value if value else default

    rank = int(pick("rank", preset.rank))
    config = dict(
        base_model=pick("base_model", default_base_model),
        learning_rate=float(pick("learning_rate", preset.learning_rate)),
        batch_size=int(pick("batch_size", preset.batch_size)),
        epochs=int(pick("epochs", preset.epochs)),
        rank=rank,
        alpha=float(pick("alpha", 2 * rank if given.get("rank") else preset.alpha)),
        dropout=float(given.get("dropout", preset.dropout)),
        warmup_steps=int(given.get("warmup_steps") or 0),
        weight_decay=float(given.get("weight_decay") or 0.0),
        max_seq_length=int(pick("max_seq_length", DEFAULT_MAX_SEQ_LENGTH)),
        seed=int(given.get("seed") or 0),
    )
    _check_range(problems, "hyperparameters.learning_rate", config["learning_rate"], 1e-5, 1e-3)
    _check_range(problems, "hyperparameters.batch_size", config["batch_size"], 1, 64)
    _check_range(problems, "hyperparameters.epochs", config["epochs"], 1, 20)
    _check_range(problems, "hyperparameters.rank", config["rank"], 4, 128)
    _check_range(problems, "hyperparameters.alpha", config["alpha"], 1, 1024)
    _check_range(problems, "hyperparameters.dropout", config["dropout"], 0, 0.5)
    _check_range(problems, "hyperparameters.warmup_steps", config["warmup_steps"], 0, 100_000)
    _check_range(problems, "hyperparameters.weight_decay", config["weight_decay"], 0, 1)
    _check_range(problems, "hyperparameters.max_seq_length", config["max_seq_length"], 64, 32768)
    gpu = GPU_TYPES.get(gpu_type)
    if gpu is None:
        problems["gpu_config.type"] = [f"must be one of {', '.join(GPU_TYPES)}"]
        gpu = GPU_TYPES["CPU"]
    elif not 1 <= gpu_count <= gpu.max_count:
        problems["gpu_config.count"] = [f"must be 1 to {gpu.max_count} for {gpu.type}"]
    field_errors(problems)
    return JobConfig(preset_id=preset.id, gpu=gpu, gpu_count=gpu_count, **config)


def _check_range(problems: dict, field: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        problems[field] = [f"must be between {low:g} and {high:g}, got {value:g}"]
