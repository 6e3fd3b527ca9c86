"""Batched ingestion of trainer events and the per-job live feed, on real
PostgreSQL and NATS: exactly-once storage under redelivery of a whole batch
and of part of one, billing charged once, a job's events applied in order
inside a batch, a poison message parked while the rest of its batch is
stored, and a watcher that hears its own job only.

Batches are handed to job_svc's TrainerEvents directly where their exact
make-up matters (a redelivered batch is the same events again); the poison
and watch tests go through the running consumer.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
import uuid

import pytest_asyncio
from sqlalchemy import text

from brightrun.events.v1 import events_pb2
from brightrun.job.v1 import job_pb2
from services.common import events
from services.common.db import Database
from services.common.grpc import as_user
from services.job_svc.consumers import TRAINER_DURABLE, TrainerEvents
from services.job_svc.live import LiveFeed
from tests.integration.test_job_svc import (  # noqa: F401 (fixtures)
    OWNER, REQUEST, _compute_records, _point, _trainer_event, _wait, clocked, fakes, js, stub,
)

# Jobs on a GPU whose assignments no test takes: test_job_svc reads assign.CPU.1 and expects its own job there.
JOB = job_pb2.CreateJobRequest(**{**REQUEST, "gpu_config": job_pb2.GpuConfig(type="H100", count=1)})


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def trainer_events(settings):
    """job_svc's trainer event handler on its schema, beside the running service."""
    db = Database(settings.database_url, "job")
    nc, _ = await events.connect(settings.nats_url, "ingest-test")
    yield db, TrainerEvents(db, LiveFeed(nc))
    await nc.close()
    await db.close()


def _event(job: job_pb2.Job, type_: str, **payload) -> events_pb2.Event:
    return events.new_event(type_, producer="test", user_id=job.user_id, subject_id=job.id, **payload)


def _metrics(job: job_pb2.Job, step: int, attempt: int = 1) -> events_pb2.Event:
    point = _point(job.id, step, 3.0 / step)
    return _event(job, "trainer.metrics", trainer_metrics=events_pb2.TrainerMetrics(
        job_id=job.id, attempt=attempt, metric_point=point, total_steps=10))


async def _outbox(db: Database, job_id: str) -> list[events_pb2.Event]:
    """The job's events job_svc wrote to its outbox, in order."""
    async with db.read() as conn:
        rows = await conn.execute(text("SELECT payload FROM outbox WHERE subject LIKE 'job.%' ORDER BY id"))
        return [e for e in (events_pb2.Event.FromString(bytes(r.payload)) for r in rows) if e.subject_id == job_id]


async def _steps(db: Database, job_id: str) -> list[int]:
    async with db.read() as conn:
        rows = await conn.execute(text("SELECT step FROM metric_points WHERE job_id = :id ORDER BY step"),
                                  {"id": job_id})
        return [r.step for r in rows]


def _progressed_steps(outbox: list[events_pb2.Event]) -> list[int]:
    """The steps of the job.progressed events a point moved (a clock tick carries none)."""
    return [e.job_progressed.metric_point.step for e in outbox
            if e.HasField("job_progressed") and e.job_progressed.HasField("metric_point")]


async def test_a_batch_redelivered_whole_or_in_part_stores_counts_and_bills_each_point_once(clocked, trainer_events):
    jobs, billing = clocked
    db, trainer = trainer_events
    request = job_pb2.CreateJobRequest(**{**REQUEST, "gpu_config": job_pb2.GpuConfig(type="H100", count=8)})
    job = (await jobs.CreateJob(request, metadata=as_user(OWNER))).job  # $33.60 an hour: a cent every 1.1 s
    started = _event(job, "trainer.attempt.started",
                     trainer_attempt_started=events_pb2.TrainerAttemptStarted(job_id=job.id, attempt=1))
    m1, m2, m3 = (_metrics(job, step) for step in (1, 2, 3))
    first = [started, m1, m2]
    await trainer.handle_batch(first)
    after_first = await _wait(jobs, job.id, lambda j: j.current_step == 2)

    # The whole batch again (its acks were lost): nothing changes, not even the job's updated_at.
    await trainer.handle_batch(first)
    again = (await jobs.GetJob(job_pb2.GetJobRequest(job_id=job.id), metadata=as_user(OWNER))).job
    assert again.updated_at == after_first.updated_at
    # Part of it again, with a new point, and step 2 replayed by a resumed attempt under a new event id.
    await trainer.handle_batch([m2, m3, _metrics(job, 2, attempt=2)])
    await _wait(jobs, job.id, lambda j: j.current_step == 3)
    assert await _steps(db, job.id) == [1, 2, 3]
    await asyncio.sleep(2.5)  # a few cents of GPU time to bill

    # Order inside one batch: the point before the completion moves the job; the one after is history only.
    completed = events_pb2.TrainerAttemptCompleted(job_id=job.id, attempt=1)
    completed.summary.update({"steps_completed": 4})
    await trainer.handle_batch([_metrics(job, 4), _event(job, "trainer.attempt.completed",
                                                           trainer_attempt_completed=completed), _metrics(job, 5)])
    done = await _wait(jobs, job.id, lambda j: j.status == job_pb2.JOB_STATUS_COMPLETED)
    assert done.current_step == 4 and done.current_metrics.training_loss == 3.0 / 4
    assert await _steps(db, job.id) == [1, 2, 3, 4, 5]

    outbox = await _outbox(db, job.id)
    # One job.progressed a batch that moved the job, carrying its last point: none for the redelivery.
    assert _progressed_steps(outbox) == [2, 3, 4]
    types = [e.type for e in outbox if e.type != "job.progressed" or e.job_progressed.HasField("metric_point")]
    assert types == ["job.queued", "job.initializing", "job.started", "job.progressed", "job.progressed",
                     "job.progressed", "job.completed"]

    # Billing charged the job once: its compute records sum exactly to its final cost.
    final = round(done.final_cost * 100)
    deadline = time.monotonic() + 20
    while sum(round(r.amount * 100) for r in await _compute_records(billing, job.id)) != final:
        assert time.monotonic() < deadline, "billing never charged the final cost"
        await asyncio.sleep(0.1)
    assert final > 0


async def _parked_count(js, consumer: str) -> int:
    subject = f"deadletter.{consumer}"
    return ((await js.stream_info("DEADLETTER", subjects_filter=subject)).state.subjects or {}).get(subject, 0)


async def test_a_poison_message_inside_a_batch_is_parked_and_the_others_are_stored(stub, js, trainer_events):
    db, _ = trainer_events
    job = (await stub.CreateJob(JOB, metadata=as_user(OWNER))).job
    other = str(uuid.uuid4())
    before = await _parked_count(js, TRAINER_DURABLE)
    poison = _metrics(job, 2)
    poison.trainer_metrics.metric_point.job_id = other  # a point of another job than its event's
    started = _event(job, "trainer.attempt.started",
                     trainer_attempt_started=events_pb2.TrainerAttemptStarted(job_id=job.id, attempt=1))
    sent = [started, _metrics(job, 1), poison, _metrics(job, 3), _metrics(job, 4)]
    for event in sent:
        await events.publish(js, event.type, event.SerializeToString(), str(uuid.uuid4()))
    await events.publish(js, "trainer.metrics", b"\xff garbage", str(uuid.uuid4()))
    await _wait(stub, job.id, lambda j: j.current_step == 4)
    assert await _steps(db, job.id) == [1, 3, 4]
    deadline = time.monotonic() + 20
    while await _parked_count(js, TRAINER_DURABLE) < before + 2:
        assert time.monotonic() < deadline, "the poison was never parked"
        await asyncio.sleep(0.1)


def _subscriptions(monitor_port: int, name: str) -> list[str]:
    """The subjects the NATS connections called ``name`` subscribe to, from the server's monitoring endpoint."""
    with urllib.request.urlopen(f"http://127.0.0.1:{monitor_port}/connz?subs=1&limit=1024") as answer:
        connections = json.load(answer)["connections"]
    return [s for c in connections if c.get("name") == name for s in c.get("subscriptions_list", [])]


async def test_a_watcher_hears_its_own_job_only_on_its_own_subject(stub, js, infra):
    mine = (await stub.CreateJob(JOB, metadata=as_user(OWNER))).job
    theirs = (await stub.CreateJob(JOB, metadata=as_user(OWNER))).job
    watched: list[job_pb2.WatchJobResponse] = []

    async def watch():
        async for update in stub.WatchJob(job_pb2.WatchJobRequest(job_id=mine.id), metadata=as_user(OWNER)):
            watched.append(update)

    watcher = asyncio.create_task(watch())
    while not watched:
        await asyncio.sleep(0.05)
    subjects = _subscriptions(infra[1].monitor_port, "job_svc")
    assert f"live.job.{mine.id}.*" in subjects
    assert not [s for s in subjects if s.startswith("job.") or s in (">", "live.>", "live.job.>")]

    for job, steps in ((theirs, (1, 2, 3)), (mine, (1,)), (theirs, (4,))):
        await _trainer_event(js, job, "trainer.attempt.started",
                             trainer_attempt_started=events_pb2.TrainerAttemptStarted(job_id=job.id, attempt=1))
        for step in steps:
            metrics = events_pb2.TrainerMetrics(job_id=job.id, attempt=1, metric_point=_point(job.id, step, 1.0))
            await _trainer_event(js, job, "trainer.metrics", trainer_metrics=metrics)
    await _wait(stub, theirs.id, lambda j: j.current_step == 4)
    await _wait(stub, mine.id, lambda j: j.current_step == 1)
    await stub.CancelJob(job_pb2.CancelJobRequest(job_id=mine.id), metadata=as_user(OWNER))
    await asyncio.wait_for(watcher, 10)

    assert [u.metric_point.step for u in watched if u.HasField("metric_point")] == [1]
    assert {u.metric_point.job_id for u in watched if u.HasField("metric_point")} == {mine.id}
    assert {u.job.id for u in watched if u.HasField("job")} == {mine.id}
    statuses = [u.job.status for u in watched if u.HasField("job")]
    assert statuses[0] == job_pb2.JOB_STATUS_QUEUED and statuses[-1] == job_pb2.JOB_STATUS_CANCELLED
    assert job_pb2.JOB_STATUS_RUNNING in statuses
