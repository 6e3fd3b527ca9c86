"""Training speed: what a finished job measured, and what the estimate takes
from it. Pure.

A job's measured duration is its last attempt's wall time (a retried job is
measured on the attempt that completed it), from the agent taking
the job (``attempt_started_at``: it starts loading the model) to its
completion, as the spec's duration counts initialization; the wait in the
queue depends on other jobs and is not predicted. It is fitted as
``tokens_to_train / tokens_per_second + overhead_seconds``. The speed comes
from the steps between the attempt's first and last metric points; the
overhead is the rest of the measured duration (loading the model, the first
step, saving the adapter, reporting the end), so an identical job is
predicted exactly, and a larger one adds time only for its extra tokens.

Runs are grouped by what sets the speed: GPU type and count, the model's
size class and the sequence length bucket. Tokens are counted as the
estimate counts them (services/job_svc/estimate.py), so a measured speed
and the estimate's token count always agree on their unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# Upper bounds of the model size classes, in parameters, and how many times
# faster than the 7B models the catalogue's planning throughputs are for
# (training compute grows with the parameter count) a model of each trains.
SIZE_CLASSES: tuple[tuple[str, float, float], ...] = (
    ("<=100M", 100e6, 20.0),
    ("<=1B", 1e9, 7.0),
    ("<=3B", 3e9, 2.5),
    ("<=8B", 8e9, 1.0),
    ("<=15B", 15e9, 0.5),
    ("<=35B", 35e9, 0.2),
    ("<=80B", 80e9, 0.1),
    (">80B", float("inf"), 0.04),
)
UNKNOWN_SIZE = "unknown"
# How much the newest run counts against all earlier runs of the same kind:
# speed drifts (drivers, contention on a shared node), so recent runs lead.
NEWEST_WEIGHT = 0.5


def size_class(parameters: int | None) -> str:
    """The size class of a model of ``parameters`` parameters; UNKNOWN_SIZE when its config was not read."""
    if not parameters:
        return UNKNOWN_SIZE
    return next(name for name, bound, _ in SIZE_CLASSES if parameters <= bound)


def table_speedup(parameters: int | None) -> float:
    """How many times the catalogue's planning throughput a model of ``parameters`` trains at (1: unknown)."""
    if not parameters:
        return 1.0
    return next(speedup for _, bound, speedup in SIZE_CLASSES if parameters <= bound)


def speed_key(gpu_type: str, gpu_count: int, parameters: int | None, max_seq_length: int) -> str:
    """The kind of run a speed is measured for: GPU type and count, model size class,
    and max_seq_length rounded up to a power of two."""
    bucket = 1 << max(0, max_seq_length - 1).bit_length()
    return f"{gpu_type}/{gpu_count}/{size_class(parameters)}/{bucket}"


@dataclass(frozen=True)
class MeasuredSpeed:
    tokens_per_second: float
    overhead_seconds: float

    def duration_seconds(self, tokens: float) -> float:
        """The attempt's wall time of a job training ``tokens``, never below zero."""
        return max(0.0, tokens / self.tokens_per_second + self.overhead_seconds)


@dataclass(frozen=True)
class FinishedRun:
    """A completed job as job_svc recorded it: its plan, and its last attempt's start, the step it
    resumed after, its first and last metric points and its end."""

    planned_tokens: float
    total_steps: int
    resumed_from_step: int
    first_step: int
    first_at: datetime
    last_step: int
    last_at: datetime
    attempt_started_at: datetime
    completed_at: datetime


def measure(run: FinishedRun) -> MeasuredSpeed | None:
    """The speed ``run`` trained at; None when it cannot tell (fewer than two
    points apart in steps and time, or no planned steps)."""
    seconds = (run.last_at - run.first_at).total_seconds()
    steps = run.last_step - run.first_step
    if steps <= 0 or seconds <= 0 or run.total_steps <= 0 or run.planned_tokens <= 0:
        return None
    tokens_per_step = run.planned_tokens / run.total_steps
    tokens_per_second = tokens_per_step * steps / seconds
    # The attempt trained the steps after the one it resumed from; the rest of its time is overhead.
    trained = tokens_per_step * max(0, run.last_step - run.resumed_from_step)
    duration = (run.completed_at - run.attempt_started_at).total_seconds()
    return MeasuredSpeed(tokens_per_second, duration - trained / tokens_per_second)


def blend(previous: MeasuredSpeed | None, newest: MeasuredSpeed) -> MeasuredSpeed:
    """The figure to keep after ``newest``: an exponentially weighted average with the earlier ones."""
    if previous is None:
        return newest
    def mix(old: float, new: float) -> float:
        return (1 - NEWEST_WEIGHT) * old + NEWEST_WEIGHT * new
    return MeasuredSpeed(mix(previous.tokens_per_second, newest.tokens_per_second),
                         mix(previous.overhead_seconds, newest.overhead_seconds))
