"""billing_svc's consumers apply a batch of events in one transaction, against
real PostgreSQL and NATS JetStream: a batch charges exactly what its events
charge one at a time (records, budget notices, the stop), a redelivered batch
writes nothing twice, and an event no redelivery can apply is parked alone.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest_asyncio
from sqlalchemy import text

from brightrun.events.v1 import events_pb2
from brightrun.job.v1 import job_pb2
from services.billing_svc import store
from services.billing_svc.consumers import BillingEvents
from services.billing_svc.server import start
from services.common import acting, events

PROGRESS = "billing-progress"


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def service(settings):
    runtime = await start(settings, address="127.0.0.1:0")
    yield runtime
    await runtime.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def db(service, settings, counting_database):
    """A second Database on the schema the service migrated, counting the transactions it opens."""
    database = counting_database(settings.database_url, "billing")
    yield database
    await database.close()


def _event(user: str, job: job_pb2.Job, kind: str, cost: float, at: datetime) -> events_pb2.Event:
    payload = {"job_queued": events_pb2.JobQueued, "job_progressed": events_pb2.JobProgressed}[kind]
    moved = job_pb2.Job()
    moved.CopyFrom(job)
    moved.current_cost = cost
    event = events.new_event("job." + kind.removeprefix("job_"), producer="test", user_id=user, subject_id=job.id,
                             **{kind: payload(job=moved)})
    event.occurred_at.FromDatetime(at)
    return event


def _scenario(user: str) -> list[events_pb2.Event]:
    """Two jobs of ``user`` progressing together, as job_svc reports them: one ``job.progressed`` every 20 s
    each; the first job's charges cross 80% and 100% of a $10 budget and go on."""
    start = datetime.now(timezone.utc)
    jobs = []
    for _ in range(2):
        job = job_pb2.Job(id=str(uuid.uuid4()), user_id=user, dataset_name="Support chats",
                          gpu_config=job_pb2.GpuConfig(type="H100", count=2, cost_per_gpu_hour=3.0),
                          estimated_total_cost=6.0)
        job.started_at.FromDatetime(start - timedelta(hours=1))
        jobs.append(job)
    batch = [_event(user, job, "job_queued", 0.0, start) for job in jobs]
    for i in range(13):  # 4 minutes: each job accrues at 0, 1, 2, 3 and 4 minutes (every 3rd event)
        at = start + timedelta(seconds=20 * i)
        batch.append(_event(user, jobs[0], "job_progressed", 7.0 + 0.4 * i, at))
        batch.append(_event(user, jobs[1], "job_progressed", 0.1 * i, at))
    return batch


async def _outcome(db, user: str) -> dict:
    """What billing wrote for ``user``, without ids: records, notices, outbox events."""
    async with db.read() as conn:
        records = (await conn.execute(text(
            "SELECT job_id, amount, details->>'cumulative' AS through FROM cost_records WHERE user_id = :u "
            "ORDER BY recorded_at, amount"), {"u": user})).all()
        notes = (await conn.execute(text(
            "SELECT type, message FROM notifications WHERE user_id = :u"), {"u": user})).all()
        outbox = [events_pb2.Event.FromString(bytes(row.payload)) for row in (await conn.execute(text(
            "SELECT payload FROM outbox WHERE subject LIKE 'billing.%' ORDER BY id"))).all()]
    jobs = list(dict.fromkeys(str(r.job_id) for r in records))
    mine = [e for e in outbox if e.user_id == user]
    return {
        "records": [(jobs.index(str(r.job_id)), float(r.amount), r.through) for r in records],
        "notices": sorted((n.type, n.message) for n in notes),
        "cost_recorded": sorted(round(e.cost_recorded.cost_record.amount, 2) for e in mine if e.type == "billing.cost_recorded"),
        "stops": [(e.budget_exceeded.budget, e.budget_exceeded.spent) for e in mine if e.type == "billing.budget_exceeded"],
    }


async def _with_budget(db, user: str) -> None:
    async with db.transaction() as conn:
        await store.set_budget(conn, user, 1000)


async def test_a_batch_charges_what_its_events_charge_one_at_a_time(db):
    batched, one_by_one = str(uuid.uuid4()), str(uuid.uuid4())
    consumer = BillingEvents(db, PROGRESS)
    with acting.as_platform():
        for user in (batched, one_by_one):
            await _with_budget(db, user)
        for event in _scenario(one_by_one):
            await consumer.handle_batch([event])
        batch = _scenario(batched)
        db.opened.clear()
        await consumer.handle_batch(batch)
        assert db.opened == ["transaction"]  # the whole batch: one transaction
        outcome = await _outcome(db, batched)

        assert outcome == await _outcome(db, one_by_one)
        first = [amount for job, amount, _ in outcome["records"] if job == 0]
        # Accrued once a minute, not at each event, and the notices and the stop came as the charges crossed.
        assert first == [7.0, 1.2, 1.2, 1.2, 1.2] and len(outcome["cost_recorded"]) == len(outcome["records"])
        assert [type_ for type_, _ in outcome["notices"]] == ["budget_exceeded", "budget_warning", "job_queued",
                                                                "job_queued"]
        # The second job's charge at 1:20 spent the budget (stopped there), the first job's at 3:00 (and then).
        assert outcome["stops"] == [(10.0, 10.1), (10.0, 11.3)]

        # Redelivered (a lost ack), and replayed under new event ids: nothing is written twice.
        await consumer.handle_batch(batch)
        for event in batch:
            event.event_id = str(uuid.uuid4())
        await consumer.handle_batch(batch)
        assert await _outcome(db, batched) == outcome


async def _parked(js, consumer: str) -> list:
    sub = await js.pull_subscribe(f"deadletter.{consumer}", stream="DEADLETTER")
    try:
        return await sub.fetch(100, timeout=1.0)
    except TimeoutError:
        return []
    finally:
        await sub.unsubscribe()


async def test_an_event_no_redelivery_applies_is_parked_and_the_rest_of_its_batch_charged(service, db, nats):
    _, js = nats
    user = str(uuid.uuid4())
    good = _scenario(user)
    job_id = good[0].subject_id
    bad = _event(user, job_pb2.Job(id="not-a-uuid", user_id=user), "job_progressed", 1.0, datetime.now(timezone.utc))
    middle = len(good) // 2
    for event in [*good[:middle], bad, *good[middle:]]:
        await js.publish(event.type, event.SerializeToString(), headers={"Nats-Msg-Id": event.event_id})
    deadline = time.monotonic() + 30
    while True:
        with acting.as_platform():
            async with db.read() as conn:
                charged = (await conn.execute(text("SELECT charged_cents FROM job_charges WHERE job_id = :j"),
                                              {"j": job_id})).scalar_one_or_none()
        if charged == 1180 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert charged == 1180  # the first job's cost at its last accrual, 4 minutes in
    parked = [m for m in await _parked(js, PROGRESS) if events_pb2.Event.FromString(m.data).event_id == bad.event_id]
    assert len(parked) == 1 and "not-a-uuid" in parked[0].headers["BrightRun-Reason"]
