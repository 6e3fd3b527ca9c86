"""Reading a user's month against their budget, telling them when it crosses 80% and 100%,
and asking job_svc to stop a running job once the budget is spent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from brightrun.events.v1 import events_pb2

from services.billing_svc import store
from services.billing_svc.budget import Standing, threshold_notices
from services.billing_svc.costs import billing_period
from services.billing_svc.messages import PRODUCER
from services.common.events import add_to_outbox, new_event


async def standing(conn: AsyncConnection, user_id: str, now: datetime) -> Standing:
    """The user's calendar month (UTC) containing ``now``."""
    month = billing_period(now)
    return Standing(
        month=month,
        budget_cents=await store.budget_cents(conn, user_id),
        spent_cents=await store.spent_cents(conn, user_id, month),
        committed_cents=await store.committed_cents(conn, user_id),
    )


async def notify_thresholds(conn: AsyncConnection, user_id: str, now: datetime) -> Standing:
    """Write the month's 80% and 100% notices the user has earned and not yet been given; returns the
    standing they were read from."""
    month = await standing(conn, user_id, now)
    for notice in threshold_notices(user_id, month):
        await store.insert_notification(conn, notice)
    return month


async def stop_if_spent(conn: AsyncConnection, month: Standing, user_id: str, job_id: str) -> None:
    """Ask job_svc, once (the job's ledger remembers), to stop ``job_id`` when its user's ``month`` (read
    after the charge) has spent the whole budget; a second request would be harmless, job_svc stops a job once."""
    if not month.spent_all or not await store.request_stop(conn, job_id):
        return
    event = new_event(
        "billing.budget_exceeded",
        producer=PRODUCER,
        user_id=user_id,
        subject_id=job_id,
        budget_exceeded=events_pb2.BudgetExceeded(
            job_id=job_id, budget=month.budget_cents / 100, spent=month.spent_cents / 100,
            month=month.month.isoformat(),
        ),
    )
    await add_to_outbox(conn, event)
