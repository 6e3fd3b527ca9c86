"""Turns platform events into notifications and cost records.

A durable consumer belongs to one stream, so there is one per stream (and
one more on JOBS each for job.progressed and job.waiting_for_agent). Each
takes its events in batches (:func:`services.common.events.consume_batches`):
one transaction claims the batch's event ids under the consumer's name, locks
the ledgers of the jobs it charges, then applies the events in stream order
exactly as it would one at a time, so a redelivered or re-published event
writes nothing twice and a bad one is parked alone. A job's charges accrue
against its ledger (charges.py), so even its events re-sent under new event
ids bill once; that is why ``job.progressed`` (the one event a job sends per
ingested batch of its metrics, and no notification) is not claimed: its
ledger is its claim, and a ``processed_events`` row each cost PostgreSQL more
than the rest of its handling. A charge can cross 80% or 100% of its user's
monthly budget (a notice, once a month each) or spend it all (a running job
is asked to stop, once).
"""

from __future__ import annotations

from brightrun.events.v1 import events_pb2

from services.billing_svc import store
from services.billing_svc.budgets import notify_thresholds, stop_if_spent
from services.billing_svc.charges import charge, charges_anything, lock_ledgers
from services.billing_svc.messages import PRODUCER, cost_record_message
from services.billing_svc.notices import notification_for
from services.common.db import Database, claim_events
from services.common.events import Unappliable, add_to_outbox, new_event
from services.common.paging import canonical_uuid

# Events applied in one transaction at most. The claims and ledger locks are paid once a batch, so 50
# saves nearly all that more would (job_svc sends one job.progressed per job per batch of its own, a few
# dozen at a time), and a batch of first charges (about 8 statements each) stays short, so a stopping
# service is not left finishing a long one.
BATCH = 50


class BillingEvents:
    """The handler of one durable consumer."""

    def __init__(self, db: Database, durable: str):
        self._db = db
        self._durable = durable

    async def handle_batch(self, batch: list[events_pb2.Event]) -> None:
        """Apply ``batch`` (in stream order) in one transaction.

        Raises Unappliable for an event or job id that is not a UUID: the
        consumer then applies the batch one event at a time and parks that one.
        """
        by_id: dict[str, events_pb2.Event] = {}
        for event in batch:
            if notification_for(event) is not None or charges_anything(event):
                if (event_id := canonical_uuid(event.event_id)) is None:
                    raise Unappliable(f"event_id {event.event_id!r} of {event.type} is not a UUID")
                by_id.setdefault(event_id, event)
        if not by_id:
            return
        async with self._db.transaction() as conn:
            claimed = [event_id for event_id, event in by_id.items() if not event.HasField("job_progressed")]
            fresh = await claim_events(conn, self._durable, claimed) if claimed else set()
            todo = [event for event_id, event in by_id.items()
                    if event_id in fresh or event.HasField("job_progressed")]
            ledgers = await lock_ledgers(conn, todo)
            for event in todo:
                await self._apply(conn, event, ledgers)

    async def _apply(self, conn, event: events_pb2.Event, ledgers) -> None:
        if (notification := notification_for(event)) is not None:
            await store.insert_notification(conn, notification)
        charged = await charge(conn, event, ledgers)
        if charged:
            last = charged[-1]
            month = await notify_thresholds(conn, str(last.user_id), last.recorded_at)
            if event.HasField("job_progressed"):
                await stop_if_spent(conn, month, str(last.user_id), str(last.job_id))
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
