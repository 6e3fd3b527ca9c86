"""Sends pending webhook deliveries: signed POSTs, several at once (bounded
in all and per endpoint), each with a time limit, so a receiver that never
answers holds a few slots and delays no other; each attempt is logged and a
failure is retried on the RetryPolicy's schedule until a 2xx ends the
delivery or its window does.

A claimed delivery is leased (its next_attempt_at moved past the attempt's
time limit), so replicas never send it at once and one claimed by a process
that died is sent again once the lease has passed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta, timezone

import httpx
from sqlalchemy.engine import Row

from services.billing_svc import webhook_store
from services.billing_svc.webhooks import RetryPolicy, signed_headers
from services.common.cancelling import cancel_and_wait
from services.common.config import Settings
from services.common.db import Database

log = logging.getLogger(__name__)

# Attempts in flight at once, in all and to one endpoint (an endpoint with some in flight gets no more
# until they end, so one that never answers holds at most this many slots).
MAX_CONCURRENT = 16
MAX_PER_ENDPOINT = 4
# How often due deliveries are looked for (new ones and retries).
POLL_SECONDS = 0.25
# A claimed delivery is not taken again until its attempt's time limit and this much more have passed.
_LEASE_MARGIN_SECONDS = 30.0
_MAX_ERROR = 500


class WebhookSender:
    def __init__(self, db: Database, settings: Settings):
        self._db = db
        self._timeout = settings.webhook_timeout_seconds
        self._retry = RetryPolicy(settings.webhook_first_retry_seconds, settings.webhook_retry_seconds)

    async def run(self, stop: asyncio.Event) -> None:
        """Send due deliveries until ``stop`` is set; attempts in flight then are abandoned to their lease."""
        in_flight: dict[asyncio.Task, object] = {}  # attempt -> its endpoint's id
        ended = asyncio.Event()

        def done(task: asyncio.Task) -> None:
            in_flight.pop(task, None)
            ended.set()

        async with httpx.AsyncClient(timeout=self._timeout, follow_redirects=False) as client:
            try:
                while not stop.is_set():
                    ended.clear()
                    free = MAX_CONCURRENT - len(in_flight)
                    for row in await self._claim(free, list(set(in_flight.values()))) if free else []:
                        task = asyncio.create_task(self._attempt(client, row))
                        in_flight[task] = row.webhook_id
                        task.add_done_callback(done)
                    # Until an attempt ends (its endpoint may take more), stop, or the next look for due ones.
                    waits = [asyncio.ensure_future(ended.wait()), asyncio.ensure_future(stop.wait())]
                    await asyncio.wait(waits, timeout=POLL_SECONDS, return_when=asyncio.FIRST_COMPLETED)
                    for wait in waits:
                        wait.cancel()
            finally:
                await cancel_and_wait(*in_flight)

    async def _claim(self, limit: int, busy: list) -> list[Row]:
        now = datetime.now(timezone.utc)
        lease_until = now + timedelta(seconds=self._timeout + _LEASE_MARGIN_SECONDS)
        try:
            # engine.begin(), not Database.transaction(): nothing here goes to the outbox, so the relay is not woken.
            async with self._db.engine.begin() as conn:
                return await webhook_store.claim_due(
                    conn, now, lease_until, limit, per_endpoint=MAX_PER_ENDPOINT, busy=busy
                )
        except Exception:  # PostgreSQL away: the deliveries wait in it; the next round retries.
            log.exception("could not claim due webhook deliveries; retrying")
            return []

    async def _attempt(self, client: httpx.AsyncClient, row: Row) -> None:
        attempted_at = datetime.now(timezone.utc)
        headers = signed_headers(row.secret, str(row.notification_id), int(attempted_at.timestamp()), row.payload)
        started = time.monotonic()
        status_code, error = None, ""
        try:
            async with asyncio.timeout(self._timeout):
                # Streamed and never read: a receiver's answer body cannot fill memory.
                async with client.stream("POST", row.url, content=row.payload.encode(), headers=headers) as answer:
                    status_code = answer.status_code
        except TimeoutError:
            error = f"no answer within {self._timeout:g} s"
        except Exception as exc:  # whatever the receiver or the network did, this attempt failed
            error = f"{type(exc).__name__}: {exc}"[:_MAX_ERROR]
        duration_ms = round((time.monotonic() - started) * 1000)
        if status_code is not None and 200 <= status_code < 300:
            status, next_at = "succeeded", None
        else:
            next_at = None if row.final_attempt else self._retry.next_attempt(
                row.attempts + 1, row.created_at, datetime.now(timezone.utc)
            )
            status = "pending" if next_at else "failed"
        try:
            async with self._db.engine.begin() as conn:
                await webhook_store.record_attempt(
                    conn, row.id, attempted_at=attempted_at, status_code=status_code, error=error,
                    duration_ms=duration_ms, status=status, next_attempt_at=next_at,
                )
        except Exception:  # PostgreSQL away: the attempt is repeated once its lease has passed.
            log.exception("could not record an attempt of webhook delivery %s", row.id)
