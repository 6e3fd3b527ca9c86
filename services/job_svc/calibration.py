"""Keeps the measured speed of each kind of run up to date as jobs complete
(the measurement itself is services/job_svc/speed.py)."""

from __future__ import annotations

from sqlalchemy.engine import Row

from services.job_svc import store
from services.job_svc.speed import FinishedRun, blend, measure


async def record_completed(conn, row: Row) -> None:
    """Fold the completed job ``row`` (the jobs table's row) into its kind's measured speed.

    The attempt that completed the job is measured: its span, its own first and
    last metric points, and only the steps it trained after the checkpoint it
    resumed from, so a retried job calibrates like any other. A job created before
    speeds were recorded (no speed_key), or whose points cannot tell a speed,
    changes nothing.
    """
    if row.speed_key is None or row.pace_since is None or row.attempt_started_at is None:
        return
    last = await store.last_metric_point(conn, str(row.id))
    if last is None:
        return
    measured = measure(FinishedRun(
        planned_tokens=row.planned_tokens, total_steps=row.total_steps, resumed_from_step=row.resumed_from_step,
        first_step=row.pace_step, first_at=row.pace_since, last_step=last.step, last_at=last.timestamp,
        attempt_started_at=row.attempt_started_at, completed_at=row.completed_at,
    ))
    if measured is not None:
        await store.save_measured_speed(
            conn, row.speed_key, blend(await store.measured_speed(conn, row.speed_key), measured))
