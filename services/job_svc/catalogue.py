"""Presets, and the GPU catalogue as job_svc sees it (the configured one: services/common/gpu_catalogue.py)."""

from __future__ import annotations

from dataclasses import dataclass

# The GPU catalogue is configuration, read once by services.common.gpu_catalogue (which billing_svc serves).
from services.common.gpu_catalogue import CATALOGUE, GpuType

GPU_TYPES: dict[str, GpuType] = CATALOGUE.gpus


@dataclass(frozen=True)
class Preset:
    id: str
    name: str
    description: str
    learning_rate: float
    batch_size: int
    epochs: int
    rank: int
    alpha: float
    dropout: float


PRESETS: dict[str, Preset] = {
    preset.id: preset
    for preset in (
        Preset("conservative", "Conservative", "Small rank, low learning rate: stable, least overfitting.",
               0.0001, 4, 3, 8, 16, 0.05),
        Preset("balanced", "Balanced", "The default: a good trade-off of quality, speed and cost.",
               0.0002, 8, 5, 16, 32, 0.1),
        Preset("aggressive", "Aggressive", "Large rank, more epochs: most capacity, watch for overfitting.",
               0.0003, 16, 10, 32, 64, 0.1),
        Preset("custom", "Custom", "Start from the balanced values and set your own.",
               0.0002, 8, 5, 16, 32, 0.1),
    )
}
