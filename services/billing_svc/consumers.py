"""Turns platform events into notifications and cost records.

A durable consumer belongs to one stream, so there is one per stream; each
claims the event id under its own name, so a redelivered or re-published
event writes nothing twice. Charges are also unique per job and cost type,
so even a job's final event re-sent under a new event id bills once.
"""

from __future__ import annotations

from brightrun.events.v1 import events_pb2

from services.billing_svc import store
from services.billing_svc.costs import cost_records_for
from services.billing_svc.messages import cost_record_message
from services.billing_svc.notices import notification_for
from services.common.db import Database, claim_event
from services.common.events import add_to_outbox, new_event

PRODUCER = "billing_svc"

# Durable name -> (stream, subjects).
SUBSCRIPTIONS = {
    "billing-datasets": ("DATASETS", ["dataset.validated", "dataset.validation_failed"]),
    "billing-jobs": ("JOBS", ["job.queued", "job.started", "job.completed", "job.failed", "job.cancelled"]),
    "billing-artifacts": ("ARTIFACTS", ["artifact.created"]),
}


class BillingEvents:
    """The handler of one durable consumer."""

    def __init__(self, db: Database, durable: str):
        self._db = db
        self._durable = durable

    async def handle(self, event: events_pb2.Event) -> None:
        notification = notification_for(event)
        costs = cost_records_for(event)
        if notification is None and not costs:
            return
        async with self._db.transaction() as conn:
            if not await claim_event(conn, self._durable, event.event_id):
                return
            if notification is not None:
                await store.insert_notification(conn, notification)
            for draft in costs:
                row = await store.insert_cost_record(conn, draft)
                if row is None:
                    continue
                record = cost_record_message(row)
                await add_to_outbox(
                    conn,
                    new_event(
                        "billing.cost_recorded",
                        producer=PRODUCER,
                        user_id=record.user_id,
                        subject_id=record.id,
                        cost_recorded=events_pb2.CostRecorded(cost_record=record),
                    ),
                )
