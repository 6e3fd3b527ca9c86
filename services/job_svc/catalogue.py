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


# fast, balanced and quality are the configuration page's (FR-3.3) and FR-3.2's
# preset_id values; conservative and aggressive are FR-1.1's. custom carries
# FR-1.1's alpha and dropout, and takes the rest from the request (CUSTOM_REQUIRED).
PRESETS: dict[str, Preset] = {
    preset.id: preset
    for preset in (
        Preset("fast", "Fast", "Quick training for testing and iteration: one epoch, small rank.",
               0.0001, 8, 1, 8, 16, 0.05),
        Preset("balanced", "Balanced", "Recommended balance of quality and cost; best for most use cases.",
               0.00005, 4, 3, 16, 32, 0.1),
        Preset("quality", "Quality", "Maximum quality for production models: slower and more expensive.",
               0.00003, 2, 5, 32, 64, 0.1),
        Preset("conservative", "Conservative", "Small rank, low learning rate: stable, least overfitting.",
               0.0001, 4, 3, 8, 16, 0.05),
        Preset("aggressive", "Aggressive", "Large rank, more epochs: most capacity, watch for overfitting.",
               0.0003, 16, 10, 32, 64, 0.1),
        Preset("custom", "Custom", "Your own learning_rate, batch_size, epochs and rank (all four required).",
               0.0002, 8, 5, 16, 32, 0.1),
    )
}
# What a custom job must give: it has no values of its own for these.
CUSTOM_REQUIRED = ("learning_rate", "batch_size", "epochs", "rank")
# A job or estimate without gpu_config runs on one of these (the configuration page's default, FR-3.3).
DEFAULT_GPU_TYPE = "A100-80GB"
