"""Turns platform events into notifications and cost records.

A durable consumer belongs to one stream, so there is one per stream (and
one more on JOBS each for job.progressed and job.waiting_for_agent); each claims the event id under its own name, so a redelivered or re-published
event writes nothing twice. A job's charges accrue against its ledger
(charges.py), so even its events re-sent under new event ids bill once.
A charge can cross 80% or 100% of its user's monthly budget (a notice, once
a month each) or spend it all (a running job is asked to stop, once).
"""

from __future__ import annotations

from brightrun.events.v1 import events_pb2

from services.billing_svc import store
from services.billing_svc.budgets import notify_thresholds, stop_if_spent
from services.billing_svc.charges import charge, charges_anything
from services.billing_svc.messages import PRODUCER, cost_record_message
from services.billing_svc.notices import notification_for
from services.common.db import Database, claim_event
from services.common.events import add_to_outbox, new_event

class BillingEvents:
    """The handler of one durable consumer."""

    def __init__(self, db: Database, durable: str):
        self._db = db
        self._durable = durable

    async def handle(self, event: events_pb2.Event) -> None:
        notification = notification_for(event)
        if notification is None and not charges_anything(event):
            return
        async with self._db.transaction() as conn:
            if not await claim_event(conn, self._durable, event.event_id):
                return
            if notification is not None:
                await store.insert_notification(conn, notification)
            charged = await charge(conn, event)
            if charged:
                last = charged[-1]
                await notify_thresholds(conn, str(last.user_id), last.recorded_at)
                if event.HasField("job_progressed"):
                    await stop_if_spent(conn, str(last.user_id), str(last.job_id), last.recorded_at)
            for row in charged:
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
