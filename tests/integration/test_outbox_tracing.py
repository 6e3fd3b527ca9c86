"""W3C trace context through the outbox, against real PostgreSQL and NATS: an
outbox row keeps the trace that wrote it, the relay publishes it as the
``traceparent`` header, and the consumer's span continues that trace (the
trainer agent's event relay sends its events in the same way). The
spans are watched with the OTel SDK's in-memory exporter, through a provider
this module uses in place of the process's."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from nats.js.api import DeliverPolicy
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import text

from brightrun.events.v1 import events_pb2
from services.common import events, logs, tracing
from services.common.db import Database
from services.trainer_agent.relay import EventRelay


@pytest.fixture(scope="module")
def finished() -> Iterator[InMemorySpanExporter]:
    """Every span this process ends while the module runs, kept in memory (the process's provider is put back)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    previous = tracing.use(provider)
    yield exporter
    tracing.use(previous)


@pytest.fixture
async def db(settings, tmp_path):
    database = Database(settings.database_url, f"t_{uuid.uuid4().hex[:12]}")
    await database.migrate(tmp_path)
    yield database
    await database.close()


async def _consume_one(js, subject: str, seen: list) -> asyncio.Task:
    stop = asyncio.Event()

    async def handle(event: events_pb2.Event) -> None:
        seen.append((event.event_id, logs.current("trace_id"), tracing.current_traceparent()))
        stop.set()

    return asyncio.create_task(events.consume(js, stream="DATASETS", durable=f"trace-{uuid.uuid4().hex[:8]}",
                                              subjects=[subject], handler=handle, stop=stop))


async def test_an_event_written_in_a_trace_is_consumed_in_that_trace(settings, db, finished):
    nc, js = await events.connect(settings.nats_url, "tracing-test")
    subject = f"dataset.traced{uuid.uuid4().hex[:8]}"
    event = events.new_event(subject, producer="test", user_id=str(uuid.uuid4()), subject_id="x")
    with tracing.span("request", kind=SpanKind.SERVER) as request:
        written = tracing.current_traceparent()
        async with db.transaction() as conn:
            await events.add_to_outbox(conn, event)
    trace_id = format(request.get_span_context().trace_id, "032x")
    async with db.engine.connect() as conn:
        kept = (await conn.execute(text("SELECT traceparent FROM outbox WHERE event_id = :id"),
                                   {"id": event.event_id})).scalar()
    assert kept == written and logs.trace_id_from(kept) == trace_id

    seen: list = []
    consumer = await _consume_one(js, subject, seen)
    assert await events.OutboxRelay(db, js).flush() == 1
    await asyncio.wait_for(consumer, 30)
    await nc.close()

    [(event_id, logged_trace, handled_in)] = seen
    assert event_id == event.event_id
    # The handler runs in the writer's trace, and its log lines carry that trace id.
    assert logged_trace == trace_id and logs.trace_id_from(handled_in) == trace_id
    spans = {s.name: s for s in finished.get_finished_spans() if format(s.context.trace_id, "032x") == trace_id}
    publish, consume = spans[f"publish {subject}"], next(s for n, s in spans.items() if n.endswith(subject)
                                                            and s.kind == SpanKind.CONSUMER)
    assert publish.parent.span_id == request.get_span_context().span_id
    assert consume.parent.span_id == publish.context.span_id


async def test_an_event_written_outside_a_trace_carries_no_traceparent(settings, db):
    nc, js = await events.connect(settings.nats_url, "tracing-test")
    subject = f"dataset.untraced{uuid.uuid4().hex[:8]}"
    event = events.new_event(subject, producer="test", user_id=str(uuid.uuid4()), subject_id="x")
    async with db.transaction() as conn:
        await events.add_all_to_outbox(conn, [event])
    async with db.engine.connect() as conn:
        assert (await conn.execute(text("SELECT traceparent FROM outbox"))).scalar() is None
    assert await events.OutboxRelay(db, js).flush() == 1
    sub = await js.subscribe(subject, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
    msg = await sub.next_msg(timeout=10)
    await nc.close()
    assert events.traceparent_of(msg) is None and msg.headers["Nats-Msg-Id"] == event.event_id


async def test_the_agent_publishes_its_events_in_the_trace_it_sends_them_in(settings, finished):
    nc, js = await events.connect(settings.nats_url, "tracing-test")
    subject = f"trainer.traced{uuid.uuid4().hex[:8]}"
    sub = await js.subscribe(subject, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
    relay = EventRelay(js)
    relay.start()
    with tracing.span("assignment", kind=SpanKind.CONSUMER):
        sent_in = tracing.current_traceparent()
        mark = relay.send(events.new_event(subject, producer="test", user_id=str(uuid.uuid4()), subject_id="x"))
    assert await relay.wait_published(mark, 10)
    msg = await sub.next_msg(timeout=10)
    await relay.stop(5)
    await nc.close()
    assert sent_in and events.traceparent_of(msg) == sent_in


async def test_a_batch_consumer_links_the_trace_of_each_event_it_applies(settings, db, finished):
    nc, js = await events.connect(settings.nats_url, "tracing-test")
    subject = f"dataset.batched{uuid.uuid4().hex[:8]}"
    written = []
    for _ in range(2):
        with tracing.span("request", kind=SpanKind.SERVER) as request:
            async with db.transaction() as conn:
                event = events.new_event(subject, producer="test", user_id="u", subject_id="x")
                await events.add_to_outbox(conn, event)
        written.append(request.get_span_context().trace_id)
    assert await events.OutboxRelay(db, js).flush() == 2
    stop, applied = asyncio.Event(), []

    async def handle(batch: list[events_pb2.Event]) -> None:
        applied.extend(batch)
        if len(applied) == 2:
            stop.set()

    durable = f"trace-{uuid.uuid4().hex[:8]}"
    await asyncio.wait_for(events.consume_batches(js, stream="DATASETS", durable=durable, subjects=[subject],
                                                  handler=handle, stop=stop), 30)
    await nc.close()
    [batch] = [s for s in finished.get_finished_spans() if s.name.startswith(durable)]
    # Both arrived in one fetch: one span for the batch, linked to each publish of the two traces.
    assert batch.name == f"{durable} batch"
    assert sorted(link.context.trace_id for link in batch.links) == sorted(written)
