"""Cost and duration of a configuration: the spec's FR-3.1 formula. Pure."""

from __future__ import annotations

import math
from dataclasses import dataclass

from services.job_svc.catalogue import GpuType

# Initialization (10 min), validation between epochs (5 min each), final save (5 min).
INIT_SECONDS = 10 * 60
PER_EPOCH_SECONDS = 5 * 60
SAVE_SECONDS = 5 * 60
STORAGE_COST = 0.50


@dataclass(frozen=True)
class Estimate:
    estimated_cost: float
    compute: float
    storage: float
    estimated_duration_hours: float
    hourly_rate: float
    total_steps: int
    steps_per_epoch: int
    throughput_tokens_per_sec: float


def total_steps(training_pairs: int, batch_size: int, epochs: int) -> tuple[int, int]:
    """(steps per epoch, total steps) for ``training_pairs`` at an effective ``batch_size``."""
    per_epoch = math.ceil(max(training_pairs, 1) / batch_size)
    return per_epoch, per_epoch * epochs


def estimate(gpu: GpuType, count: int, training_pairs: int, total_tokens: int, batch_size: int, epochs: int) -> Estimate:
    pairs = training_pairs or 1000
    tokens = total_tokens or pairs * 200
    hourly_rate = gpu.price_per_gpu_hour * count
    throughput = gpu.throughput_tokens_per_second * count
    per_epoch, steps = total_steps(pairs, batch_size, epochs)
    seconds_per_step = (tokens / pairs) * batch_size / throughput
    seconds = steps * seconds_per_step + INIT_SECONDS + epochs * PER_EPOCH_SECONDS + SAVE_SECONDS
    hours = seconds / 3600
    compute = hourly_rate * hours
    return Estimate(
        estimated_cost=round(compute + STORAGE_COST, 2),
        compute=round(compute, 2),
        storage=STORAGE_COST,
        estimated_duration_hours=round(hours, 2),
        hourly_rate=round(hourly_rate, 2),
        total_steps=steps,
        steps_per_epoch=per_epoch,
        throughput_tokens_per_sec=throughput,
    )
