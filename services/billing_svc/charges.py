"""Charging a job's events: lock its ledger, accrue, save the records and the ledger together."""

from __future__ import annotations

from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from brightrun.events.v1 import events_pb2

from services.billing_svc import store
from services.billing_svc.accrual import CHARGED_EVENTS, Ledger, accrue
from services.common.events import Unappliable
from services.common.paging import canonical_uuid


def charges_anything(event: events_pb2.Event) -> bool:
    kind = event.WhichOneof("payload")
    return kind in CHARGED_EVENTS and bool(getattr(event, kind).job.id)


def _job(event: events_pb2.Event):
    return getattr(event, event.WhichOneof("payload")).job


async def lock_ledgers(conn: AsyncConnection, batch: list[events_pb2.Event]) -> dict[str, Ledger]:
    """The ledgers of the jobs ``batch`` charges, locked in the caller's transaction (see :func:`charge`).

    The lock serialises each job's events, so two of them never charge the same interval. Raises
    Unappliable for a job id that is not a UUID (no redelivery makes it one).
    """
    users: dict[str, str] = {}
    for event in batch:
        if charges_anything(event):
            job = _job(event)
            if (job_id := canonical_uuid(job.id)) is None:
                raise Unappliable(f"job.id {job.id!r} of {event.type} {event.event_id} is not a UUID")
            job.id = job_id
            users.setdefault(job_id, job.user_id or event.user_id)
    return await store.lock_ledgers(conn, users) if users else {}


async def charge(conn: AsyncConnection, event: events_pb2.Event, ledgers: dict[str, Ledger]) -> list[Row]:
    """Record what ``event`` adds to its job's charges, in the caller's transaction; the new cost records.

    ``ledgers`` holds the job's ledger, locked by :func:`lock_ledgers`; a charge moves it on there, so the
    next event of the same job in the transaction accrues against it, as if it came in a transaction of its own.
    """
    if not charges_anything(event):
        return []
    job_id = _job(event).id
    accrual = accrue(event, ledgers[job_id])
    if accrual is None:
        return []
    rows = []
    for draft in accrual.drafts:
        row = await store.insert_cost_record(conn, draft)
        if row is not None:
            rows.append(row)
    await store.save_ledger(conn, job_id, accrual.ledger)
    ledgers[job_id] = accrual.ledger
    return rows
