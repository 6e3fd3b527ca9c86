"""Database rows and budget standings to ``brightrun.billing.v1`` messages, and notifications to webhook bodies."""

from __future__ import annotations

import json

from brightrun.billing.v1 import billing_pb2
from sqlalchemy.engine import Row

from services.billing_svc import webhooks
from services.billing_svc.budget import Standing

# The producer named on every event billing_svc publishes.
PRODUCER = "billing_svc"


def cost_record_message(row: Row) -> billing_pb2.CostRecord:
    record = billing_pb2.CostRecord(
        id=str(row.id),
        user_id=str(row.user_id),
        cost_type=row.cost_type,
        amount=round(float(row.amount), 2),
        billing_period=row.billing_period.isoformat(),
    )
    if row.job_id is not None:
        record.job_id = str(row.job_id)
    if row.details is not None:
        record.details.update(_json(row.details))
    record.recorded_at.FromDatetime(row.recorded_at)
    return record


def notification_message(row: Row) -> billing_pb2.Notification:
    notification = billing_pb2.Notification(
        id=str(row.id),
        user_id=str(row.user_id),
        type=row.type,
        title=row.title,
        message=row.message,
        priority=row.priority,
        read=row.read,
    )
    if row.action_url is not None:
        notification.action_url = row.action_url
    if row.metadata is not None:
        notification.metadata.update(_json(row.metadata))
    notification.created_at.FromDatetime(row.created_at)
    return notification


def _json(value) -> dict:
    # asyncpg hands JSONB back as text unless a codec is registered.
    return json.loads(value) if isinstance(value, str) else value


def budget_message(standing: Standing) -> billing_pb2.Budget:
    budget = billing_pb2.Budget(
        month=standing.month.isoformat(),
        spent=standing.spent_cents / 100,
        committed=standing.committed_cents / 100,
    )
    if standing.budget_cents is not None:
        budget.amount = standing.budget_cents / 100
        budget.remaining = standing.remaining_cents / 100
    return budget


def webhook_body(notification: Row, event_type: str) -> str:
    """The JSON body that tells ``notification`` to a webhook endpoint as ``event_type``."""
    metadata = _json(notification.metadata) if notification.metadata is not None else {}
    return webhooks.payload(event_type, notification.created_at, notification.title, notification.message,
                            notification.action_url, metadata)


def webhook_message(row: Row) -> billing_pb2.Webhook:
    webhook = billing_pb2.Webhook(
        id=str(row.id),
        user_id=str(row.user_id),
        url=row.url,
        event_types=row.event_types,
        description=row.description,
        enabled=row.enabled,
    )
    webhook.created_at.FromDatetime(row.created_at)
    webhook.updated_at.FromDatetime(row.updated_at)
    return webhook


def delivery_message(row: Row, attempts: list[Row]) -> billing_pb2.WebhookDelivery:
    delivery = billing_pb2.WebhookDelivery(
        id=str(row.id),
        webhook_id=str(row.webhook_id),
        event_type=row.event_type,
        message_id=str(row.notification_id),
        status=row.status,
        payload=row.payload,
        attempts=[_attempt_message(attempt) for attempt in attempts],
    )
    if row.status == "pending" and row.next_attempt_at is not None:
        delivery.next_attempt_at.FromDatetime(row.next_attempt_at)
    delivery.created_at.FromDatetime(row.created_at)
    return delivery


def _attempt_message(row: Row) -> billing_pb2.WebhookAttempt:
    attempt = billing_pb2.WebhookAttempt(error=row.error, duration_ms=row.duration_ms)
    if row.status_code is not None:
        attempt.status_code = row.status_code
    attempt.attempted_at.FromDatetime(row.attempted_at)
    return attempt
