"""artifact_svc against real PostgreSQL, NATS JetStream and S3: artifacts
built from job.completed events, scoped reads, downloads, soft delete.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import grpc
import httpx
import pytest
import pytest_asyncio
from brightrun.artifact.v1 import artifact_pb2, artifact_pb2_grpc
from brightrun.events.v1 import events_pb2
from brightrun.job.v1 import job_pb2

from services.artifact_svc.server import start
from services.common import events
from services.common.grpc import as_user, channel
from services.common.status import error_details
from services.common.storage import ObjectStorage


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def service(settings):
    runtime = await start(settings, address="127.0.0.1:0")
    async with channel(f"127.0.0.1:{runtime.port}") as ch:
        yield artifact_pb2_grpc.ArtifactServiceStub(ch)
    await runtime.stop()


def _completed(
    user: str, *, final_loss: float, files: dict[str, bytes], bucket: str, **summary: float
) -> events_pb2.Event:
    job_id = str(uuid.uuid4())
    job = job_pb2.Job(
        id=job_id,
        user_id=user,
        dataset_id=str(uuid.uuid4()),
        dataset_name="Support chats",
        hyperparameters=job_pb2.Hyperparameters(rank=8, epochs=1),
        gpu_config=job_pb2.GpuConfig(type="CPU", count=1),
        total_steps=12,
        final_cost=0.42,
    )
    manifest = artifact_pb2.AdapterManifest(
        bucket=bucket,
        prefix=f"{user}/{job_id}",
        files=[
            artifact_pb2.ArtifactFile(name=name, key=f"{user}/{job_id}/{name}", size_bytes=len(data), sha256="x")
            for name, data in files.items()
        ],
    )
    completed = events_pb2.JobCompleted(job=job, manifest=manifest)
    completed.summary.update({"final_loss": final_loss, "total_steps": 12, "trained_tokens": 3000, **summary})
    return events.new_event("job.completed", producer="test", user_id=user, subject_id=job_id, job_completed=completed)


async def _publish(js, event: events_pb2.Event, msg_id: str | None = None) -> None:
    await events.publish(js, event.type, event.SerializeToString(), msg_id or event.event_id)


async def _artifacts(service, user: str, *, count: int, order_by: str = "created") -> list[artifact_pb2.ModelArtifact]:
    """The user's artifacts once there are ``count`` of them (bounded wait)."""
    deadline = time.monotonic() + 20
    while True:
        response = await service.ListArtifacts(
            artifact_pb2.ListArtifactsRequest(order_by=order_by), metadata=as_user(user)
        )
        if response.total_size >= count or time.monotonic() > deadline:
            assert response.total_size == count
            return list(response.artifacts)
        await asyncio.sleep(0.1)


async def test_completed_job_becomes_a_downloadable_artifact(service, nats, settings):
    nc, js = nats
    user = str(uuid.uuid4())
    files = {"adapter_config.json": b'{"r": 8}', "adapter_model.safetensors": bytes(range(256)) * 8}
    event = _completed(user, final_loss=0.9, files=files, bucket=settings.models_bucket)
    storage = ObjectStorage.from_settings(settings)
    for f in event.job_completed.manifest.files:
        await asyncio.to_thread(storage.put_bytes, settings.models_bucket, f.key, files[f.name])
    announced: list[events_pb2.Event] = []

    async def collect(msg):
        created = events_pb2.Event.FromString(msg.data)
        if created.user_id == user:
            announced.append(created)

    sub = await nc.subscribe("artifact.created", cb=collect)

    await _publish(js, event)
    [artifact] = await _artifacts(service, user, count=1)

    assert artifact.job_id == event.subject_id
    assert (artifact.name, artifact.version, artifact.status) == ("Support chats LoRA r8", "1.0.0", "stored")
    assert artifact.quality_metrics["final_training_loss"] == 0.9
    assert artifact.training_summary["trained_tokens"] == 3000
    assert artifact.training_summary["final_cost"] == 0.42
    assert set(artifact.artifacts) == set(files)
    got = await service.GetArtifact(artifact_pb2.GetArtifactRequest(artifact_id=artifact.id), metadata=as_user(user))
    assert got.artifact == artifact

    response = await service.GetDownloadUrls(
        artifact_pb2.GetDownloadUrlsRequest(artifact_id=artifact.id), metadata=as_user(user)
    )
    # A day by default (BRIGHTRUN_DOWNLOAD_URL_SECONDS).
    assert 86300 < response.expires_at.ToSeconds() - time.time() <= 86400
    assert {u.file for u in response.download_urls} == set(files)
    async with httpx.AsyncClient() as http:
        for url in response.download_urls:
            body = (await http.get(url.url)).content
            assert body == files[url.file] and url.size_bytes == len(body)

    for _ in range(100):
        if announced:
            break
        await asyncio.sleep(0.1)
    await sub.unsubscribe()
    assert [e.artifact_created.artifact.id for e in announced] == [artifact.id]


async def test_a_job_gets_one_artifact_however_often_it_completes(service, nats, settings):
    _, js = nats
    user = str(uuid.uuid4())
    first = _completed(user, final_loss=1.0, files={"a.json": b"{}"}, bucket=settings.models_bucket)
    await _publish(js, first)
    await _artifacts(service, user, count=1)

    # The same envelope under a new message id, and a new event for the same job.
    await _publish(js, first, msg_id=str(uuid.uuid4()))
    again = events_pb2.Event()
    again.CopyFrom(first)
    again.event_id = str(uuid.uuid4())
    await _publish(js, again)
    # A later job's artifact appears only after the duplicates were handled.
    await _publish(js, _completed(user, final_loss=2.0, files={"a.json": b"{}"}, bucket=settings.models_bucket))
    artifacts = await _artifacts(service, user, count=2)
    assert [a.job_id for a in artifacts].count(first.subject_id) == 1


async def test_quality_order_paging_and_soft_delete(service, nats, settings):
    _, js = nats
    user = str(uuid.uuid4())
    storage = ObjectStorage.from_settings(settings)
    for loss in (1.5, 0.7, 1.1):
        event = _completed(user, final_loss=loss, files={"a.json": b"{}"}, bucket=settings.models_bucket)
        [adapter_file] = event.job_completed.manifest.files
        await asyncio.to_thread(storage.put_bytes, settings.models_bucket, adapter_file.key, b"{}")
        await _publish(js, event)
    by_quality = await _artifacts(service, user, count=3, order_by="quality")
    assert [a.quality_metrics["final_training_loss"] for a in by_quality] == [0.7, 1.1, 1.5]

    page = await service.ListArtifacts(artifact_pb2.ListArtifactsRequest(page_size=2), metadata=as_user(user))
    rest = await service.ListArtifacts(
        artifact_pb2.ListArtifactsRequest(page_size=2, page_token=page.next_page_token), metadata=as_user(user)
    )
    assert len(page.artifacts) == 2 and len(rest.artifacts) == 1 and rest.next_page_token == ""
    assert {a.id for a in [*page.artifacts, *rest.artifacts]} == {a.id for a in by_quality}

    deleted = await service.DeleteArtifact(
        artifact_pb2.DeleteArtifactRequest(artifact_id=by_quality[0].id), metadata=as_user(user)
    )
    assert deleted.artifact.status == "deleted"
    assert len(await _artifacts(service, user, count=2)) == 2
    prefix = f"{user}/{by_quality[0].job_id}/"
    assert await asyncio.to_thread(storage.list_keys, settings.models_bucket, prefix) == []
    kept = f"{user}/{by_quality[1].job_id}/"
    assert await asyncio.to_thread(storage.list_keys, settings.models_bucket, kept) == [f"{kept}a.json"]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await service.GetArtifact(artifact_pb2.GetArtifactRequest(artifact_id=by_quality[0].id), metadata=as_user(user))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_by_quality_an_overfitted_model_ranks_below_one_that_generalises(service, nats, settings):
    _, js = nats
    user = str(uuid.uuid4())
    # The case: training loss 0.42 with validation loss 1.9 is poor, however low the training loss.
    overfitted = _completed(user, final_loss=0.42, final_validation_loss=1.9, files={}, bucket=settings.models_bucket)
    generalises = _completed(user, final_loss=0.9, final_validation_loss=0.95, files={}, bucket=settings.models_bucket)
    for event in (overfitted, generalises):
        await _publish(js, event)

    by_quality = await _artifacts(service, user, count=2, order_by="quality")

    assert [a.job_id for a in by_quality] == [generalises.subject_id, overfitted.subject_id]
    assert [a.quality_metrics["overall_score"] for a in by_quality] == [5, 2]


async def test_another_users_artifact_is_not_found_and_bad_files_are_named(service, nats, settings):
    _, js = nats
    owner, stranger = str(uuid.uuid4()), str(uuid.uuid4())
    await _publish(
        js, _completed(owner, final_loss=1.0, files={"a.json": b"{}", "b.bin": b"0"}, bucket=settings.models_bucket)
    )
    [artifact] = await _artifacts(service, owner, count=1)

    calls = [
        service.GetArtifact(artifact_pb2.GetArtifactRequest(artifact_id=artifact.id), metadata=as_user(stranger)),
        service.GetDownloadUrls(
            artifact_pb2.GetDownloadUrlsRequest(artifact_id=artifact.id), metadata=as_user(stranger)
        ),
        service.DeleteArtifact(artifact_pb2.DeleteArtifactRequest(artifact_id=artifact.id), metadata=as_user(stranger)),
        service.GetArtifact(artifact_pb2.GetArtifactRequest(artifact_id="not-a-uuid"), metadata=as_user(owner)),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await service.GetDownloadUrls(
            artifact_pb2.GetDownloadUrlsRequest(artifact_id=artifact.id, files=["b.bin", "c.txt"]),
            metadata=as_user(owner),
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "a.json, b.bin" in error_details(caught.value)["details"]["files"][0]

    subset = await service.GetDownloadUrls(
        artifact_pb2.GetDownloadUrlsRequest(artifact_id=artifact.id, files=["b.bin"]), metadata=as_user(owner)
    )
    assert [u.file for u in subset.download_urls] == ["b.bin"]
