"""Poison messages and replays against the real embedded platform (issue 14,
cases 1, 2 and 8): garbage on the dataset and job streams is parked on the
DEADLETTER stream and every consumer goes on; a replayed ``job.completed``
under a new event id leaves one artifact, one notification of each kind and
one cost record of each type.
"""

from __future__ import annotations

import asyncio
import uuid

from faultkit import assert_consumers_drain, assert_job_accounted, notifications_of, ready_dataset, start_job, wait_ended
from brightrun.events.v1 import events_pb2
from services.common import events
from services.platform.journey import call, wait_for

GARBAGE = b"\xff garbage"


def _publish_garbage(platform, subject: str) -> int:
    """Publish bytes that are no Event on ``subject``; returns their stream sequence."""

    async def publish() -> int:
        nc, js = await events.connect(platform.env["BRIGHTRUN_NATS_URL"], "poison-test", *platform.nats_login())
        try:
            return (await js.publish(subject, GARBAGE, headers={"Nats-Msg-Id": str(uuid.uuid4())})).seq
        finally:
            await nc.close()

    return asyncio.run(publish())


def _parked_sequences(platform, consumer: str) -> set[int]:
    """The stream sequences ``consumer`` parked on the DEADLETTER stream."""

    async def read() -> set[int]:
        nc, js = await events.connect(platform.env["BRIGHTRUN_NATS_URL"], "poison-test", *platform.nats_login())
        sub = await js.pull_subscribe(f"deadletter.{consumer}", stream="DEADLETTER")
        sequences: set[int] = set()
        try:
            while True:
                try:
                    msgs = await sub.fetch(100, timeout=0.5)
                except TimeoutError:
                    return sequences
                sequences |= {int(m.headers["BrightRun-Sequence"]) for m in msgs}
        finally:
            await sub.unsubscribe()
            await nc.close()

    return asyncio.run(read())


def _replay_completed(platform, job_id: str) -> None:
    """Publish the job's ``job.completed`` again under a new event id, as a
    producer that lost track of what it had sent would."""

    async def replay() -> None:
        nc, js = await events.connect(platform.env["BRIGHTRUN_NATS_URL"], "poison-test", *platform.nats_login())
        sub = await js.pull_subscribe("job.completed", stream="JOBS")
        try:
            while True:
                for msg in await sub.fetch(100, timeout=5.0):
                    try:
                        event = events_pb2.Event.FromString(msg.data)
                    except Exception:  # an earlier test's garbage
                        continue
                    if event.subject_id == job_id:
                        event.event_id = str(uuid.uuid4())
                        await events.publish(js, event.type, event.SerializeToString(), event.event_id)
                        return
        finally:
            await sub.unsubscribe()
            await nc.close()

    asyncio.run(replay())


def _models_of(api, job_id: str) -> list[dict]:
    return [m for m in call(api, "GET", "/api/models", params={"limit": 100})["models"] if m["job_id"] == job_id]


def _assert_completed_once(platform, api, job: dict) -> None:
    """One model, one notification of each kind, one compute and one storage record."""
    assert_job_accounted(platform, api, job)
    models = wait_for(lambda: {"models": _models_of(api, job["id"])}, lambda m: m["models"], 60, "the model")
    assert len(models["models"]) == 1, models
    kinds = wait_for(lambda: {"kinds": sorted(n["type"] for n in notifications_of(api, job["id"]))},
                     lambda n: "model_ready" in n["kinds"], 60, "the model_ready notification")["kinds"]
    assert kinds == ["job_completed", "job_queued", "job_started", "model_ready"], kinds
    costs = call(api, "GET", "/api/costs", params={"period": "week"})
    assert costs["record_count"] == 2 and set(costs["by_type"]) == {"compute", "storage"}, costs


def test_garbage_on_the_dataset_stream_does_not_hold_back_validation(platform, api, tmp_path):
    seq = _publish_garbage(platform, "dataset.uploaded")
    ready_dataset(api, tmp_path)  # asserts it becomes ready
    assert seq in _parked_sequences(platform, "dataset-validator")
    assert_consumers_drain(platform)


def test_garbage_on_the_job_stream_stops_no_consumer(platform, api, tmp_path):
    dataset = ready_dataset(api, tmp_path)
    completed_seq = _publish_garbage(platform, "job.completed")
    queued_seq = _publish_garbage(platform, "job.queued")
    job = wait_ended(api, start_job(api, dataset))
    assert job["status"] == "completed", job
    _assert_completed_once(platform, api, job)
    assert_consumers_drain(platform)
    for consumer in ("artifact-builder", "billing-jobs", "dataset-usage"):
        assert completed_seq in _parked_sequences(platform, consumer), consumer
    for consumer in ("billing-jobs", "dataset-usage"):
        assert queued_seq in _parked_sequences(platform, consumer), consumer


def test_a_replayed_job_completed_records_nothing_twice(platform, api, tmp_path):
    job = wait_ended(api, start_job(api, ready_dataset(api, tmp_path)))
    assert job["status"] == "completed", job
    _assert_completed_once(platform, api, job)
    _replay_completed(platform, job["id"])
    assert_consumers_drain(platform)  # every consumer has handled the replay by now
    _assert_completed_once(platform, api, job)
