"""The billing service's SQL: cost records and notifications, scoped by user id."""

from __future__ import annotations

import json
from datetime import date, datetime

from sqlalchemy import text
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing_svc.accrual import Ledger
from services.billing_svc.costs import CostDraft
from services.billing_svc.webhook_store import queue_deliveries
from services.common.db import Record, fetch
from services.common.paging import Keyset, Page
from services.billing_svc.notices import NotificationDraft


async def insert_cost_record(conn: AsyncConnection, draft: CostDraft) -> Row | None:
    """The new record; None when a record with the draft's key exists."""
    result = await conn.execute(
        text(
            "INSERT INTO cost_records (user_id, job_id, cost_type, amount, details, billing_period, recorded_at, "
            "natural_key) VALUES (:user_id, :job_id, :cost_type, :amount, CAST(:details AS JSONB), :period, "
            ":recorded_at, :key) ON CONFLICT (natural_key) WHERE natural_key IS NOT NULL DO NOTHING RETURNING *"
        ),
        {
            "user_id": draft.user_id,
            "job_id": draft.job_id,
            "cost_type": draft.cost_type,
            "amount": draft.amount,
            "details": json.dumps(draft.details),
            "period": draft.billing_period,
            "recorded_at": draft.recorded_at,
            "key": draft.key,
        },
    )
    return result.first()


async def lock_ledgers(conn: AsyncConnection, users_by_job: dict[str, str]) -> dict[str, Ledger]:
    """The ledgers of the jobs in ``users_by_job`` (job id -> its user id), each created empty on first use,
    locked until the transaction ends: two statements whatever the number of jobs.

    Locked in job id order, so two transactions locking overlapping sets wait rather than deadlock.
    """
    jobs = sorted(users_by_job)
    await conn.execute(
        text("INSERT INTO job_charges (job_id, user_id) SELECT * FROM "
             "unnest(CAST(:jobs AS UUID[]), CAST(:users AS UUID[])) ORDER BY 1 ON CONFLICT (job_id) DO NOTHING"),
        {"jobs": jobs, "users": [users_by_job[job] for job in jobs]},
    )
    rows = await conn.execute(
        text("SELECT * FROM job_charges WHERE job_id = ANY(CAST(:jobs AS UUID[])) ORDER BY job_id FOR UPDATE"),
        {"jobs": jobs},
    )
    return {str(row.job_id): Ledger(row.estimated_cents, row.charged_cents, row.last_accrued_at, row.ended)
            for row in rows}


async def save_ledger(conn: AsyncConnection, job_id: str, ledger: Ledger) -> None:
    await conn.execute(
        text(
            "UPDATE job_charges SET estimated_cents = :estimated, charged_cents = :charged, "
            "last_accrued_at = :last_accrued_at, ended = :ended WHERE job_id = :job_id"
        ),
        {
            "job_id": job_id,
            "estimated": ledger.estimated_cents,
            "charged": ledger.charged_cents,
            "last_accrued_at": ledger.last_accrued_at,
            "ended": ledger.ended,
        },
    )


async def insert_notification(conn: AsyncConnection, draft: NotificationDraft) -> Row | None:
    """The new notification, queued for the user's webhook endpoints; None when one with the draft's key exists."""
    result = await conn.execute(
        text(
            "INSERT INTO notifications (user_id, type, title, message, priority, action_url, metadata, natural_key) "
            "VALUES (:user_id, :type, :title, :message, :priority, :action_url, CAST(:metadata AS JSONB), :key) "
            "ON CONFLICT (natural_key) WHERE natural_key IS NOT NULL DO NOTHING RETURNING *"
        ),
        {
            "user_id": draft.user_id,
            "type": draft.type,
            "title": draft.title,
            "message": draft.message,
            "priority": draft.priority,
            "action_url": draft.action_url,
            "metadata": json.dumps(draft.metadata),
            "key": draft.key,
        },
    )
    row = result.first()
    if row is not None:
        await queue_deliveries(conn, row)
    return row


async def costs_between(conn: AsyncConnection, user_id: str, start: datetime, end: datetime) -> list[Row]:
    """The user's records from ``start`` until before ``end``, oldest first."""
    rows = await conn.execute(
        text(
            "SELECT * FROM cost_records "
            "WHERE user_id = :user_id AND recorded_at >= :start AND recorded_at < :end ORDER BY recorded_at, id"
        ),
        {"user_id": user_id, "start": start, "end": end},
    )
    return list(rows)


# Newest first, each served by an index of migration 0007: cost_records_user_recorded_id (a user's records)
# and cost_records_user_job_recorded (a job's), notifications_user_created_id and notifications_user_unread_id.
COST_RECORD_ORDER = Keyset((("recorded_at", "timestamptz"), ("id", "uuid")))
NOTIFICATION_ORDER = Keyset((("created_at", "timestamptz"), ("id", "uuid")))


async def list_cost_records(conn: AsyncConnection, user_id: str, job_id: str | None, page: Page) -> list[Record]:
    """Newest first; one row more than the page to tell whether another page follows."""
    job_filter = " AND job_id = :job_id" if job_id else ""
    order = COST_RECORD_ORDER
    sql = f"SELECT * FROM cost_records WHERE user_id = :user_id{job_filter}{order.after(page)}{order.window(page)}"
    return await fetch(conn, sql, {"user_id": user_id, "job_id": job_id, **order.params(page)})


async def list_notifications(conn: AsyncConnection, user_id: str, unread_only: bool, page: Page) -> list[Row]:
    """Newest first; one row more than the page to tell whether another page follows."""
    unread = " AND NOT read" if unread_only else ""
    order = NOTIFICATION_ORDER
    sql = f"SELECT * FROM notifications WHERE user_id = :user_id{unread}{order.after(page)}{order.window(page)}"
    return list(await conn.execute(text(sql), {"user_id": user_id, **order.params(page)}))


async def notification_count(conn: AsyncConnection, user_id: str, unread_only: bool) -> int:
    unread = " AND NOT read" if unread_only else ""
    result = await conn.execute(
        text(f"SELECT count(*) FROM notifications WHERE user_id = :user_id{unread}"), {"user_id": user_id}
    )
    return result.scalar_one()


async def unread_count(conn: AsyncConnection, user_id: str) -> int:
    result = await conn.execute(
        text("SELECT count(*) FROM notifications WHERE user_id = :user_id AND NOT read"), {"user_id": user_id}
    )
    return result.scalar_one()


async def mark_read(conn: AsyncConnection, user_id: str, notification_id: str) -> Row | None:
    """The notification marked read; None when the user has no such notification."""
    result = await conn.execute(
        text("UPDATE notifications SET read = TRUE WHERE id = :id AND user_id = :user_id RETURNING *"),
        {"id": notification_id, "user_id": user_id},
    )
    return result.first()


async def mark_all_read(conn: AsyncConnection, user_id: str) -> int:
    result = await conn.execute(
        text("UPDATE notifications SET read = TRUE WHERE user_id = :user_id AND NOT read"), {"user_id": user_id}
    )
    return result.rowcount


async def budget_cents(conn: AsyncConnection, user_id: str) -> int | None:
    """The user's monthly budget in cents; None when they set none."""
    sql = "SELECT amount_cents FROM budgets WHERE user_id = :user_id"
    return (await conn.execute(text(sql), {"user_id": user_id})).scalar_one_or_none()


async def set_budget(conn: AsyncConnection, user_id: str, amount_cents: int) -> None:
    await conn.execute(
        text(
            "INSERT INTO budgets (user_id, amount_cents) VALUES (:user_id, :amount) ON CONFLICT (user_id) "
            "DO UPDATE SET amount_cents = EXCLUDED.amount_cents, updated_at = now()"
        ),
        {"user_id": user_id, "amount": amount_cents},
    )


async def spent_cents(conn: AsyncConnection, user_id: str, month: date) -> int:
    """What the user's cost records of the billing month starting ``month`` charged, in cents."""
    sql = "SELECT COALESCE(SUM(amount), 0) FROM cost_records WHERE user_id = :user_id AND billing_period = :month"
    return round((await conn.execute(text(sql), {"user_id": user_id, "month": month})).scalar_one() * 100)


async def committed_cents(conn: AsyncConnection, user_id: str) -> int:
    """The part of the estimates of the user's jobs not yet ended that is not yet charged, in cents."""
    sql = (
        "SELECT COALESCE(SUM(GREATEST(estimated_cents - charged_cents, 0)), 0) FROM job_charges "
        "WHERE user_id = :user_id AND NOT ended"
    )
    return int((await conn.execute(text(sql), {"user_id": user_id})).scalar_one())


async def request_stop(conn: AsyncConnection, job_id: str) -> bool:
    """Marks the job's stop as requested; False when it already was (or the job has ended)."""
    sql = (
        "UPDATE job_charges SET stop_requested = TRUE WHERE job_id = :job_id AND NOT stop_requested AND NOT ended "
        "RETURNING job_id"
    )
    return (await conn.execute(text(sql), {"job_id": job_id})).first() is not None
