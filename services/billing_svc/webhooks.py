"""Webhook rules: which notifications are sent as which webhook event types,
what an endpoint may be, its secret, the Standard Webhooks signature, the
body, and the retry schedule. Pure: no I/O.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

from services.common.text import has_control_characters

# Notification type (notices.py, budget.py) -> the webhook event type it is sent as.
# Notifications of any other type (job_queued, job_started) are not sent.
EVENT_TYPES = {
    "job_completed": "job.succeeded",
    "job_failed": "job.failed",
    "job_cancelled": "job.cancelled",
    "dataset_ready": "dataset.ready",
    "dataset_error": "dataset.failed",
    "model_ready": "model.ready",
    "budget_warning": "budget.alert",
    "budget_exceeded": "budget.alert",
}
WEBHOOK_EVENT_TYPES = tuple(dict.fromkeys(EVENT_TYPES.values()))

MAX_URL_LENGTH = 2048
MAX_DESCRIPTION_LENGTH = 500
SECRET_PREFIX = "whsec_"
_SECRET_BYTES = 32
# Retry delays as multiples of the first: with 5 s, 5 s, 30 s, 2 min, 10 min, 30 min, then hourly.
_BACKOFF = (1, 6, 24, 120, 360, 720)


def url_problems(url: str, *, allow_http: bool) -> list[str]:
    """Why ``url`` cannot receive webhooks; empty when it can."""
    if not url:
        return ["Required: the https URL events are POSTed to"]
    if len(url) > MAX_URL_LENGTH:
        return [f"Must be at most {MAX_URL_LENGTH} characters"]
    if has_control_characters(url) or any(ch.isspace() for ch in url):
        return ["Must not contain spaces or control characters; percent-encode them"]
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        return [f"Is not a URL: {exc}"]
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes:
        allowed = "https or http" if allow_http else "https (plain http only where BRIGHTRUN_WEBHOOKS_ALLOW_HTTP is on)"
        return [f"Must be an absolute {allowed} URL, e.g. https://example.com/hooks"]
    if not parts.hostname:
        return ["Must name a host, e.g. https://example.com/hooks"]
    if parts.username is not None or parts.password is not None:
        return ["Must not carry credentials (user:password@); verify requests by their signature instead"]
    return []


def event_type_problems(event_types: list[str]) -> list[str]:
    """Why ``event_types`` cannot be subscribed to; empty when they can."""
    if not event_types:
        return [f"Required: one or more of {', '.join(WEBHOOK_EVENT_TYPES)}"]
    unknown = [t for t in event_types if t not in WEBHOOK_EVENT_TYPES]
    return [f"Unknown event type {t!r}; use one of {', '.join(WEBHOOK_EVENT_TYPES)}" for t in unknown]


def description_problems(description: str) -> list[str]:
    if len(description) > MAX_DESCRIPTION_LENGTH:
        return [f"Must be at most {MAX_DESCRIPTION_LENGTH} characters"]
    return []


def new_secret() -> str:
    """``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode("ascii")


def signature(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """The webhook-signature header: ``v1,`` + base64 HMAC-SHA256 of ``{id}.{timestamp}.{body}``
    keyed by the secret's decoded bytes (Standard Webhooks)."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    digest = hmac.new(key, f"{message_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(secret: str, message_id: str, timestamp: int, body: str) -> dict[str, str]:
    """The headers of one attempt; ``timestamp`` is the attempt's time in Unix seconds."""
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, message_id, timestamp, body),
    }


def payload(event_type: str, created_at: datetime, title: str, message: str, action_url: str | None,
            metadata: dict) -> str:
    """The body sent: ``{type, timestamp, data}``; data is the notification's metadata
    (ids, figures) with its title, message and action_url."""
    data = {**metadata, "title": title, "message": message, "action_url": action_url}
    timestamp = created_at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    return json.dumps({"type": event_type, "timestamp": timestamp, "data": data}, separators=(",", ":"))


@dataclass(frozen=True)
class RetryPolicy:
    """When a failed attempt is tried again: ``first_retry_seconds`` after the first failure,
    growing as _BACKOFF to 720 times that, until ``window_seconds`` after the delivery was queued."""

    first_retry_seconds: float
    window_seconds: float

    def next_attempt(self, failed_attempts: int, queued_at: datetime, now: datetime) -> datetime | None:
        """When to try again after the ``failed_attempts``-th failure; None once past the window."""
        step = _BACKOFF[min(failed_attempts, len(_BACKOFF)) - 1]
        due = now + timedelta(seconds=self.first_retry_seconds * step)
        return due if due <= queued_at + timedelta(seconds=self.window_seconds) else None
