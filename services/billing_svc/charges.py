"""Charging a job's events: load its ledger, accrue, save the records and the ledger together."""

from __future__ import annotations

from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from brightrun.events.v1 import events_pb2

from services.billing_svc import store
from services.billing_svc.accrual import CHARGED_EVENTS, accrue


def charges_anything(event: events_pb2.Event) -> bool:
    kind = event.WhichOneof("payload")
    return kind in CHARGED_EVENTS and bool(getattr(event, kind).job.id)


async def charge(conn: AsyncConnection, event: events_pb2.Event) -> list[Row]:
    """Record what ``event`` adds to its job's charges, in the caller's transaction; the new cost records."""
    if not charges_anything(event):
        return []
    kind = event.WhichOneof("payload")
    job = getattr(event, kind).job
    # The lock serialises this job's events, so two of them never charge the same interval.
    ledger = await store.lock_ledger(conn, job.id, job.user_id or event.user_id)
    accrual = accrue(event, ledger)
    if accrual is None:
        return []
    rows = []
    for draft in accrual.drafts:
        row = await store.insert_cost_record(conn, draft)
        if row is not None:
            rows.append(row)
    await store.save_ledger(conn, job.id, accrual.ledger)
    return rows
