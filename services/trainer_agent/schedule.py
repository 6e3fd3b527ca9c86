"""When things happen in a run: the learning-rate factor of each step, and how
often a metric point is emitted."""

from __future__ import annotations

import math

# Metric points a run emits at most when the user leaves log_every unset: a
# chart's worth, and a bounded load on the metrics stream however long the job.
MOST_METRIC_POINTS = 1000


def warmup_steps(total_steps: int, steps: int, ratio: float) -> int:
    """Steps of warmup: ``steps``, or ``ratio`` of the run's steps rounded up when a ratio is given."""
    return math.ceil(ratio * total_steps) if ratio > 0 else steps


def lr_factor(step: int, *, total_steps: int, warmup: int, kind: str) -> float:
    """The factor of the peak learning rate at ``step`` (0-based): linear warmup
    to 1, then cosine or linear decay to 0 at ``total_steps``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    if kind == "linear":
        return 1.0 - progress
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def metric_interval(total_steps: int) -> int:
    """Steps between metric points when the user chose none: every step on
    small jobs, at most MOST_METRIC_POINTS points on large ones."""
    return max(1, math.ceil(total_steps / MOST_METRIC_POINTS))
