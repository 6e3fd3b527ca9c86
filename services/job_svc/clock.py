"""What job_svc does on a clock rather than on an event.

- A running job whose trainer reports no step (a long step, a checkpoint
  upload, a stall before the watchdog acts) still costs: every
  ``cost_tick_seconds`` at most, the job ticks (Job.tick) and publishes
  ``job.progressed`` with its cost so far, which billing accrues.
- A job still queued ``queued_alert_minutes`` after it was queued gets
  ``job.waiting_for_agent`` once (Job.waited_too_long), which billing turns
  into a notification to its owner.

The sweep runs every third of the tick interval and ticks the jobs quiet for
the other two thirds, so no running job goes longer than the interval
without a ``job.progressed``. Rows are taken with SKIP LOCKED: a job a
consumer is changing is left to the next sweep, and several replicas never
tick the same job twice.
"""

from __future__ import annotations

from datetime import datetime, timezone

from services.common.config import Settings
from services.common.db import Database
from services.job_svc import store
from services.job_svc.events import save


class JobClock:
    def __init__(self, db: Database, settings: Settings):
        self._db = db
        self._tick = settings.cost_tick_seconds
        self._queued_bound = settings.queued_alert_minutes * 60

    @property
    def period(self) -> float:
        """Seconds between sweeps."""
        return self._tick / 3

    async def sweep(self) -> None:
        async with self._db.transaction() as conn:
            now = datetime.now(timezone.utc)
            for job in await store.running_jobs_quiet_for(conn, self._tick - self.period):
                await save(conn, job, job.tick(now))
            for job in await store.jobs_queued_for(conn, self._queued_bound):
                waited = int((now - job.waiting_since).total_seconds())
                await save(conn, job, job.waited_too_long(now),
                           {"job.waiting_for_agent": {"waited_seconds": waited}})
