"""Webhooks of billing_svc against real PostgreSQL and NATS JetStream and real
HTTP receivers on this machine: each event sent once per endpoint however
often it is redelivered, retried on the schedule with every attempt logged,
signed as Standard Webhooks, concurrent so that a receiver that never
answers delays no other, and scoped to their owner.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import json
import time
import uuid
from collections import Counter
from datetime import datetime, timezone

import grpc
import pytest
import pytest_asyncio
from brightrun.billing.v1 import billing_pb2, billing_pb2_grpc
from brightrun.dataset.v1 import dataset_pb2
from brightrun.events.v1 import events_pb2
from brightrun.job.v1 import job_pb2
from google.protobuf.field_mask_pb2 import FieldMask

from services.billing_svc.server import start
from services.billing_svc.webhook_sender import MAX_PER_ENDPOINT
from services.common import events
from services.common.grpc import as_user, channel
from services.common.status import error_details

# An attempt waits this long for an answer; the hanging receiver's attempts end with it.
TIMEOUT_S = 5.0


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def service(settings):
    quick = dataclasses.replace(
        settings,
        webhooks_allow_http=True,
        webhook_first_retry_seconds=0.2,
        webhook_retry_seconds=60.0,
        webhook_timeout_seconds=TIMEOUT_S,
    )
    runtime = await start(quick, address="127.0.0.1:0")
    async with channel(f"127.0.0.1:{runtime.port}") as ch:
        yield billing_pb2_grpc.BillingServiceStub(ch)
    await runtime.stop()


class Receiver:
    """An HTTP server that records each request and answers 500 to the first ``fail_first`` attempts of each
    message (webhook-id), 204 after; with ``hang`` it reads the request and never answers."""

    def __init__(self, *, fail_first: int = 0, hang: bool = False):
        self.fail_first = fail_first
        self.hang = hang
        self.requests: list[tuple[dict[str, str], str]] = []
        self.accepted: list[str] = []
        self._tasks: set[asyncio.Task] = set()

    async def __aenter__(self) -> "Receiver":
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/hooks"
        return self

    async def __aexit__(self, *exc) -> None:
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._tasks.add(asyncio.current_task())
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode()
            lines = head.split("\r\n")[1:]
            headers = {name.lower(): value for name, _, value in (line.partition(": ") for line in lines if line)}
            body = (await reader.readexactly(int(headers["content-length"]))).decode()
            self.requests.append((headers, body))
            if self.hang:
                await asyncio.Event().wait()
            tries = sum(1 for h, _ in self.requests if h["webhook-id"] == headers["webhook-id"])
            status = "500 Internal Server Error" if tries <= self.fail_first else "204 No Content"
            if tries > self.fail_first:
                self.accepted.append(headers["webhook-id"])
            writer.write(f"HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode())
            await writer.drain()
        finally:
            writer.close()
            self._tasks.discard(asyncio.current_task())


def _verified(secret: str, headers: dict[str, str], body: str) -> bool:
    """The README's verification, written out here rather than imported, so a broken signer fails it."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.{body}".encode()
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(expected, sig.removeprefix("v1,")) for sig in headers["webhook-signature"].split())


def _job_event(user: str, type_: str, **job_fields) -> events_pb2.Event:
    job = job_pb2.Job(id=str(uuid.uuid4()), user_id=user, dataset_id=str(uuid.uuid4()), dataset_name="Chats",
                      total_steps=10, **job_fields)
    payload = {
        "job.completed": {"job_completed": events_pb2.JobCompleted(job=job)},
        "job.failed": {"job_failed": events_pb2.JobFailed(job=job)},
        "job.cancelled": {"job_cancelled": events_pb2.JobCancelled(job=job)},
    }[type_]
    return events.new_event(type_, producer="test", user_id=user, subject_id=job.id, **payload)


def _dataset_ready(user: str) -> events_pb2.Event:
    dataset = dataset_pb2.Dataset(id=str(uuid.uuid4()), user_id=user, name="Chats")
    dataset.validated_at.FromDatetime(datetime.now(timezone.utc))
    return events.new_event("dataset.validated", producer="test", user_id=user, subject_id=dataset.id,
                            dataset_validated=events_pb2.DatasetValidated(dataset=dataset))


async def _publish(js, event: events_pb2.Event, msg_id: str | None = None) -> None:
    await events.publish(js, event.type, event.SerializeToString(), msg_id or event.event_id)


async def _create(service, user: str, url: str, event_types: list[str], **fields) -> billing_pb2.CreateWebhookResponse:
    request = billing_pb2.CreateWebhookRequest(url=url, event_types=event_types, **fields)
    return await service.CreateWebhook(request, metadata=as_user(user))


async def _deliveries(service, user: str, webhook_id: str) -> list[billing_pb2.WebhookDelivery]:
    request = billing_pb2.ListWebhookDeliveriesRequest(webhook_id=webhook_id)
    return list((await service.ListWebhookDeliveries(request, metadata=as_user(user))).deliveries)


async def _until(check, timeout: float = 20.0):
    """``check()``'s value once truthy (bounded wait)."""
    deadline = time.monotonic() + timeout
    while not (value := await check()):
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.1)
    return value


async def test_a_failing_receiver_gets_each_event_once_after_three_logged_attempts(service, nats):
    _, js = nats
    user = str(uuid.uuid4())
    async with Receiver(fail_first=2) as receiver:
        created = await _create(service, user, receiver.url, ["job.succeeded", "job.failed"])
        hook = created.webhook
        assert created.secret.startswith("whsec_") and len(base64.b64decode(created.secret[6:])) >= 24
        succeeded = _job_event(user, "job.completed", final_cost=2.5)
        failed = _job_event(user, "job.failed", error_message="CUDA out of memory")
        for event in (succeeded, failed, _job_event(user, "job.cancelled")):  # not subscribed: not sent
            await _publish(js, event)

        async def both_delivered():
            deliveries = await _deliveries(service, user, hook.id)
            return deliveries if len(deliveries) == 2 and {d.status for d in deliveries} == {"succeeded"} else None

        deliveries = await _until(both_delivered)
        assert len(receiver.requests) == 6
        assert Counter(receiver.accepted) == {d.message_id: 1 for d in deliveries}
        for delivery in deliveries:
            assert [(a.HasField("status_code"), a.status_code) for a in delivery.attempts] == [
                (True, 500), (True, 500), (True, 204)
            ]
            assert all(a.duration_ms >= 0 and not a.error and a.attempted_at.seconds for a in delivery.attempts)
        for headers, body in receiver.requests:
            assert _verified(created.secret, headers, body)
            assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
        bodies = {h["webhook-id"]: json.loads(b) for h, b in receiver.requests}
        assert len(bodies) == 2  # the webhook-id is the same on every attempt of one event
        by_type = {body["type"]: body for body in bodies.values()}
        assert set(by_type) == {"job.succeeded", "job.failed"}
        assert by_type["job.succeeded"]["data"]["job_id"] == succeeded.subject_id
        assert "CUDA out of memory" in by_type["job.failed"]["data"]["message"]
        assert datetime.fromisoformat(by_type["job.failed"]["timestamp"]).tzinfo is not None

        # JetStream redelivering the event, and the producer re-publishing it under a new id, send nothing new:
        # a later event on the same consumer arriving shows those before it were handled.
        await _publish(js, succeeded, msg_id=str(uuid.uuid4()))
        again = events_pb2.Event()
        again.CopyFrom(succeeded)
        again.event_id = str(uuid.uuid4())
        await _publish(js, again)
        later = _job_event(user, "job.failed", error_message="later")
        await _publish(js, later)
        await _until(lambda: _settled(service, user, hook.id, 3))
        assert len(await _deliveries(service, user, hook.id)) == 3
        assert Counter(receiver.accepted).most_common(1)[0][1] == 1

        # A redelivery on request is one more attempt, under the same webhook-id.
        first = next(d for d in deliveries if d.event_type == "job.succeeded")
        request = billing_pb2.RedeliverWebhookRequest(webhook_id=hook.id, delivery_id=first.id)
        queued = (await service.RedeliverWebhook(request, metadata=as_user(user))).delivery
        assert queued.status == "pending" and len(queued.attempts) == 3

        async def redelivered():
            delivery = next(d for d in await _deliveries(service, user, hook.id) if d.id == first.id)
            return delivery if delivery.status == "succeeded" and len(delivery.attempts) == 4 else None

        assert (await _until(redelivered)).attempts[-1].status_code == 204
        assert Counter(receiver.accepted)[first.message_id] == 2


async def _settled(service, user: str, webhook_id: str, count: int) -> bool:
    deliveries = await _deliveries(service, user, webhook_id)
    return len(deliveries) >= count and all(d.status == "succeeded" for d in deliveries)


async def test_a_receiver_that_never_answers_delays_no_other_endpoint(service, nats):
    _, js = nats
    user, events_sent = str(uuid.uuid4()), 20
    async with Receiver(hang=True) as stuck, Receiver() as quick:
        stuck_hook = (await _create(service, user, stuck.url, ["dataset.ready"])).webhook
        quick_hook = (await _create(service, user, quick.url, ["dataset.ready"])).webhook
        for _ in range(events_sent):
            await _publish(js, _dataset_ready(user))

        async def all_arrived():
            return len(quick.accepted) == events_sent and len(stuck.requests) >= MAX_PER_ENDPOINT

        await _until(all_arrived)
        # Every quick delivery went through while the stuck receiver held its first requests unanswered,
        # and it was sent no more at once than its share.
        assert len(stuck.requests) == MAX_PER_ENDPOINT
        stuck_deliveries = await _deliveries(service, user, stuck_hook.id)
        assert len(stuck_deliveries) == events_sent and all(not d.attempts for d in stuck_deliveries)
        assert await _settled(service, user, quick_hook.id, events_sent)

        async def timed_out():
            return [d for d in await _deliveries(service, user, stuck_hook.id) if d.attempts]

        for delivery in await _until(timed_out):
            attempt = delivery.attempts[0]
            assert not attempt.HasField("status_code") and attempt.error == f"no answer within {TIMEOUT_S:g} s"
            assert attempt.duration_ms >= TIMEOUT_S * 1000 and delivery.status == "pending"
        off = billing_pb2.UpdateWebhookRequest(webhook_id=stuck_hook.id, enabled=False,
                                               update_mask=FieldMask(paths=["enabled"]))
        assert not (await service.UpdateWebhook(off, metadata=as_user(user))).webhook.enabled


async def test_webhooks_are_their_owners_alone(service):
    owner, stranger = str(uuid.uuid4()), str(uuid.uuid4())
    hook = (await _create(service, owner, "https://example.com/hooks", ["model.ready"], description="CI")).webhook
    calls = [
        service.GetWebhook(billing_pb2.GetWebhookRequest(webhook_id=hook.id), metadata=as_user(stranger)),
        service.UpdateWebhook(
            billing_pb2.UpdateWebhookRequest(webhook_id=hook.id, description="mine", update_mask=FieldMask(paths=["description"])),
            metadata=as_user(stranger),
        ),
        service.DeleteWebhook(billing_pb2.DeleteWebhookRequest(webhook_id=hook.id), metadata=as_user(stranger)),
        service.ListWebhookDeliveries(
            billing_pb2.ListWebhookDeliveriesRequest(webhook_id=hook.id), metadata=as_user(stranger)
        ),
        service.RedeliverWebhook(
            billing_pb2.RedeliverWebhookRequest(webhook_id=hook.id, delivery_id=str(uuid.uuid4())),
            metadata=as_user(stranger),
        ),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert not (await service.ListWebhooks(billing_pb2.ListWebhooksRequest(), metadata=as_user(stranger))).webhooks
    mine = await service.GetWebhook(billing_pb2.GetWebhookRequest(webhook_id=hook.id), metadata=as_user(owner))
    assert (mine.webhook.description, list(mine.webhook.event_types), mine.webhook.enabled) == ("CI", ["model.ready"], True)
    await service.DeleteWebhook(billing_pb2.DeleteWebhookRequest(webhook_id=hook.id), metadata=as_user(owner))
    assert not (await service.ListWebhooks(billing_pb2.ListWebhooksRequest(), metadata=as_user(owner))).webhooks


async def test_bad_webhooks_are_refused_naming_the_field_and_a_reused_key_replays(service):
    user = str(uuid.uuid4())
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _create(service, user, "ftp://example.com", ["job.succeeded", "job.exploded"])
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = error_details(caught.value)["details"]
    assert set(details) == {"url", "event_types"}
    assert "'job.exploded'" in details["event_types"][0] and "job.succeeded" in details["event_types"][0]

    first = await _create(service, user, "https://example.com/a", ["budget.alert"], request_id="key-1")
    replay = await _create(service, user, "https://example.com/a", ["budget.alert"], request_id="key-1")
    assert (replay.webhook.id, replay.secret) == (first.webhook.id, first.secret)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _create(service, user, "https://example.com/b", ["budget.alert"], request_id="key-1")
    assert error_details(caught.value)["reason"] == "idempotency_key_reused"
    other = await _create(service, user, "https://example.com/a", ["budget.alert"], request_id="key-2")
    assert other.webhook.id != first.webhook.id and other.secret != first.secret


async def test_budget_alerts_are_sent_at_80_and_100_percent(service, nats):
    _, js = nats
    user = str(uuid.uuid4())
    async with Receiver() as receiver:
        hook = (await _create(service, user, receiver.url, ["budget.alert"])).webhook
        await service.SetBudget(billing_pb2.SetBudgetRequest(amount=1.0), metadata=as_user(user))
        await _publish(js, _job_event(user, "job.failed", current_cost=1.25, error_message="stopped"))
        await _until(lambda: _settled(service, user, hook.id, 2))
        bodies = [json.loads(body) for _, body in receiver.requests]
        assert {(b["type"], b["data"]["threshold"]) for b in bodies} == {("budget.alert", 80), ("budget.alert", 100)}
        assert len(receiver.requests) == 2  # the job.failed notice is not subscribed to
