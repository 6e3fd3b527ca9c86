"""job_svc's copy of the dataset facts (services.job_svc.dataset_facts) on real PostgreSQL, NATS and
SeaweedFS, with the real dataset_svc: once dataset_svc's events are applied an estimate asks dataset_svc
nothing (counted by its gRPC metrics in this process) and answers what dataset_svc's answer gives; a
dataset not in the copy falls back to GetDataset; a deleted one is Not Found, as another user's is; an
older event never overwrites newer facts."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import uuid
from datetime import timezone

import grpc
import pytest
import pytest_asyncio
from prometheus_client import REGISTRY
from sqlalchemy import text

from brightrun.dataset.v1 import dataset_pb2, dataset_pb2_grpc
from brightrun.events.v1 import events_pb2
from brightrun.job.v1 import job_pb2, job_pb2_grpc
from services.common import events, row_security
from services.common.db import Database
from services.common.grpc import as_user, channel
from services.common.nats_access import DATASETS, JOB_DATASETS
from services.dataset_svc.server import start as start_datasets
from services.job_svc.server import start as start_jobs
from tests.integration.test_dataset_svc import GOOD, _jsonl, _settled, _upload

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def datasets(settings):
    runtime = await start_datasets(settings, address="127.0.0.1:0")
    async with channel(f"127.0.0.1:{runtime.port}") as ch:
        yield runtime.port, dataset_pb2_grpc.DatasetServiceStub(ch)
    await runtime.stop()


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def jobs(settings, datasets):
    runtime = await start_jobs(dataclasses.replace(settings, dataset_addr=f"127.0.0.1:{datasets[0]}"),
                               address="127.0.0.1:0")
    async with channel(f"127.0.0.1:{runtime.port}") as ch:
        yield job_pb2_grpc.JobServiceStub(ch)
    await runtime.stop()


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def job_db(settings):
    """job_svc's schema, read as the platform (every user's rows)."""
    db = Database(settings.database_url, "job")
    yield db
    await db.close()


def _get_datasets_answered() -> float:
    """GetDataset calls dataset_svc has answered in this process, whatever their code."""
    return sum(sample.value for metric in REGISTRY.collect() if metric.name == "brightrun_grpc_server_handled"
               for sample in metric.samples if sample.name.endswith("_total")
               and sample.labels.get("grpc_method") == "GetDataset")


async def _facts(job_db, dataset_id: str):
    with row_security.as_platform():
        async with job_db.statement() as conn:
            return (await conn.execute(text("SELECT * FROM dataset_facts WHERE dataset_id = :id"),
                                       {"id": dataset_id})).first()


async def _until_facts(job_db, dataset_id: str, done):
    """The copy's row of ``dataset_id`` once ``done(row)``: dataset_svc's relay publishes after its commit."""
    for _ in range(200):
        row = await _facts(job_db, dataset_id)
        if row is not None and done(row):
            return row
        await asyncio.sleep(0.05)
    raise AssertionError(f"job_svc's copy of dataset {dataset_id} never got there: {row}")


async def _until_applied(js) -> None:
    """Until job_svc's consumer of DATASETS has applied everything published so far."""
    for _ in range(200):
        info = await js.consumer_info(DATASETS, JOB_DATASETS.durable)
        if info.num_pending == 0 and info.num_ack_pending == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"job_svc's consumer still has events in hand: {info}")


async def _ready(datasets, job_db) -> tuple[str, dataset_pb2.Dataset]:
    """A user and their validated dataset, its dataset.validated event applied in job_svc's copy."""
    _, stub = datasets
    uid = str(uuid.uuid4())
    dataset = await _settled(stub, uid, (await _upload(stub, uid, _jsonl(GOOD))).id)
    assert dataset.status == dataset_pb2.DATASET_STATUS_READY, dataset.validation_errors
    validated_at = dataset.updated_at.ToDatetime(tzinfo=timezone.utc)
    facts = await _until_facts(job_db, dataset.id, lambda row: row.version == validated_at)
    assert facts.status == "ready" and facts.user_id == uuid.UUID(uid)
    return uid, dataset


def _estimate_request(dataset_id: str) -> job_pb2.EstimateJobRequest:
    return job_pb2.EstimateJobRequest(dataset_id=dataset_id, gpu_config=job_pb2.GpuConfig(type="H100", count=1),
                                      hyperparameters=job_pb2.Hyperparameters(learning_rate=0.0002, batch_size=2,
                                                                              epochs=3, rank=8))


async def test_a_validated_dataset_is_estimated_without_asking_dataset_svc(datasets, jobs, job_db):
    uid, dataset = await _ready(datasets, job_db)
    before = _get_datasets_answered()
    from_copy = (await jobs.EstimateJob(_estimate_request(dataset.id), metadata=as_user(uid))).estimate
    assert _get_datasets_answered() == before
    # Without the copy's row, the estimate asks dataset_svc, and both answers agree.
    with row_security.as_platform():
        async with job_db.transaction() as conn:
            await conn.execute(text("DELETE FROM dataset_facts WHERE dataset_id = :id"), {"id": dataset.id})
    from_dataset_svc = (await jobs.EstimateJob(_estimate_request(dataset.id), metadata=as_user(uid))).estimate
    assert _get_datasets_answered() == before + 1
    assert from_copy == from_dataset_svc
    # The dataset's own conversations at 2 a batch for 3 epochs, not the 1000 assumed of an uncounted dataset.
    held_out = dataset.statistics["validation_conversations"] if "validation_conversations" in dataset.statistics else 0
    training = int(dataset.statistics["conversations"] - held_out)
    assert training > 0 and from_copy.training_details.total_steps == math.ceil(training / 2) * 3
    assert from_copy.training_details.dataset_name == "data"


async def test_a_deleted_dataset_is_not_found_and_another_users_is_asked_of_dataset_svc(datasets, jobs, job_db):
    uid, dataset = await _ready(datasets, job_db)
    stranger = as_user(str(uuid.uuid4()))
    before = _get_datasets_answered()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await jobs.EstimateJob(_estimate_request(dataset.id), metadata=stranger)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert _get_datasets_answered() == before + 1  # not in the stranger's copy: dataset_svc says no

    await datasets[1].DeleteDataset(dataset_pb2.DeleteDatasetRequest(dataset_id=dataset.id), metadata=as_user(uid))
    await _until_facts(job_db, dataset.id, lambda row: row.deleted_at is not None)
    for call in (jobs.EstimateJob(_estimate_request(dataset.id), metadata=as_user(uid)),
                 jobs.CreateJob(job_pb2.CreateJobRequest(dataset_id=dataset.id, preset_id="fast",
                                                         gpu_config=job_pb2.GpuConfig(type="CPU", count=1)),
                                metadata=as_user(uid))):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        assert info.value.details() == "Dataset not found or access denied"
    # The estimate's answer came from the copy; CreateJob asked dataset_svc, as it always does.
    assert _get_datasets_answered() == before + 2


async def test_an_older_event_does_not_overwrite_newer_facts(datasets, jobs, job_db, nats):
    uid, dataset = await _ready(datasets, job_db)
    _, js = nats

    async def send(updated_by_seconds: int, name: str) -> None:
        sent = dataset_pb2.Dataset()
        sent.CopyFrom(dataset)
        sent.name = name
        sent.updated_at.FromSeconds(dataset.updated_at.seconds + updated_by_seconds)
        sent.updated_at.nanos = dataset.updated_at.nanos
        event = events.new_event("dataset.uploaded", producer="test", user_id=uid, subject_id=dataset.id,
                                 dataset_uploaded=events_pb2.DatasetUploaded(dataset=sent))
        await events.publish(js, event.type, event.SerializeToString(), event.event_id)
        await _until_applied(js)

    async def name_estimated() -> str:
        reply = await jobs.EstimateJob(_estimate_request(dataset.id), metadata=as_user(uid))
        return reply.estimate.training_details.dataset_name

    await send(-60, "a late, older copy")
    assert (await _facts(job_db, dataset.id)).name == "data"
    assert await name_estimated() == "data"
    await send(0, "the same version again")
    assert await name_estimated() == "data"
    await send(60, "newer")
    assert await name_estimated() == "newer"
