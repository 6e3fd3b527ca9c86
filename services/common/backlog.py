"""What a service has not passed on yet, as gauges: its outbox's unpublished
events and its durable consumers' lag, sampled by the service's runtime.

Both are cheap to read: the outbox count uses the partial index on unpublished
rows, and JetStream keeps each consumer's counts.
"""

from __future__ import annotations

from collections.abc import Iterable

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from sqlalchemy import text

from services.common.db import Database
from services.common.metrics import CONSUMER_ACK_PENDING, CONSUMER_PENDING, OUTBOX_OLDEST_AGE, OUTBOX_UNPUBLISHED

# How often a service samples its backlog: a scrape sees values at most this old.
SAMPLE_SECONDS = 5.0

_OUTBOX = text(
    "SELECT count(*) AS unpublished, coalesce(extract(epoch FROM now() - min(created_at)), 0) AS oldest "
    "FROM outbox WHERE published_at IS NULL"
)


async def sample_outbox(db: Database, service: str) -> None:
    """Set ``service``'s outbox gauges from its database."""
    async with db.read() as conn:
        row = (await conn.execute(_OUTBOX)).one()
    OUTBOX_UNPUBLISHED.labels(service).set(row.unpublished)
    OUTBOX_OLDEST_AGE.labels(service).set(float(row.oldest))


async def sample_consumers(js: JetStreamContext, consumers: Iterable[tuple[str, str]]) -> None:
    """Set the lag gauges of each (stream, durable) consumer; one not created yet is skipped."""
    for stream, durable in consumers:
        try:
            info = await js.consumer_info(stream, durable)
        except NotFoundError:
            continue
        CONSUMER_PENDING.labels(stream, durable).set(info.num_pending or 0)
        CONSUMER_ACK_PENDING.labels(stream, durable).set(info.num_ack_pending or 0)
