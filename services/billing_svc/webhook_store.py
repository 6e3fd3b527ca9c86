"""The SQL of webhooks: endpoints scoped by user id, deliveries queued per
endpoint and notification, and their attempts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing_svc.messages import webhook_body
from services.billing_svc.webhooks import EVENT_TYPES
from services.common.paging import Keyset, Page

_WEBHOOK_COLUMNS = "id, user_id, url, event_types, description, enabled, created_at, updated_at"
# The fields UpdateWebhook may change.
UPDATABLE = ("url", "event_types", "description", "enabled")


async def insert_webhook(conn: AsyncConnection, user_id: str, fields: dict, secret: str,
                         request_id: str | None, fingerprint: str | None) -> Row | None:
    """The new endpoint with its secret; None when the user already used ``request_id``."""
    result = await conn.execute(
        text(
            "INSERT INTO webhooks (user_id, url, event_types, description, enabled, secret, request_id, "
            "request_fingerprint) VALUES (:user_id, :url, :event_types, :description, :enabled, :secret, "
            ":request_id, :fingerprint) ON CONFLICT (user_id, request_id) WHERE request_id IS NOT NULL DO NOTHING "
            f"RETURNING {_WEBHOOK_COLUMNS}, secret"
        ),
        {"user_id": user_id, **fields, "secret": secret, "request_id": request_id, "fingerprint": fingerprint},
    )
    return result.first()


async def webhook_by_request(conn: AsyncConnection, user_id: str, request_id: str) -> Row | None:
    """The endpoint the user created with ``request_id``, with its secret and request fingerprint."""
    sql = (f"SELECT {_WEBHOOK_COLUMNS}, secret, request_fingerprint FROM webhooks "
           "WHERE user_id = :user_id AND request_id = :request_id")
    return (await conn.execute(text(sql), {"user_id": user_id, "request_id": request_id})).first()


async def get_webhook(conn: AsyncConnection, user_id: str, webhook_id: str) -> Row | None:
    sql = f"SELECT {_WEBHOOK_COLUMNS} FROM webhooks WHERE id = :id AND user_id = :user_id"
    return (await conn.execute(text(sql), {"id": webhook_id, "user_id": user_id})).first()


# Newest first, served by webhooks_user_created_id and webhook_deliveries_webhook_created_id (migration 0007).
WEBHOOK_ORDER = Keyset((("created_at", "timestamptz"), ("id", "uuid")))
DELIVERY_ORDER = Keyset((("created_at", "timestamptz"), ("id", "uuid")))


async def list_webhooks(conn: AsyncConnection, user_id: str, page: Page) -> list[Row]:
    """Newest first; one row more than the page to tell whether another page follows."""
    order = WEBHOOK_ORDER
    sql = f"SELECT {_WEBHOOK_COLUMNS} FROM webhooks WHERE user_id = :user_id{order.after(page)}{order.window(page)}"
    return list(await conn.execute(text(sql), {"user_id": user_id, **order.params(page)}))


async def webhook_count(conn: AsyncConnection, user_id: str) -> int:
    sql = "SELECT count(*) FROM webhooks WHERE user_id = :user_id"
    return (await conn.execute(text(sql), {"user_id": user_id})).scalar_one()


async def update_webhook(conn: AsyncConnection, user_id: str, webhook_id: str, changes: dict) -> Row | None:
    """The endpoint with ``changes`` (keys from UPDATABLE) applied; None when the user has no such endpoint."""
    assignments = "".join(f"{name} = :{name}, " for name in UPDATABLE if name in changes)
    sql = (f"UPDATE webhooks SET {assignments}updated_at = now() WHERE id = :id AND user_id = :user_id "
           f"RETURNING {_WEBHOOK_COLUMNS}")
    return (await conn.execute(text(sql), {**changes, "id": webhook_id, "user_id": user_id})).first()


async def delete_webhook(conn: AsyncConnection, user_id: str, webhook_id: str) -> bool:
    sql = "DELETE FROM webhooks WHERE id = :id AND user_id = :user_id RETURNING id"
    return (await conn.execute(text(sql), {"id": webhook_id, "user_id": user_id})).first() is not None


async def queue_deliveries(conn: AsyncConnection, notification: Row) -> None:
    """One pending delivery of ``notification`` per enabled endpoint of its user subscribed to its event type;
    none for a notification type that is not sent, and none twice for one endpoint."""
    event_type = EVENT_TYPES.get(notification.type)
    if event_type is None:
        return
    await conn.execute(
        text(
            "INSERT INTO webhook_deliveries (webhook_id, notification_id, event_type, payload, next_attempt_at) "
            "SELECT id, :notification_id, :event_type, :payload, now() FROM webhooks "
            "WHERE user_id = :user_id AND enabled AND :event_type = ANY(event_types) "
            "ON CONFLICT (webhook_id, notification_id) DO NOTHING"
        ),
        {"notification_id": notification.id, "event_type": event_type, "payload": webhook_body(notification, event_type),
         "user_id": notification.user_id},
    )


async def list_deliveries(conn: AsyncConnection, webhook_id: str, page: Page) -> list[Row]:
    """Newest first; one row more than the page to tell whether another page follows."""
    order = DELIVERY_ORDER
    sql = f"SELECT * FROM webhook_deliveries WHERE webhook_id = :webhook_id{order.after(page)}{order.window(page)}"
    return list(await conn.execute(text(sql), {"webhook_id": webhook_id, **order.params(page)}))


async def delivery_count(conn: AsyncConnection, webhook_id: str) -> int:
    sql = "SELECT count(*) FROM webhook_deliveries WHERE webhook_id = :webhook_id"
    return (await conn.execute(text(sql), {"webhook_id": webhook_id})).scalar_one()


async def attempts_of(conn: AsyncConnection, delivery_ids: list) -> dict:
    """Delivery id -> its attempts, oldest first."""
    sql = "SELECT * FROM webhook_attempts WHERE delivery_id = ANY(:ids) ORDER BY attempted_at, id"
    attempts: dict = {delivery_id: [] for delivery_id in delivery_ids}
    for row in await conn.execute(text(sql), {"ids": delivery_ids}):
        attempts[row.delivery_id].append(row)
    return attempts


async def redeliver(conn: AsyncConnection, webhook_id: str, delivery_id: str) -> Row | None:
    """The delivery pending with an attempt due now; a delivery that had ended gets that one attempt only.
    None when the endpoint has no such delivery."""
    sql = (
        "UPDATE webhook_deliveries SET final_attempt = (status <> 'pending'), status = 'pending', "
        "next_attempt_at = now() WHERE id = :id AND webhook_id = :webhook_id RETURNING *"
    )
    return (await conn.execute(text(sql), {"id": delivery_id, "webhook_id": webhook_id})).first()


async def claim_due(conn: AsyncConnection, now: datetime, lease_until: datetime, limit: int, *,
                    per_endpoint: int, busy: list) -> list[Row]:
    """Up to ``limit`` pending deliveries due by ``now`` to enabled endpoints, at most ``per_endpoint`` of one
    endpoint and none of the endpoints in ``busy``, oldest due first, with the endpoint's URL and secret and how
    many attempts they had; each is leased to the caller until ``lease_until``."""
    sql = (
        "WITH candidates AS (SELECT d.id, d.webhook_id, d.next_attempt_at FROM webhook_deliveries d "
        "  JOIN webhooks w ON w.id = d.webhook_id "
        "  WHERE d.status = 'pending' AND d.next_attempt_at <= :now AND w.enabled AND d.webhook_id <> ALL(:busy) "
        "  ORDER BY d.next_attempt_at LIMIT :scan FOR UPDATE OF d SKIP LOCKED), "
        "due AS (SELECT id FROM (SELECT id, next_attempt_at, "
        "  row_number() OVER (PARTITION BY webhook_id ORDER BY next_attempt_at) AS nth FROM candidates) c "
        "  WHERE nth <= :per_endpoint ORDER BY next_attempt_at LIMIT :limit) "
        "UPDATE webhook_deliveries d SET next_attempt_at = :lease_until FROM due, webhooks w "
        "WHERE d.id = due.id AND w.id = d.webhook_id "
        "RETURNING d.id, d.webhook_id, d.notification_id, d.payload, d.final_attempt, d.created_at, w.url, "
        "w.secret, (SELECT count(*) FROM webhook_attempts a WHERE a.delivery_id = d.id) AS attempts"
    )
    params = {"now": now, "lease_until": lease_until, "limit": limit, "scan": limit * per_endpoint,
              "per_endpoint": per_endpoint, "busy": busy}
    return list(await conn.execute(text(sql), params))


async def record_attempt(conn: AsyncConnection, delivery_id, *, attempted_at: datetime, status_code: int | None,
                         error: str, duration_ms: int, status: str, next_attempt_at: datetime | None) -> None:
    """Log one attempt and set where the delivery stands after it."""
    await conn.execute(
        text(
            "INSERT INTO webhook_attempts (delivery_id, attempted_at, status_code, error, duration_ms) "
            "VALUES (:id, :attempted_at, :status_code, :error, :duration_ms)"
        ),
        {"id": delivery_id, "attempted_at": attempted_at, "status_code": status_code, "error": error,
         "duration_ms": duration_ms},
    )
    await conn.execute(
        text("UPDATE webhook_deliveries SET status = :status, next_attempt_at = :next WHERE id = :id"),
        {"id": delivery_id, "status": status, "next": next_attempt_at},
    )
