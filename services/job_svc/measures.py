"""The numbers a job shows while it runs: progress, cost so far and ETA. Pure."""

from __future__ import annotations

from datetime import datetime, timedelta


def progress(step: int, total_steps: int) -> float:
    """Percent of steps done, 0 to 100, two decimals."""
    if total_steps <= 0:
        return 0.0
    return round(min(100.0, 100.0 * step / total_steps), 2)


def hourly_rate(gpu_config: dict) -> float:
    """Dollars per hour of a job's ``gpu_config`` (price per GPU times count)."""
    return gpu_config.get("cost_per_gpu_hour", 0) * gpu_config.get("count", 1)


def cost_so_far(started_at: datetime | None, now: datetime, hourly_rate: float) -> float:
    if started_at is None:
        return 0.0
    return round(max(0.0, (now - started_at).total_seconds()) / 3600 * hourly_rate, 2)


def estimated_completion(
    pace_since: datetime | None, pace_step: int | None, at: datetime, step: int, total_steps: int
) -> datetime | None:
    """Linear ETA from the pace since the attempt's first point (``pace_step`` done at
    ``pace_since``) to ``step`` done at ``at``; None until a step has been timed.

    The pace is measured between two points, never from the job's start: the
    first point already has a step behind it, and counting that step in no
    time made the ETA start at "now" and slide later at every step.
    """
    if pace_since is None or pace_step is None or step <= pace_step or total_steps <= 0:
        return None
    per_step = max(timedelta(0), at - pace_since) / (step - pace_step)
    return at + per_step * max(0, total_steps - step)
