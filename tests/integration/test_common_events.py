"""The shared outbox, relay and consumer against real PostgreSQL and NATS."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text

from brightrun.events.v1 import events_pb2
from services.common import events
from services.common.db import Database, claim_event


@pytest.fixture
async def db(settings, tmp_path):
    database = Database(settings.database_url, f"t_{uuid.uuid4().hex[:12]}")
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "0001_things.sql").write_text("CREATE TABLE things (id UUID PRIMARY KEY, n INT NOT NULL);")
    assert await database.migrate(migrations) == ["0001_things"]
    assert await database.migrate(migrations) == []
    yield database
    await database.close()


async def test_an_event_committed_with_its_state_change_is_published_once(settings, db):
    nc, js = await events.connect(settings.nats_url, "test")
    relay = events.OutboxRelay(db, js)
    relay.start()
    received: list[events_pb2.Event] = []
    stop = asyncio.Event()

    async def handle(event: events_pb2.Event) -> None:
        async with db.transaction() as conn:
            if await claim_event(conn, "test-consumer", event.event_id):
                await conn.execute(text("INSERT INTO things (id, n) VALUES (:id, 1)"), {"id": event.subject_id})
                received.append(event)

    subject_id = str(uuid.uuid4())
    consumer = asyncio.create_task(
        events.consume(
            js,
            stream="DATASETS",
            durable=f"test-{uuid.uuid4().hex[:8]}",
            subjects=["dataset.deleted"],
            handler=handle,
            stop=stop,
        )
    )
    event = events.new_event("dataset.deleted", producer="test", user_id=str(uuid.uuid4()), subject_id=subject_id)
    async with db.transaction() as conn:
        await events.add_to_outbox(conn, event)
    # The same event published again (a relay that crashed after publishing) is dropped by JetStream...
    await events.publish(js, event.type, event.SerializeToString(), event.event_id)
    # ...and the same event under a new message id is skipped by the consumer's claim.
    await events.publish(js, event.type, event.SerializeToString(), str(uuid.uuid4()))
    for _ in range(100):
        async with db.engine.connect() as conn:
            published = (await conn.execute(text("SELECT count(*) FROM outbox WHERE published_at IS NOT NULL"))).scalar()
        if published == 1 and received:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)
    stop.set()
    await consumer
    await relay.stop()
    await nc.close()
    assert [e.event_id for e in received] == [event.event_id]
    async with db.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM things"))).scalar() == 1


async def test_a_failed_transaction_writes_neither_state_nor_event(db):
    event = events.new_event("dataset.deleted", producer="test", user_id=str(uuid.uuid4()), subject_id="x")
    with pytest.raises(RuntimeError):
        async with db.transaction() as conn:
            await conn.execute(text("INSERT INTO things (id, n) VALUES (:id, 1)"), {"id": str(uuid.uuid4())})
            await events.add_to_outbox(conn, event)
            raise RuntimeError("the handler failed half-way")
    async with db.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM things"))).scalar() == 0
        assert (await conn.execute(text("SELECT count(*) FROM outbox"))).scalar() == 0
