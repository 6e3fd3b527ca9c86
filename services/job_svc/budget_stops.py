"""Stops a running job whose user's monthly budget is spent (issue 8, item 6).

billing_svc sends ``billing.budget_exceeded`` once per job; the job is
cancelled with reason ``budget_exceeded``, charged up to now, and
``job.cancelled`` makes its agent stop it, keeping its last checkpoint.
"""

from __future__ import annotations

from datetime import datetime, timezone

from brightrun.events.v1 import events_pb2
from services.common import events
from services.common.db import Database, claim_event
from services.job_svc import lifecycle, store
from services.job_svc.events import job_event

BUDGET_DURABLE = "job-budget"
# The cancel reason clients can match on: the job's error message starts with it.
BUDGET_EXCEEDED = "budget_exceeded"


def stop_reason(exceeded: events_pb2.BudgetExceeded) -> str:
    return (
        f"{BUDGET_EXCEEDED}: your monthly budget of ${exceeded.budget:.2f} for {exceeded.month[:7]} is spent "
        f"(${exceeded.spent:.2f}); the job was stopped and its last checkpoint kept"
    )


class BudgetStops:
    def __init__(self, db: Database):
        self._db = db

    async def handle(self, event: events_pb2.Event) -> None:
        if not event.HasField("budget_exceeded"):
            return
        exceeded = event.budget_exceeded
        async with self._db.transaction() as conn:
            if not await claim_event(conn, BUDGET_DURABLE, event.event_id):
                return
            row = await store.get_job(conn, exceeded.job_id, event.user_id, lock=True)
            if row is None or row.status in lifecycle.TERMINAL:
                return
            now = datetime.now(timezone.utc)
            cost = lifecycle.cost_so_far(row.started_at, now, lifecycle.hourly_rate(row.gpu_config))
            row = await store.update_job(
                conn, str(row.id), status="cancelled", current_stage="cancelled", completed_at=now,
                current_cost=cost, final_cost=cost, error_message=stop_reason(exceeded),
            )
            await events.add_to_outbox(conn, job_event("job.cancelled", row))
