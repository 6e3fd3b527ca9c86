"""Cost and duration of a configuration: the spec's FR-3.1 formula, its
throughput scaled by the model's size, or the speed measured on earlier runs
of the same kind (services/job_svc/speed.py) when there is one. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.common.steps import CONVERSATIONS, steps_per_epoch, total_steps, training_conversations
from services.common.gpu_catalogue import CATALOGUE, GpuType
from services.job_svc.speed import MeasuredSpeed

# Initialization (10 min), validation between epochs (5 min each), final save (5 min).
INIT_SECONDS = 10 * 60
PER_EPOCH_SECONDS = 5 * 60
SAVE_SECONDS = 5 * 60


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
    # The tokens the job trains, in the unit measured speeds count.
    trained_tokens: float
    estimated_duration_seconds: float
    # "measured": from earlier runs of the same kind; "table": from the catalogue and the model's size.
    basis: str


# Assumed for a dataset whose conversations were never counted, as the spec assumes 1000 pairs.
UNCOUNTED_CONVERSATIONS = 1000
TOKENS_PER_UNCOUNTED_CONVERSATION = 200


def estimate(
    gpu: GpuType, count: int, statistics: Mapping, total_tokens: int, batch_size: int, epochs: int,
    speedup: float = 1.0, measured: MeasuredSpeed | None = None,
) -> Estimate:
    """The estimate of a job on a dataset with these validation ``statistics``
    and ``total_tokens``; its total_steps is the job's (services.common.steps).

    Its duration is ``measured``'s when given, else the spec's table with the
    catalogue's throughput times ``speedup`` (the model's size: speed.table_speedup).
    """
    counted = int(statistics[CONVERSATIONS]) if CONVERSATIONS in statistics else 0
    conversations = counted or UNCOUNTED_CONVERSATIONS
    training = training_conversations(statistics) if counted else UNCOUNTED_CONVERSATIONS
    tokens = total_tokens or conversations * TOKENS_PER_UNCOUNTED_CONVERSATION
    hourly_rate = gpu.price_per_gpu_hour * count
    per_epoch, steps = steps_per_epoch(training, batch_size), total_steps(training, batch_size, epochs)
    # A step trains batch_size conversations of the dataset's mean length.
    trained_tokens = steps * (tokens / conversations) * batch_size
    if measured is not None:
        throughput = measured.tokens_per_second
        seconds = measured.duration_seconds(trained_tokens)
    else:
        throughput = gpu.throughput_tokens_per_second * count * speedup
        seconds = trained_tokens / throughput + INIT_SECONDS + epochs * PER_EPOCH_SECONDS + SAVE_SECONDS
    hours = seconds / 3600
    compute = hourly_rate * hours
    storage = CATALOGUE.storage_price_per_model
    return Estimate(
        estimated_cost=round(compute + storage, 2),
        compute=round(compute, 2),
        storage=storage,
        estimated_duration_hours=round(hours, 2),
        hourly_rate=round(hourly_rate, 2),
        total_steps=steps,
        steps_per_epoch=per_epoch,
        throughput_tokens_per_sec=throughput,
        trained_tokens=trained_tokens,
        estimated_duration_seconds=seconds,
        basis="table" if measured is None else "measured",
    )
