"""Events on NATS JetStream: the envelope, the streams, the transactional
outbox and its relay, and durable consumers.

A producer writes its state change and its event in one transaction
(:func:`add_to_outbox`); :class:`OutboxRelay` publishes committed rows with
``Nats-Msg-Id`` = event id (and the ``traceparent`` of the trace that wrote
the row, which consumers continue: ``services.common.tracing``), so a crash
between commit and publish loses nothing and a re-publish is dropped by
JetStream. :func:`consume` runs a
durable pull consumer whose handler acks only after its own commit, and
parks a message it can never handle on the DEADLETTER stream
(:func:`dead_letter`) so that one bad message never stops the ones after it.
:func:`consume_batches` is the same consumer for a high-rate stream (trainer
metrics): its handler applies hundreds of messages in one transaction, they
are acked together after it commits, and a batch that fails is applied again
one message at a time, so only the bad message is parked or redelivered.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone

import nats
from google.protobuf.message import DecodeError
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, AckPolicy, DeliverPolicy, StreamConfig, RetentionPolicy
from nats.js.errors import NotFoundError
from opentelemetry.trace import SpanKind
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from brightrun.events.v1 import events_pb2
from services.common import tracing
from services.common.cancelling import cancel_and_wait
from services.common.db import Database, refused_value
from services.common.metrics import CONSUMER_REDELIVERIES, PARKED_MESSAGES
from services.common.nats_access import inbox_prefix
from services.common.startup import StartupError, without_password

log = logging.getLogger(__name__)

# Stream name -> subjects. ASSIGN is a work queue: a message is removed once
# an agent acks it, and each assignment goes to one agent.
STREAMS: dict[str, tuple[list[str], RetentionPolicy]] = {
    "DATASETS": (["dataset.>"], RetentionPolicy.LIMITS),
    "JOBS": (["job.>"], RetentionPolicy.LIMITS),
    "ARTIFACTS": (["artifact.>"], RetentionPolicy.LIMITS),
    "TRAINER": (["trainer.>"], RetentionPolicy.LIMITS),
    "BILLING": (["billing.>"], RetentionPolicy.LIMITS),
    "ASSIGN": (["assign.>"], RetentionPolicy.WORK_QUEUE),
    # Messages a consumer gave up on, kept with why for an operator to read or replay.
    "DEADLETTER": (["deadletter.>"], RetentionPolicy.LIMITS),
}

# What an ASSIGN message asks for, when it is not a TrainingAssignment: the header
# names its kind (a GenerationAssignment is "generate"); absent, it is training.
ASSIGNMENT_KIND_HEADER = "BrightRun-Kind"
GENERATION_KIND = "generate"


def assignment_kind(msg: Msg) -> str:
    """The kind of an ASSIGN message: its ASSIGNMENT_KIND_HEADER, or "training" without one."""
    return (msg.headers or {}).get(ASSIGNMENT_KIND_HEADER, "training")


# A header value is one line; a longer reason is cut (the log has it whole).
_MAX_REASON = 1000
# How long the relay waits for JetStream's answers to one round of publishes.
_RELAY_ANSWERS_S = 10.0
# Redelivery after a handler error waits 1, 2, 4 ... seconds, at most this.
_MAX_REDELIVERY_DELAY = 30.0

Handler = Callable[[events_pb2.Event], Awaitable[None]]
BatchHandler = Callable[[list[events_pb2.Event]], Awaitable[None]]
# Called by the outbox relay with each row's subject and payload once JetStream took it.
Mirror = Callable[[str, bytes], Awaitable[None]]


class Unappliable(Exception):
    """Raised by a handler for an event that no redelivery can apply (a
    payload of the wrong kind, an id that is not one): the consumer parks it at once."""


def new_event(type_: str, *, producer: str, user_id: str, subject_id: str, **payload) -> events_pb2.Event:
    """An envelope with a fresh id; ``payload`` is one keyword naming the oneof field."""
    event = events_pb2.Event(
        event_id=str(uuid.uuid4()), type=type_, producer=producer, user_id=user_id, subject_id=subject_id, **payload
    )
    event.occurred_at.FromDatetime(datetime.now(timezone.utc))
    return event


async def add_to_outbox(conn: AsyncConnection, event: events_pb2.Event) -> None:
    """Write ``event`` in the caller's transaction; the relay publishes it after commit."""
    await add_message_to_outbox(conn, event.type, event.SerializeToString(), event.event_id)


async def add_all_to_outbox(conn: AsyncConnection, batch: list[events_pb2.Event]) -> None:
    """:func:`add_to_outbox` for many events, in their order, in one statement."""
    if batch:
        await conn.execute(
            text("INSERT INTO outbox (event_id, subject, payload, traceparent) "
                 "SELECT event_id, subject, payload, :traceparent FROM "
                 "unnest(CAST(:ids AS UUID[]), CAST(:subjects AS TEXT[]), CAST(:payloads AS BYTEA[])) "
                 "WITH ORDINALITY AS o(event_id, subject, payload, n) ORDER BY n"),
            {"ids": [e.event_id for e in batch], "subjects": [e.type for e in batch],
             "payloads": [e.SerializeToString() for e in batch], "traceparent": tracing.current_traceparent()},
        )


async def add_message_to_outbox(conn: AsyncConnection, subject: str, data: bytes, message_id: str) -> None:
    """Write a message that is not an Event (a training assignment) in the caller's transaction.

    ``message_id`` is a UUID string; it becomes the ``Nats-Msg-Id``, so derive
    it from the resource (uuid5) when a retry must not publish twice. The row
    keeps the active span's ``traceparent``, which the relay publishes as a
    header, so the message's consumers continue the trace that wrote it.
    """
    await conn.execute(
        text("INSERT INTO outbox (event_id, subject, payload, traceparent) "
             "VALUES (:id, :subject, :payload, :traceparent)"),
        {"id": message_id, "subject": subject, "payload": data, "traceparent": tracing.current_traceparent()},
    )


async def connect(
    url: str, name: str, user: str = "", password: str = "", *, create_streams: bool = True,
) -> tuple[nats.NATS, JetStreamContext]:
    """Connect to NATS as ``user`` (a ``services.common.nats_access`` identity; none: anonymous),
    with replies on that identity's own inbox prefix, and, with ``create_streams``, make sure
    every stream exists (the trainer agent may not: it waits for the services to).

    Raises StartupError, one line naming BRIGHTRUN_NATS_USER and BRIGHTRUN_NATS_PASSWORD,
    when the server refuses the login.
    """
    login = {"user": user, "password": password} if user else {}
    # The client retries a refused login forever; the first refusal ends the start here instead.
    refused: asyncio.Future = asyncio.get_running_loop().create_future()
    shown = without_password(url)

    async def on_error(error: Exception) -> None:
        if "authorization violation" in str(error).lower() and not refused.done():
            refused.set_result(error)
        # A permissions violation (a subject this identity may not use) is a bug or an attack: said loudly.
        log.error("NATS (%s as %s): %s", shown, user or "anonymous", error)

    connecting = asyncio.ensure_future(nats.connect(
        url, name=name, inbox_prefix=inbox_prefix(user), max_reconnect_attempts=-1, reconnect_time_wait=0.5,
        error_cb=on_error, **login))
    await asyncio.wait({connecting, refused}, return_when=asyncio.FIRST_COMPLETED)
    if not connecting.done():
        await cancel_and_wait(connecting)
        who = f"user {user!r} (BRIGHTRUN_NATS_USER) with its BRIGHTRUN_NATS_PASSWORD" if user else \
            "a connection without BRIGHTRUN_NATS_USER"
        raise StartupError(f"NATS at {shown} refused {who}: set the user and password of this process's identity "
                           "as the server's authorization block names them (see deploy/k8s/README.md)")
    nc = connecting.result()
    js = nc.jetstream()
    if create_streams:
        await ensure_streams(js)
    return nc, js


async def ensure_streams(js: JetStreamContext) -> None:
    for name, (subjects, retention) in STREAMS.items():
        config = StreamConfig(name=name, subjects=subjects, retention=retention, duplicate_window=120.0)
        try:
            await js.stream_info(name)
        except NotFoundError:
            await js.add_stream(config)


async def publish(js: JetStreamContext, subject: str, data: bytes, msg_id: str) -> None:
    """Publish once: a repeat with the same ``msg_id`` inside the duplicate window is dropped."""
    await js.publish(subject, data, headers={"Nats-Msg-Id": msg_id})


def _published_headers(row) -> dict[str, str]:
    """An outbox row's NATS headers: ``Nats-Msg-Id`` and, for a row written inside a trace, the
    ``traceparent`` of a producer span that continues it (a row written outside one starts no trace)."""
    headers = {"Nats-Msg-Id": str(row.event_id)}
    if row.traceparent:
        with tracing.span(f"publish {row.subject}", kind=SpanKind.PRODUCER, traceparent=row.traceparent,
                          attributes={"messaging.system": "nats", "messaging.destination.name": row.subject}):
            if traceparent := tracing.current_traceparent():
                headers[tracing.TRACEPARENT] = traceparent
    return headers


def traceparent_of(msg: Msg) -> str | None:
    """The ``traceparent`` header a message was published with (the trace of the work that wrote it)."""
    return (msg.headers or {}).get(tracing.TRACEPARENT)


def _consumer_span(durable: str, msgs: list[Msg]):
    """The span of handling ``msgs``: one message's continues its trace; a batch's links each message's."""
    attributes = {"messaging.system": "nats", "messaging.consumer.group.name": durable}
    if len(msgs) == 1:
        return tracing.span(f"{durable} {msgs[0].subject}", kind=SpanKind.CONSUMER,
                            traceparent=traceparent_of(msgs[0]), attributes=attributes)
    links = [link for msg in msgs for link in tracing.link_to(traceparent_of(msg))]
    return tracing.span(f"{durable} batch", kind=SpanKind.CONSUMER, links=links,
                        attributes={**attributes, "messaging.batch.message_count": len(msgs)})


class OutboxRelay:
    """Publishes a service's committed outbox rows, oldest first.

    Woken by every commit of the service's Database; a slow sweep also catches
    rows another replica (or a crashed process) committed. ``mirror``, when
    set, is also given every row once published (a service's live copy of its
    events); it runs again for a row whose round failed, like the publish.
    """

    def __init__(self, db: Database, js: JetStreamContext, *, sweep_seconds: float = 2.0):
        self._db = db
        self._js = js
        self._sweep = sweep_seconds
        self.mirror: Mirror | None = None
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self._db.schema}")

    async def stop(self) -> None:
        """Publish what is left, then stop."""
        if self._task:
            await cancel_and_wait(self._task)
        await self.flush()

    async def flush(self) -> int:
        """Publish every unpublished row now; returns how many were published."""
        total = 0
        while True:
            # SKIP LOCKED lets several replicas relay the same outbox without
            # publishing a row twice at the same time.
            async with self._db.engine.begin() as conn:
                rows = (
                    await conn.execute(
                        text(
                            "SELECT id, event_id, subject, payload, traceparent FROM outbox "
                            "WHERE published_at IS NULL "
                            "ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED"
                        )
                    )
                ).all()
                # Sent in order without waiting for each answer; any failure leaves the whole round unpublished.
                answers: list[asyncio.Future] = []
                try:
                    for row in rows:
                        answers.append(await self._js.publish_async(
                            row.subject, bytes(row.payload), headers=_published_headers(row)))
                    await asyncio.wait_for(asyncio.gather(*answers), _RELAY_ANSWERS_S)
                finally:
                    for answer in answers:  # those left waiting when one failed: their slots are freed
                        answer.cancel()
                if self.mirror is not None:
                    for row in rows:
                        await self.mirror(row.subject, bytes(row.payload))
                if rows:
                    await conn.execute(
                        text("UPDATE outbox SET published_at = now() WHERE id = ANY(:ids)"),
                        {"ids": [row.id for row in rows]},
                    )
            total += len(rows)
            if len(rows) < 100:
                return total

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._db.committed.wait(), timeout=self._sweep)
            except TimeoutError:
                pass
            self._db.committed.clear()
            try:
                await self.flush()
            except Exception:  # NATS or PostgreSQL away: rows stay, the next round retries.
                log.exception("outbox relay round failed for schema %s", self._db.schema)
                await asyncio.sleep(self._sweep)


async def consume(
    js: JetStreamContext,
    *,
    stream: str,
    durable: str,
    subjects: list[str],
    handler: Handler,
    stop: asyncio.Event,
    ack_wait: float = 60.0,
    max_deliver: int = 10,
) -> None:
    """Run a durable pull consumer until ``stop`` is set.

    ``handler`` commits its own transaction (claiming the event id with
    :func:`services.common.db.claim_event`); the message is acked only after
    it returns. A handler error leaves it for redelivery with a growing delay;
    a message that cannot be decoded, that the handler calls
    :class:`Unappliable`, or that failed ``max_deliver`` times is parked with
    :func:`dead_letter`, and the next message is handled. Raises only when
    the consumer cannot be created or bound (NATS unreachable at start).
    """
    async def each(msgs: list[Msg]) -> None:
        for msg in msgs:
            await _settling(durable, msg, _deliver(js, msg, durable=durable, handler=handler, max_deliver=max_deliver))

    await _pull(js, stream=stream, durable=durable, subjects=subjects, stop=stop, ack_wait=ack_wait,
                max_deliver=max_deliver, batch=10, on_messages=each)


async def consume_batches(
    js: JetStreamContext,
    *,
    stream: str,
    durable: str,
    subjects: list[str],
    handler: BatchHandler,
    stop: asyncio.Event,
    batch: int = 500,
    ack_wait: float = 60.0,
    max_deliver: int = 10,
) -> None:
    """:func:`consume` for many messages a second: ``handler`` gets up to ``batch`` events, in stream order.

    ``handler`` applies them in one transaction (claiming their ids with
    :func:`services.common.db.claim_events`); they are acked after it returns,
    without waiting for the server's answer to each ack (a lost ack is a
    redelivery, which the claims make harmless). Undecodable messages are
    parked first. When the handler raises, the batch is handed to it again
    one message at a time, each settled as :func:`consume` settles it, so one
    bad message is parked (or redelivered) and the others are stored.
    """
    async def batched(msgs: list[Msg]) -> None:
        decoded: list[tuple[Msg, events_pb2.Event]] = []
        for msg in msgs:
            _count_redelivery(durable, msg)
            try:
                decoded.append((msg, events_pb2.Event.FromString(msg.data)))
            except DecodeError as exc:
                await _settling(durable, msg, dead_letter(js, msg, consumer=durable, reason=f"undecodable: {exc}"))
        if not decoded:
            return
        try:
            with _consumer_span(durable, [msg for msg, _ in decoded]):
                await handler([event for _, event in decoded])
        except Exception as exc:
            if len(decoded) > 1:
                log.warning("%s: a batch of %d failed (%r); applying its messages one at a time",
                            durable, len(decoded), exc)
            for msg, event in decoded:
                await _settling(durable, msg, _apply(js, msg, event, durable=durable,
                                                     handler=lambda e: handler([e]), max_deliver=max_deliver))
            return
        for msg, _ in decoded:
            await _settling(durable, msg, msg.ack())

    await _pull(js, stream=stream, durable=durable, subjects=subjects, stop=stop, ack_wait=ack_wait,
                max_deliver=max_deliver, batch=batch, on_messages=batched)


_V1_ACK_TOKENS = 9  # an ack subject without a domain
_FETCH_BOUND_S = 10.0  # a fetch asks for at most 1 s of waiting


async def _pull(
    js: JetStreamContext, *, stream: str, durable: str, subjects: list[str], stop: asyncio.Event, ack_wait: float,
    max_deliver: int, batch: int, on_messages: Callable[[list[Msg]], Awaitable[None]],
) -> None:
    """Bind (or create) the durable consumer and hand each fetch of up to ``batch`` messages to ``on_messages``."""
    config = ConsumerConfig(
        durable_name=durable,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=ack_wait,
        max_deliver=max_deliver,
        filter_subjects=subjects,
    )
    sub = await js.pull_subscribe_bind(durable, stream=stream) if await _exists(js, stream, durable) else None
    if sub is None:
        await js.add_consumer(stream, config)
        sub = await js.pull_subscribe_bind(durable, stream=stream)
    try:
        while not stop.is_set():
            try:
                # Bounded here too: a pull whose answer never comes must not stall the consumer for good.
                msgs = await asyncio.wait_for(sub.fetch(batch=batch, timeout=1.0), _FETCH_BOUND_S)
            except TimeoutError:  # nats-py raises its own subclass or plain asyncio.TimeoutError
                continue
            except Exception:  # NATS reconnecting: the messages wait in the stream
                log.exception("%s could not fetch; retrying", durable)
                await asyncio.sleep(1.0)
                continue
            await on_messages(msgs)
    finally:
        # A live pull subscription makes nc.drain() hang: unsubscribe first.
        await sub.unsubscribe()


async def _settling(durable: str, msg: Msg, settle: Awaitable[None]) -> None:
    """Await ``settle`` (handling, acking or parking ``msg``); an error is logged, never raised."""
    try:
        await settle
    except Exception:
        # NATS went away while acking or parking: the message is
        # redelivered after ack_wait; this consumer must go on.
        log.exception("%s could not settle a message on %s; it will be redelivered", durable, msg.subject)


def _count_redelivery(durable: str, msg: Msg) -> None:
    # The delivery count read from the reply subject as msg.metadata reads it (the 5th token of
    # $JS.ACK.<stream>.<consumer>.<delivered>..., further on where a domain is named), without building the
    # whole metadata: that took a tenth of the trainer consumer's time.
    tokens = msg.reply.split(".")
    if int(tokens[4] if len(tokens) == _V1_ACK_TOKENS else tokens[Msg.Ack.NumDelivered]) > 1:
        CONSUMER_REDELIVERIES.labels(durable).inc()


async def _deliver(js: JetStreamContext, msg: Msg, *, durable: str, handler: Handler, max_deliver: int) -> None:
    _count_redelivery(durable, msg)
    try:
        event = events_pb2.Event.FromString(msg.data)
    except DecodeError as exc:
        await dead_letter(js, msg, consumer=durable, reason=f"undecodable: {exc}")
        return
    await _apply(js, msg, event, durable=durable, handler=handler, max_deliver=max_deliver)


async def _apply(js: JetStreamContext, msg: Msg, event: events_pb2.Event, *, durable: str, handler: Handler,
                 max_deliver: int) -> None:
    """Handle one decoded message and settle it: ack, park, or leave it for redelivery with backoff."""
    try:
        with _consumer_span(durable, [msg]):
            await handler(event)
    except Exception as exc:
        if isinstance(exc, Unappliable) or refused_value(exc):
            await dead_letter(js, msg, consumer=durable, reason=f"unappliable {event.type}: {exc}")
            return
        delivered = msg.metadata.num_delivered
        if delivered >= max_deliver:
            # JetStream would drop it silently after this delivery: keep it, with why.
            await dead_letter(js, msg, consumer=durable, reason=f"failed {delivered} times: {exc!r}")
            return
        log.exception("%s failed on %s %s (delivery %d of %d); will be redelivered",
                      durable, event.type, event.event_id, delivered, max_deliver)
        await msg.nak(delay=min(2.0 ** (delivered - 1), _MAX_REDELIVERY_DELAY))
        return
    await msg.ack_sync()


async def dead_letter(js: JetStreamContext, msg: Msg, *, consumer: str, reason: str) -> None:
    """Park ``msg`` on the DEADLETTER stream (subject ``deadletter.<consumer>``) with why, log it at ERROR with its subject, stream sequence and deliveries, count it, then terminate it so it is never redelivered.

    The parked copy's ``Nats-Msg-Id`` names the stream, sequence and consumer,
    so parking the same message again (this process died before terminating
    it) adds no second copy. Raises what NATS raises when it cannot publish;
    the message is then left unsettled and redelivered.
    """
    meta = msg.metadata
    stream, sequence, delivered = meta.stream, meta.sequence.stream, meta.num_delivered
    one_line = " ".join(reason.split())[:_MAX_REASON]
    headers = {
        "Nats-Msg-Id": f"{stream}:{sequence}:{consumer}",
        "BrightRun-Subject": msg.subject,
        "BrightRun-Stream": stream,
        "BrightRun-Sequence": str(sequence),
        "BrightRun-Consumer": consumer,
        "BrightRun-Reason": one_line,
        "BrightRun-Delivered": str(delivered),
    }
    ack = await js.publish(f"deadletter.{consumer}", msg.data, headers=headers)
    log.error("%s parked %s seq %d after %d deliveries: %s", consumer, msg.subject, sequence, delivered, reason)
    if not ack.duplicate:
        PARKED_MESSAGES.labels(consumer).inc()
    await msg.term()


async def _exists(js: JetStreamContext, stream: str, durable: str) -> bool:
    try:
        await js.consumer_info(stream, durable)
        return True
    except NotFoundError:
        return False
