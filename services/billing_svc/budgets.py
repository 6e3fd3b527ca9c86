"""Reading a user's month against their budget, and telling them when it crosses 80% and 100%."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing_svc import store
from services.billing_svc.budget import Standing, threshold_notices
from services.billing_svc.costs import billing_period


async def standing(conn: AsyncConnection, user_id: str, now: datetime) -> Standing:
    """The user's calendar month (UTC) containing ``now``."""
    month = billing_period(now)
    return Standing(
        month=month,
        budget_cents=await store.budget_cents(conn, user_id),
        spent_cents=await store.spent_cents(conn, user_id, month),
        committed_cents=await store.committed_cents(conn, user_id),
    )


async def notify_thresholds(conn: AsyncConnection, user_id: str, now: datetime) -> None:
    """Write the month's 80% and 100% notices the user has earned and not yet been given."""
    for notice in threshold_notices(user_id, await standing(conn, user_id, now)):
        await store.insert_notification(conn, notice)
