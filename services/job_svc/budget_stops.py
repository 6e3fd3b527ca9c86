"""Stops a running job whose user's monthly budget is spent.

billing_svc sends ``billing.budget_exceeded`` once per job; the job is
cancelled with reason ``budget_exceeded``, charged up to now, and
``job.cancelled`` makes its agent stop it, keeping its last checkpoint.
"""

from __future__ import annotations

from datetime import datetime, timezone

from brightrun.events.v1 import events_pb2
from services.common.db import Database, claim_event
from services.common.nats_access import JOB_BUDGET
from services.job_svc import store
from services.job_svc.events import save

BUDGET_DURABLE = JOB_BUDGET.durable
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
            job = await store.load_job(conn, exceeded.job_id, event.user_id)
            if job is None or job.ended:
                return
            await save(conn, job, job.cancel(datetime.now(timezone.utc), reason=stop_reason(exceeded)))
