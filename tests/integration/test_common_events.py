"""The shared outbox, relay and consumer against real PostgreSQL and NATS,
and the consumer's dead-letter parking of what it can never handle."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from brightrun.events.v1 import events_pb2
from services.common import events
from services.common.db import Database, claim_event, refused_value


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


async def test_the_relay_stops_when_a_commit_wakes_it_in_the_turn_of_its_stop(settings, db):
    """A commit's wake-up and the stop's cancel in one turn of the loop: Python 3.11's asyncio.wait_for
    hands the relay the wake-up and drops the cancel; the stop still ends (CI runs hung here)."""
    nc, js = await events.connect(settings.nats_url, "test")
    relay = events.OutboxRelay(db, js)
    relay.start()
    try:
        await asyncio.sleep(0.2)  # its first round done: it waits for a commit
        db.committed.set()
        await asyncio.sleep(0)
        await asyncio.wait_for(relay.stop(), 10.0)
    finally:
        await nc.close()


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


def _subject() -> str:
    """A subject of the BILLING stream that no other test publishes on or reads
    (tests that read a whole stream would trip over these tests' garbage)."""
    return f"billing.test-{uuid.uuid4().hex[:8]}"


def _envelope(subject: str, subject_id: str) -> bytes:
    event = events.new_event(subject, producer="test", user_id=str(uuid.uuid4()), subject_id=subject_id)
    return event.SerializeToString()


async def _publish_raw(js, subject: str, data: bytes) -> None:
    await events.publish(js, subject, data, str(uuid.uuid4()))


async def _parked(js, consumer: str, count: int, timeout: float = 20.0) -> list:
    """The messages parked by ``consumer`` once there are ``count`` (exactly: checked after)."""
    subject = f"deadletter.{consumer}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stored = (await js.stream_info("DEADLETTER", subjects_filter=subject)).state.subjects or {}
        if stored.get(subject, 0) >= count:
            break
        await asyncio.sleep(0.1)
    assert stored.get(subject, 0) == count, stored
    sub = await js.pull_subscribe(subject, stream="DEADLETTER")
    try:
        return await sub.fetch(count, timeout=5.0)
    finally:
        await sub.unsubscribe()


async def _wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition never held"
        await asyncio.sleep(0.1)


async def test_undecodable_and_unappliable_messages_are_parked_and_the_next_one_is_handled(settings, db):
    nc, js = await events.connect(settings.nats_url, "test")
    subject, durable = _subject(), f"test-{uuid.uuid4().hex[:8]}"
    handled: list[str] = []
    stop = asyncio.Event()

    async def handle(event: events_pb2.Event) -> None:
        if event.subject_id == "no-such-thing":
            raise events.Unappliable("names nothing this consumer knows")
        async with db.transaction() as conn:  # an id that is not a UUID: PostgreSQL refuses it
            await conn.execute(text("INSERT INTO things (id, n) VALUES (:id, 1)"), {"id": event.subject_id})
        handled.append(event.subject_id)

    good = str(uuid.uuid4())
    await _publish_raw(js, subject, b"\xff garbage")
    await _publish_raw(js, subject, _envelope(subject, "no-such-thing"))
    await _publish_raw(js, subject, _envelope(subject, "not-a-uuid"))
    await _publish_raw(js, subject, _envelope(subject, good))
    consumer = asyncio.create_task(
        events.consume(js, stream="BILLING", durable=durable, subjects=[subject], handler=handle, stop=stop)
    )
    await _wait_for(lambda: handled)
    parked = await _parked(js, durable, 3)
    stop.set()
    await consumer
    info = await js.consumer_info("BILLING", durable)
    await nc.close()

    assert handled == [good]
    reasons = [m.headers["BrightRun-Reason"] for m in parked]
    assert reasons[0].startswith("undecodable")
    assert reasons[1].startswith(f"unappliable {subject}: names nothing")
    assert reasons[2].startswith(f"unappliable {subject}:") and "not-a-uuid" in reasons[2]
    assert parked[0].data == b"\xff garbage"
    for message in parked:
        assert message.headers["BrightRun-Subject"] == subject
        assert message.headers["BrightRun-Stream"] == "BILLING"
        assert message.headers["BrightRun-Consumer"] == durable
        assert message.headers["BrightRun-Delivered"] == "1"
    assert len({m.headers["BrightRun-Sequence"] for m in parked}) == 3
    assert REGISTRY.get_sample_value("brightrun_messages_parked_total", {"consumer": durable}) == 3
    # Terminated, not left to be redelivered.
    assert (info.num_pending, info.num_ack_pending) == (0, 0)


async def test_a_handler_that_always_fails_is_parked_after_max_deliver_and_does_not_hold_back_the_rest(settings, db):
    nc, js = await events.connect(settings.nats_url, "test")
    subject, durable = _subject(), f"test-{uuid.uuid4().hex[:8]}"
    attempts: list[int] = []
    handled: list[str] = []
    stop = asyncio.Event()
    bad = str(uuid.uuid4())

    async def handle(event: events_pb2.Event) -> None:
        if event.subject_id == bad:
            attempts.append(1)
            raise RuntimeError("the database is having a bad day")
        handled.append(event.subject_id)

    good = str(uuid.uuid4())
    await _publish_raw(js, subject, _envelope(subject, bad))
    await _publish_raw(js, subject, _envelope(subject, good))
    consumer = asyncio.create_task(
        events.consume(js, stream="BILLING", durable=durable, subjects=[subject], handler=handle, stop=stop,
                       max_deliver=3)
    )
    # The good message does not wait for the bad one's redeliveries (1 s, then 2 s).
    await _wait_for(lambda: handled, timeout=1.0)
    parked = await _parked(js, durable, 1)
    stop.set()
    await consumer
    info = await js.consumer_info("BILLING", durable)
    await nc.close()

    assert handled == [good] and len(attempts) == 3
    assert parked[0].headers["BrightRun-Delivered"] == "3"
    assert REGISTRY.get_sample_value("brightrun_consumer_redeliveries_total", {"consumer": durable}) == 2
    assert parked[0].headers["BrightRun-Reason"].startswith("failed 3 times: RuntimeError(")
    assert events_pb2.Event.FromString(parked[0].data).subject_id == bad
    assert (info.num_pending, info.num_ack_pending) == (0, 0)


async def test_parking_the_same_message_again_keeps_one_copy(settings):
    nc, js = await events.connect(settings.nats_url, "test")
    subject, consumer = _subject(), f"test-{uuid.uuid4().hex[:8]}"
    await _publish_raw(js, subject, b"\xff garbage")
    # Two deliveries of one stream message, as a process that died after
    # parking it but before terminating it would see on its restart.
    deliveries = []
    for _ in range(2):
        sub = await js.pull_subscribe(subject, stream="BILLING")
        deliveries += await sub.fetch(1, timeout=5.0)
        await sub.unsubscribe()
    for msg in deliveries:
        await events.dead_letter(js, msg, consumer=consumer, reason="undecodable:\nfirst line\nsecond line")
    parked = await _parked(js, consumer, 1)
    await nc.close()

    assert parked[0].headers["Nats-Msg-Id"] == f"BILLING:{deliveries[0].metadata.sequence.stream}:{consumer}"
    assert parked[0].headers["BrightRun-Reason"] == "undecodable: first line second line"
    assert REGISTRY.get_sample_value("brightrun_messages_parked_total", {"consumer": consumer}) == 1


async def test_a_refused_value_is_told_apart_from_other_database_errors(db):
    async def error_of(sql: str, **params) -> Exception:
        with pytest.raises(Exception) as info:
            async with db.transaction() as conn:
                await conn.execute(text(sql), params)
        return info.value

    # Refused by PostgreSQL itself (SQLSTATE 22P02) and by asyncpg before sending: poison.
    assert refused_value(await error_of("SELECT CAST(CAST(:v AS TEXT) AS INT)", v="seven"))
    assert refused_value(await error_of("INSERT INTO things (id, n) VALUES (:id, 1)", id="not-a-uuid"))
    # Not about a value: a retry, or a fixed deployment, may succeed.
    assert not refused_value(await error_of("SELECT * FROM no_such_table"))
    assert not refused_value(RuntimeError("the database is having a bad day"))


async def test_a_batch_is_one_transaction_acked_together_and_its_poison_is_parked_while_the_rest_commit(settings, db):
    nc, js = await events.connect(settings.nats_url, "test")
    subject, durable = _subject(), f"test-{uuid.uuid4().hex[:8]}"
    calls: list[int] = []
    stop = asyncio.Event()

    async def handle(batch: list[events_pb2.Event]) -> None:
        calls.append(len(batch))
        async with db.transaction() as conn:
            for event in batch:
                if event.subject_id == "no-such-thing":
                    raise events.Unappliable("names nothing this consumer knows")
                await conn.execute(text("INSERT INTO things (id, n) VALUES (:id, 1)"), {"id": event.subject_id})

    good = [str(uuid.uuid4()) for _ in range(6)]
    await _publish_raw(js, subject, _envelope(subject, good[0]))
    await _publish_raw(js, subject, b"\xff garbage")
    await _publish_raw(js, subject, _envelope(subject, good[1]))
    await _publish_raw(js, subject, _envelope(subject, "no-such-thing"))
    await _publish_raw(js, subject, _envelope(subject, "not-a-uuid"))  # PostgreSQL refuses it
    for subject_id in good[2:]:
        await _publish_raw(js, subject, _envelope(subject, subject_id))
    consumer = asyncio.create_task(events.consume_batches(
        js, stream="BILLING", durable=durable, subjects=[subject], handler=handle, stop=stop, batch=100))
    parked = await _parked(js, durable, 3)

    async def stored() -> int:
        async with db.read() as conn:
            return (await conn.execute(text("SELECT count(*) FROM things"))).scalar_one()

    deadline = time.monotonic() + 20
    while await stored() < len(good):
        assert time.monotonic() < deadline, "the good messages were never stored"
        await asyncio.sleep(0.1)
    # The whole batch first (the garbage parked before it), then each of its messages alone.
    assert calls == [8] + [1] * 8
    later = [str(uuid.uuid4()) for _ in range(5)]
    calls.clear()
    for subject_id in later:
        await _publish_raw(js, subject, _envelope(subject, subject_id))
    while await stored() < len(good) + len(later):
        assert time.monotonic() < deadline, "the later batch was never stored"
        await asyncio.sleep(0.1)
    stop.set()
    await consumer
    info = await js.consumer_info("BILLING", durable)
    await nc.close()

    reasons = [m.headers["BrightRun-Reason"] for m in parked]
    assert reasons[0].startswith("undecodable")
    assert reasons[1].startswith(f"unappliable {subject}: names nothing")
    assert "not-a-uuid" in reasons[2]
    # Clean batches after it: each message handled once, none alone again unless it came alone.
    assert sum(calls) == len(later)
    assert (info.num_pending, info.num_ack_pending) == (0, 0)
