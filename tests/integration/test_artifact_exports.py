"""artifact_svc's model life after training, against real PostgreSQL, NATS
JetStream and S3: serving checks and lineage recorded with an artifact, exports
queued on the ASSIGN work queue, moved on by the agent's reports (once each,
whatever is redelivered), downloadable once completed, scoped to their owner.
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
from nats.js.api import AckPolicy, ConsumerConfig

from services.artifact_svc.server import start
from services.common import events, run_summary
from services.common.export_queue import export_durable, export_subject
from services.common.grpc import as_user, channel
from services.common.status import error_details
from services.common.storage import ObjectStorage, model_prefix

ADAPTER = {"rank": 32, "target_modules": ["k_proj", "q_proj", "v_proj"], "modules_to_save": [],
           "architecture": "LlamaForCausalLM", "dtype": "float32"}


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def service(settings):
    runtime = await start(settings, address="127.0.0.1:0")
    async with channel(f"127.0.0.1:{runtime.port}") as ch:
        yield artifact_pb2_grpc.ArtifactServiceStub(ch)
    await runtime.stop()


async def _artifact_of(js, service, settings, user: str, gpu_type: str, parent: str | None = None):
    """Publish job.completed for a new job of ``user`` (its adapter files in S3) and wait for its artifact."""
    job_id = str(uuid.uuid4())
    job = job_pb2.Job(id=job_id, user_id=user, dataset_id=str(uuid.uuid4()), dataset_name="Chats",
                      hyperparameters=job_pb2.Hyperparameters(rank=32, epochs=1, base_model="tiny-llama"),
                      gpu_config=job_pb2.GpuConfig(type=gpu_type, count=1), total_steps=4)
    if parent:
        job.parent_model_id = parent
    prefix = model_prefix(user, job_id) + "adapter/"
    storage = ObjectStorage.from_settings(settings)
    manifest = artifact_pb2.AdapterManifest(bucket=settings.models_bucket, prefix=prefix)
    for name, data in {"adapter_config.json": b'{"r": 32}', "adapter_model.safetensors": b"weights"}.items():
        await asyncio.to_thread(storage.put_bytes, settings.models_bucket, prefix + name, data)
        manifest.files.add(name=name, key=prefix + name, size_bytes=len(data), sha256="x")
    completed = events_pb2.JobCompleted(job=job, manifest=manifest)
    completed.summary.update({"final_loss": 1.0, run_summary.ADAPTER: ADAPTER})
    event = events.new_event("job.completed", producer="test", user_id=user, subject_id=job_id,
                             job_completed=completed)
    await events.publish(js, event.type, event.SerializeToString(), event.event_id)
    deadline = time.monotonic() + 20
    while True:
        listed = await service.ListArtifacts(artifact_pb2.ListArtifactsRequest(page_size=100), metadata=as_user(user))
        found = [a for a in listed.artifacts if a.job_id == job_id]
        if found or time.monotonic() > deadline:
            return found[0]
        await asyncio.sleep(0.1)


async def test_an_artifact_carries_its_serving_checks_and_its_lineage(service, nats, settings):
    _, js = nats
    user = str(uuid.uuid4())
    grandparent = await _artifact_of(js, service, settings, user, "CPU")
    parent = await _artifact_of(js, service, settings, user, "CPU", parent=grandparent.id)
    child = await _artifact_of(js, service, settings, user, "CPU", parent=parent.id)

    checks = {(c.server, c.check): (c.status, c.reason) for c in child.serving}
    assert checks[("vllm", "rank")][0] == "warning" and "--max-lora-rank 32" in checks[("vllm", "rank")][1]
    assert checks[("vllm", "target_modules")][0] == "pass"
    assert checks[("vllm", "dtype")][0] == "warning"
    assert checks[("lorax", "architecture")][0] == "pass"
    assert child.configuration["adapter"]["rank"] == 32

    got = (await service.GetArtifact(artifact_pb2.GetArtifactRequest(artifact_id=child.id),
                                     metadata=as_user(user))).artifact
    assert got.parent_model_id == parent.id
    assert [(m.id, m.job_id) for m in got.lineage] == [(grandparent.id, grandparent.job_id), (parent.id, parent.job_id)]
    assert not (await service.GetArtifact(artifact_pb2.GetArtifactRequest(artifact_id=grandparent.id),
                                          metadata=as_user(user))).artifact.lineage


async def _report(js, export_id: str, user: str, event_id: str | None = None, **payload) -> str:
    kind = next(iter(payload))
    type_ = {"trainer_export_started": "trainer.export.started", "trainer_export_completed": "trainer.export.completed",
             "trainer_export_failed": "trainer.export.failed"}[kind]
    event = events.new_event(type_, producer="test", user_id=user, subject_id=export_id, **payload)
    if event_id:
        event.event_id = event_id
    await events.publish(js, event.type, event.SerializeToString(), event.event_id)
    return event.event_id


async def _export_status(service, user, artifact_id, export_id, status: str,
                         error: str = "") -> artifact_pb2.GetExportResponse:
    """The export once it has ``status`` and ``error`` (bounded wait)."""
    deadline = time.monotonic() + 20
    while True:
        got = await service.GetExport(artifact_pb2.GetExportRequest(artifact_id=artifact_id, export_id=export_id),
                                      metadata=as_user(user))
        if (got.export.status, got.export.error) == (status, error) or time.monotonic() > deadline:
            assert (got.export.status, got.export.error) == (status, error), got.export
            return got
        await asyncio.sleep(0.1)


async def test_an_export_is_queued_for_an_agent_followed_and_downloaded(service, nats, settings):
    _, js = nats
    user, other = str(uuid.uuid4()), str(uuid.uuid4())
    gpu_type = f"T{uuid.uuid4().hex[:8]}"  # a queue of this test's own
    artifact = await _artifact_of(js, service, settings, user, gpu_type)

    created = (await service.CreateExport(artifact_pb2.CreateExportRequest(artifact_id=artifact.id, kind="merged"),
                                          metadata=as_user(user))).export
    assert (created.status, created.kind, created.artifact_id) == ("queued", "merged", artifact.id)
    assert created.prefix == f"{model_prefix(user, artifact.job_id)}exports/{created.id}/"
    again = (await service.CreateExport(artifact_pb2.CreateExportRequest(artifact_id=artifact.id),
                                        metadata=as_user(user))).export
    assert again.id == created.id  # one live export of a kind

    # The work order, on the ASSIGN work queue for agents of the job's GPU type.
    await js.add_consumer("ASSIGN", ConsumerConfig(durable_name=export_durable(gpu_type), ack_policy=AckPolicy.EXPLICIT,
                                                   filter_subjects=[export_subject(gpu_type)]))
    sub = await js.pull_subscribe_bind(export_durable(gpu_type), stream="ASSIGN")
    [msg] = await sub.fetch(batch=10, timeout=10)
    assignment = artifact_pb2.ExportAssignment.FromString(msg.data)
    await msg.ack()
    await sub.unsubscribe()
    assert (assignment.export_id, assignment.user_id, assignment.base_model) == (created.id, user, "tiny-llama")
    assert assignment.output_prefix == created.prefix and assignment.output_bucket == settings.models_bucket
    assert sorted(f.name for f in assignment.adapter.files) == ["adapter_config.json", "adapter_model.safetensors"]

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await service.CreateExport(artifact_pb2.CreateExportRequest(artifact_id=artifact.id, kind="gguf"),
                                   metadata=as_user(user))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "gguf" in error_details(refused.value)["details"]["kind"][0]
    for call, request in ((service.CreateExport, artifact_pb2.CreateExportRequest(artifact_id=artifact.id)),
                          (service.GetExport, artifact_pb2.GetExportRequest(artifact_id=artifact.id,
                                                                            export_id=created.id)),
                          (service.ListExports, artifact_pb2.ListExportsRequest(artifact_id=artifact.id))):
        with pytest.raises(grpc.aio.AioRpcError) as hidden:
            await call(request, metadata=as_user(other))
        assert hidden.value.code() == grpc.StatusCode.NOT_FOUND

    await _report(js, created.id, user, trainer_export_started=events_pb2.TrainerExportStarted(
        export_id=created.id, attempt=1, agent_id="a"))
    running = await _export_status(service, user, artifact.id, created.id, "running")
    assert not running.download_urls

    storage = ObjectStorage.from_settings(settings)
    files = {"config.json": b"{}", "model-00001-of-00002.safetensors": b"one", "model-00002-of-00002.safetensors": b"2"}
    manifest = artifact_pb2.AdapterManifest(bucket=settings.models_bucket, prefix=created.prefix)
    for name, data in files.items():
        await asyncio.to_thread(storage.put_bytes, settings.models_bucket, created.prefix + name, data)
        manifest.files.add(name=name, key=created.prefix + name, size_bytes=len(data), sha256="x")
    completed_id = await _report(js, created.id, user, trainer_export_completed=events_pb2.TrainerExportCompleted(
        export_id=created.id, manifest=manifest))
    done = await _export_status(service, user, artifact.id, created.id, "completed")
    assert [u.file for u in done.download_urls] == sorted(files)
    async with httpx.AsyncClient() as http:
        for url in done.download_urls:
            assert (await http.get(url.url)).content == files[url.file]

    # A redelivered completion and a late failure (an agent that had given up) change nothing.
    await _report(js, created.id, user, event_id=completed_id, trainer_export_completed=events_pb2.TrainerExportCompleted(
        export_id=created.id, manifest=artifact_pb2.AdapterManifest()))
    await _report(js, created.id, user, trainer_export_failed=events_pb2.TrainerExportFailed(
        export_id=created.id, reason="late", retryable=False))
    await asyncio.sleep(1.0)
    final = await _export_status(service, user, artifact.id, created.id, "completed")
    assert len(final.download_urls) == 3 and final.export.error == ""
    listed = await service.ListExports(artifact_pb2.ListExportsRequest(artifact_id=artifact.id), metadata=as_user(user))
    assert [e.id for e in listed.exports] == [created.id]


async def test_a_failed_export_can_be_asked_for_again(service, nats, settings):
    _, js = nats
    user = str(uuid.uuid4())
    artifact = await _artifact_of(js, service, settings, user, f"T{uuid.uuid4().hex[:8]}")
    first = (await service.CreateExport(artifact_pb2.CreateExportRequest(artifact_id=artifact.id),
                                        metadata=as_user(user))).export
    # A retryable failure: queued again for the redelivered assignment.
    await _report(js, first.id, user, trainer_export_failed=events_pb2.TrainerExportFailed(
        export_id=first.id, reason="out of memory", retryable=True))
    await _export_status(service, user, artifact.id, first.id, "queued", "out of memory")
    await _report(js, first.id, user, trainer_export_failed=events_pb2.TrainerExportFailed(
        export_id=first.id, reason="OSError: no such model", retryable=False))
    await _export_status(service, user, artifact.id, first.id, "failed", "OSError: no such model")

    second = (await service.CreateExport(artifact_pb2.CreateExportRequest(artifact_id=artifact.id),
                                         metadata=as_user(user))).export
    assert second.id != first.id and second.status == "queued"


async def test_an_export_whose_agents_kept_dying_is_failed_not_left_running(service, nats, settings):
    _, js = nats
    user = str(uuid.uuid4())
    gpu_type = f"T{uuid.uuid4().hex[:8]}"
    artifact = await _artifact_of(js, service, settings, user, gpu_type)
    export = (await service.CreateExport(artifact_pb2.CreateExportRequest(artifact_id=artifact.id),
                                         metadata=as_user(user))).export
    # An agent consumer that gives up after one delivery; the agent that took it never acks (it died).
    await js.add_consumer("ASSIGN", ConsumerConfig(
        durable_name=export_durable(gpu_type), ack_policy=AckPolicy.EXPLICIT, ack_wait=1.0, max_deliver=1,
        filter_subjects=[export_subject(gpu_type)]))
    sub = await js.pull_subscribe_bind(export_durable(gpu_type), stream="ASSIGN")
    [msg] = await sub.fetch(batch=1, timeout=10)
    assert artifact_pb2.ExportAssignment.FromString(msg.data).export_id == export.id
    await _report(js, export.id, user, trainer_export_started=events_pb2.TrainerExportStarted(
        export_id=export.id, attempt=1, agent_id="doomed"))
    await _export_status(service, user, artifact.id, export.id, "running")

    # Asking again after ack_wait makes JetStream give up on it (its MAX_DELIVERIES advisory).
    await asyncio.sleep(1.5)
    with pytest.raises(TimeoutError):
        await sub.fetch(batch=1, timeout=1.0)
    await sub.unsubscribe()
    failed = await _export_status(service, user, artifact.id, export.id, "failed",
                                  "the export was handed to an agent 1 time(s) and never finished (its agents "
                                  "stopped responding); ask for it again")
    assert not failed.download_urls
