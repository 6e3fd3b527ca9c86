"""The job's state machine, progress, cost so far and ETA. Pure.

queued -> initializing -> running -> completed, and any state not yet ended
-> failed | cancelled. A failed attempt that will be retried goes back to
queued.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from services.common.errors import FailedPrecondition

TERMINAL = frozenset({"completed", "failed", "cancelled"})
_NEXT = {
    "queued": {"initializing", "failed", "cancelled"},
    "initializing": {"running", "queued", "failed", "cancelled"},
    "running": {"completed", "queued", "failed", "cancelled"},
}


def can_move(current: str, target: str) -> bool:
    return target in _NEXT.get(current, set())


def check_move(current: str, target: str) -> None:
    """Raises FailedPrecondition for an illegal transition (e.g. cancelling a completed job)."""
    if not can_move(current, target):
        raise FailedPrecondition(f"A {current} job cannot become {target}")


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


def estimated_completion(started_at: datetime | None, now: datetime, step: int, total_steps: int) -> datetime | None:
    """Linear ETA from the pace so far; None before the first step."""
    if started_at is None or step <= 0 or total_steps <= 0:
        return None
    per_step = (now - started_at) / step
    return now + per_step * max(0, total_steps - step) if per_step > timedelta(0) else now
