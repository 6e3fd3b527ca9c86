"""job_svc on real PostgreSQL and NATS: create, the assignment on JetStream,
trainer events driving the state machine, WatchJob, cancel and scoping.

dataset_svc is replaced by a small DatasetService over real gRPC that answers
with fixed datasets, so this test exercises job_svc alone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import uuid

import grpc
from google.protobuf.message import DecodeError
import pytest
import pytest_asyncio
from nats.js.api import AckPolicy, ConsumerConfig
from prometheus_client import REGISTRY
from sqlalchemy import text

from brightrun.artifact.v1 import artifact_pb2, artifact_pb2_grpc
from brightrun.billing.v1 import billing_pb2, billing_pb2_grpc
from brightrun.dataset.v1 import dataset_pb2, dataset_pb2_grpc
from brightrun.events.v1 import events_pb2
from brightrun.job.v1 import job_pb2, job_pb2_grpc
from google.protobuf import struct_pb2
from services.common import events
from services.common.db import Database
from services.common.errors import NotFound
from services.billing_svc.server import start as start_billing
from services.common.grpc import as_user, channel, create_server, rpc, user_id
from services.common.status import error_details
from services.job_svc import attempts, gauges, store as job_store
from services.job_svc.handlers import DATASET_TIMEOUT_S, JobHandlers
from services.job_svc.server import start

OWNER = str(uuid.uuid4())
READY = str(uuid.uuid4())
UPLOADING = str(uuid.uuid4())
# Ready, but validated before content hashes were recorded.
UNHASHED = str(uuid.uuid4())
CONTENT_SHA256 = "5e" * 32


def _statistics(**counts) -> struct_pb2.Struct:
    statistics = struct_pb2.Struct()
    statistics.update(counts)
    return statistics


class Datasets(dataset_pb2_grpc.DatasetServiceServicer):
    # The seconds left of each call's deadline when it arrived here.
    time_remaining: list[float] = []

    @rpc
    async def GetDataset(self, request, context):
        self.time_remaining.append(context.time_remaining())
        if user_id(context) != OWNER or request.dataset_id not in (READY, UPLOADING, UNHASHED):
            raise NotFound("Dataset not found")
        ready = request.dataset_id != UPLOADING
        return dataset_pb2.GetDatasetResponse(
            dataset=dataset_pb2.Dataset(
                id=request.dataset_id, user_id=OWNER, name="chats", format="brightrun_lora_v4",
                status=dataset_pb2.DATASET_STATUS_READY if ready else dataset_pb2.DATASET_STATUS_UPLOADING,
                training_ready=ready, total_training_pairs=40, total_validation_pairs=2, total_tokens=4000,
                statistics=_statistics(conversations=40, validation_conversations=2),
                storage_bucket="lora-datasets", storage_path=f"{OWNER}/{request.dataset_id}/d.jsonl",
                content_sha256=CONTENT_SHA256 if request.dataset_id == READY else "",
            )
        )


class Billing(billing_pb2_grpc.BillingServiceServicer):
    """Budgets of $``remaining[user]`` left this month; a user not in it has no budget."""

    remaining: dict[str, float] = {}

    @rpc
    async def CheckBudget(self, request, context):
        left = self.remaining.get(user_id(context))
        budget = billing_pb2.Budget(month="2026-12-01")
        if left is not None:
            budget.amount, budget.remaining = 20.0, left
        return billing_pb2.CheckBudgetResponse(allowed=left is None or request.estimated_cost <= left, budget=budget)


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def fakes():
    """The address of the fake DatasetService and BillingService."""
    server, port, _ = create_server(
        "127.0.0.1:0",
        [lambda s: dataset_pb2_grpc.add_DatasetServiceServicer_to_server(Datasets(), s),
         lambda s: billing_pb2_grpc.add_BillingServiceServicer_to_server(Billing(), s)],
        [],
    )
    await server.start()
    yield f"127.0.0.1:{port}"
    await server.stop(0)


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def stub(settings, fakes):
    runtime = await start(dataclasses.replace(settings, dataset_addr=fakes, billing_addr=fakes), address="127.0.0.1:0")
    async with channel(f"127.0.0.1:{runtime.port}") as ch:
        yield job_pb2_grpc.JobServiceStub(ch)
    await runtime.stop()


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def js(settings):
    nc, jetstream = await events.connect(settings.nats_url, "job-test")
    yield jetstream
    await nc.close()


REQUEST = dict(
    dataset_id=READY,
    preset_id="custom",
    gpu_config=job_pb2.GpuConfig(type="CPU", count=1),
    hyperparameters=job_pb2.Hyperparameters(learning_rate=0.001, batch_size=8, epochs=2, rank=8),
)


async def _trainer_event(js, job: job_pb2.Job, type_: str, event_id: str | None = None, **payload) -> None:
    event = events.new_event(type_, producer="test", user_id=job.user_id, subject_id=job.id, **payload)
    if event_id:
        event.event_id = event_id
    await events.publish(js, type_, event.SerializeToString(), str(uuid.uuid4()))


async def _wait(stub, job_id: str, done, timeout: float = 20.0) -> job_pb2.Job:
    for _ in range(int(timeout / 0.1)):
        job = (await stub.GetJob(job_pb2.GetJobRequest(job_id=job_id), metadata=as_user(OWNER))).job
        if done(job):
            return job
        await asyncio.sleep(0.1)
    raise AssertionError(f"job never reached the expected state: {job}")


def _point(job_id: str, step: int, loss: float, **fields) -> job_pb2.MetricPoint:
    point = job_pb2.MetricPoint(job_id=job_id, step=step, epoch=1, training_loss=loss, learning_rate=1e-3, **fields)
    point.timestamp.GetCurrentTime()
    return point


async def test_a_job_is_queued_with_its_assignment_and_trainer_events_drive_it(stub, js):
    job = (await stub.CreateJob(job_pb2.CreateJobRequest(**REQUEST), metadata=as_user(OWNER))).job
    assert job.status == job_pb2.JOB_STATUS_QUEUED
    assert job.total_steps == 10  # ceil((40 - 2 held-out conversations) / 8) * 2
    assert job.hyperparameters.alpha == 16

    sub = await js.pull_subscribe("assign.CPU.1", durable=None, stream="ASSIGN")
    msgs = await sub.fetch(1, timeout=10)
    assignment = job_pb2.TrainingAssignment.FromString(msgs[0].data)
    await msgs[0].ack()
    await sub.unsubscribe()
    assert assignment.job_id == job.id and assignment.dataset_path.endswith("/d.jsonl")
    assert assignment.dataset_sha256 == CONTENT_SHA256
    assert assignment.output_prefix == f"{OWNER}/{job.id}/"

    watched: list = []

    async def watch():
        async for update in stub.WatchJob(job_pb2.WatchJobRequest(job_id=job.id), metadata=as_user(OWNER)):
            watched.append(update)

    watcher = asyncio.create_task(watch())
    while not watched:  # the snapshot first, so that it shows the job still queued
        await asyncio.sleep(0.05)
    layout = job_pb2.BatchLayout(micro_batch_size=4, gradient_accumulation_steps=1, world_size=2)
    started = events_pb2.TrainerAttemptStarted(job_id=job.id, attempt=1, batch_layout=layout)
    await _trainer_event(js, job, "trainer.attempt.started", trainer_attempt_started=started)
    initializing = await _wait(stub, job.id, lambda j: j.status == job_pb2.JOB_STATUS_INITIALIZING)
    assert initializing.batch_layout == layout and not job.HasField("batch_layout")
    # The wait from queued to taken is recorded on the job; unset while it was queued.
    assert initializing.HasField("queue_wait_seconds") and initializing.queue_wait_seconds >= 0
    assert not job.HasField("queue_wait_seconds")
    replayed = str(uuid.uuid4())
    gpu = {"gpu_utilization": 97.0, "gpu_memory_gb": 41.5}
    for step in (1, 2):
        point = _point(job.id, step, 3.0 - step, **(gpu if step == 2 else {}))
        metrics = events_pb2.TrainerMetrics(job_id=job.id, attempt=1, metric_point=point, total_steps=10)
        await _trainer_event(js, job, "trainer.metrics", event_id=replayed if step == 1 else None, trainer_metrics=metrics)
    # A resumed attempt replays step 2 under a new event id: still one point per step.
    await _trainer_event(js, job, "trainer.metrics",
                         trainer_metrics=events_pb2.TrainerMetrics(job_id=job.id, attempt=2, metric_point=_point(job.id, 2, 9.9)))
    running = await _wait(stub, job.id, lambda j: j.current_step == 2)
    # Validation after step 2 joins step 2's point, once: its replay by attempt 2 adds nothing.
    for attempt, loss in ((1, 0.75), (2, 0.5)):
        validated = _point(job.id, 2, 0.0, validation_loss=loss, perplexity=math.exp(loss))
        metrics = events_pb2.TrainerMetrics(job_id=job.id, attempt=attempt, metric_point=validated)
        await _trainer_event(js, job, "trainer.metrics", trainer_metrics=metrics)
    validated = await _wait(stub, job.id, lambda j: j.current_metrics.HasField("validation_loss"))
    assert (validated.current_metrics.validation_loss, validated.current_metrics.training_loss) == (0.75, 1.0)
    assert running.status == job_pb2.JOB_STATUS_RUNNING and running.progress == 20.0
    assert running.current_metrics.training_loss == 1.0
    assert (running.current_metrics.gpu_utilization, running.current_metrics.gpu_memory_gb) == (97.0, 41.5)
    manifest = artifact_pb2.AdapterManifest(bucket="lora-models", prefix="p/")
    completed = events_pb2.TrainerAttemptCompleted(job_id=job.id, attempt=1, manifest=manifest)
    completed.summary.update({"steps_completed": 2, "stopped_early": True})
    await _trainer_event(js, job, "trainer.attempt.completed", trainer_attempt_completed=completed)
    done = await _wait(stub, job.id, lambda j: j.status == job_pb2.JOB_STATUS_COMPLETED)
    assert done.progress == 100 and done.HasField("completed_at") and done.final_cost == 0
    # Stopped early at step 2 of 10: the job says so rather than claim all ten.
    assert (done.current_step, done.total_steps) == (2, 10)

    points = (await stub.ListMetricPoints(job_pb2.ListMetricPointsRequest(job_id=job.id), metadata=as_user(OWNER))).metric_points
    assert [(p.step, p.training_loss) for p in points] == [(1, 2.0), (2, 1.0)]
    assert not points[0].HasField("validation_loss")
    assert (points[1].validation_loss, points[1].perplexity) == (0.75, math.exp(0.75))
    assert not points[0].HasField("gpu_memory_gb")
    assert (points[1].gpu_utilization, points[1].gpu_memory_gb) == (97.0, 41.5)
    # The watch stays open until artifact_svc's artifact is linked, and ends with the job naming it.
    await asyncio.sleep(1)
    assert not watcher.done()
    artifact = artifact_pb2.ModelArtifact(id=str(uuid.uuid4()), job_id=job.id, user_id=OWNER)
    await _trainer_event(js, job, "artifact.created", artifact_created=events_pb2.ArtifactCreated(artifact=artifact))
    await asyncio.wait_for(watcher, 10)
    assert watched[-1].job.artifact_id == artifact.id
    statuses = [u.job.status for u in watched if u.HasField("job")]
    assert statuses[0] == job_pb2.JOB_STATUS_QUEUED and statuses[-1] == job_pb2.JOB_STATUS_COMPLETED
    # The agent's acceptance is streamed live (job.initializing), before the first point makes it run.
    assert statuses.index(job_pb2.JOB_STATUS_INITIALIZING) < statuses.index(job_pb2.JOB_STATUS_RUNNING)
    watched_points = [u.metric_point for u in watched if u.HasField("metric_point")]
    assert [p.step for p in watched_points] == [1, 2, 2]
    assert watched_points[-1].validation_loss == 0.75 and watched_points[-1].training_loss == 1.0
    # Each point comes with the job's progress, so a monitor page needs nothing else.
    assert 20.0 in [u.job.progress for u in watched if u.HasField("job")]

    # Watching an ended job replays what is asked for and ends at once.
    replay = [u async for u in stub.WatchJob(job_pb2.WatchJobRequest(job_id=job.id, after_step=1), metadata=as_user(OWNER))]
    assert replay[0].job.status == job_pb2.JOB_STATUS_COMPLETED
    assert [u.metric_point.step for u in replay[1:]] == [2]

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.CancelJob(job_pb2.CancelJobRequest(job_id=job.id), metadata=as_user(OWNER))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_user_error_fails_at_once_and_a_retryable_one_requeues(stub, js):
    retried = (await stub.CreateJob(job_pb2.CreateJobRequest(**REQUEST), metadata=as_user(OWNER))).job

    async def started(attempt: int) -> None:  # each attempt's agent reports its start before anything else
        await _trainer_event(js, retried, "trainer.attempt.started",
                             trainer_attempt_started=events_pb2.TrainerAttemptStarted(job_id=retried.id, attempt=attempt))

    await started(1)
    await _trainer_event(js, retried, "trainer.attempt.failed",
                         trainer_attempt_failed=events_pb2.TrainerAttemptFailed(job_id=retried.id, attempt=1, reason="node lost", retryable=True))
    requeued = await _wait(stub, retried.id, lambda j: j.retry_count == 1)
    assert requeued.status == job_pb2.JOB_STATUS_QUEUED
    await started(2)
    await _trainer_event(js, retried, "trainer.attempt.failed",
                         trainer_attempt_failed=events_pb2.TrainerAttemptFailed(job_id=retried.id, attempt=2, reason="rank too large for memory", retryable=False))
    failed = await _wait(stub, retried.id, lambda j: j.status == job_pb2.JOB_STATUS_FAILED)
    assert failed.error_message == "rank too large for memory" and failed.retry_count == 1


async def _job_events(js, job_id: str, until) -> list[events_pb2.Event]:
    """The job's events on the JOBS stream, oldest first, up to the first for which ``until`` holds."""
    sub = await js.pull_subscribe("job.>", stream="JOBS")
    seen: list[events_pb2.Event] = []
    try:
        for _ in range(100):
            try:
                msgs = await sub.fetch(100, timeout=0.2)
            except TimeoutError:
                continue
            for msg in msgs:
                try:
                    event = events_pb2.Event.FromString(msg.data)
                except DecodeError:  # another test's poison
                    continue
                if event.subject_id == job_id:
                    seen.append(event)
                    if until(event):
                        return seen
        raise AssertionError(f"the awaited event never came: {[e.type for e in seen]}")
    finally:
        await sub.unsubscribe()


async def test_a_job_requeued_and_resumed_is_announced_as_started_once(stub, js):
    job = (await stub.CreateJob(job_pb2.CreateJobRequest(**REQUEST), metadata=as_user(OWNER))).job
    for attempt in (1, 2):
        started = events_pb2.TrainerAttemptStarted(job_id=job.id, attempt=attempt)
        await _trainer_event(js, job, "trainer.attempt.started", trainer_attempt_started=started)
        metrics = events_pb2.TrainerMetrics(job_id=job.id, attempt=attempt, metric_point=_point(job.id, attempt, 2.0))
        await _trainer_event(js, job, "trainer.metrics", trainer_metrics=metrics)
        await _wait(stub, job.id, lambda j: j.current_step == attempt and j.status == job_pb2.JOB_STATUS_RUNNING)
        if attempt == 1:  # the agent hands the job back (SIGTERM): queued again, to resume
            failed = events_pb2.TrainerAttemptFailed(job_id=job.id, attempt=1, reason="agent stopping", retryable=True)
            await _trainer_event(js, job, "trainer.attempt.failed", trainer_attempt_failed=failed)
            await _wait(stub, job.id, lambda j: j.status == job_pb2.JOB_STATUS_QUEUED)
    # job.progressed of step 2 is written with anything its metrics published, so everything is in by then.
    seen = await _job_events(js, job.id, lambda e: e.HasField("job_progressed")
                             and e.job_progressed.metric_point.step == 2)
    assert [e.type for e in seen if e.type == "job.started"] == ["job.started"]


async def test_a_late_report_for_a_cancelled_job_moves_nothing_and_keeps_the_step_it_trained(stub, js):
    job = (await stub.CreateJob(job_pb2.CreateJobRequest(**REQUEST), metadata=as_user(OWNER))).job
    started = events_pb2.TrainerAttemptStarted(job_id=job.id, attempt=1)
    await _trainer_event(js, job, "trainer.attempt.started", trainer_attempt_started=started)
    metrics = events_pb2.TrainerMetrics(job_id=job.id, attempt=1, metric_point=_point(job.id, 1, 2.0))
    await _trainer_event(js, job, "trainer.metrics", trainer_metrics=metrics)
    await _wait(stub, job.id, lambda j: j.current_step == 1)
    cancelled = (await stub.CancelJob(job_pb2.CancelJobRequest(job_id=job.id), metadata=as_user(OWNER))).job

    # Reports the trainer sent before it heard of the cancel, each an illegal move now.
    late = events_pb2.TrainerMetrics(job_id=job.id, attempt=1, metric_point=_point(job.id, 2, 1.0))
    await _trainer_event(js, job, "trainer.metrics", trainer_metrics=late)
    completed = events_pb2.TrainerAttemptCompleted(job_id=job.id, attempt=1)
    await _trainer_event(js, job, "trainer.attempt.completed", trainer_attempt_completed=completed)
    failed = events_pb2.TrainerAttemptFailed(job_id=job.id, attempt=1, reason="node lost", retryable=True)
    await _trainer_event(js, job, "trainer.attempt.failed", trainer_attempt_failed=failed)
    # The consumer takes trainer events in order: once a later job's start is applied, the late ones were too.
    marker = (await stub.CreateJob(job_pb2.CreateJobRequest(**REQUEST), metadata=as_user(OWNER))).job
    await _trainer_event(js, marker, "trainer.attempt.started",
                         trainer_attempt_started=events_pb2.TrainerAttemptStarted(job_id=marker.id, attempt=1))
    await _wait(stub, marker.id, lambda j: j.status == job_pb2.JOB_STATUS_INITIALIZING)

    after = (await stub.GetJob(job_pb2.GetJobRequest(job_id=job.id), metadata=as_user(OWNER))).job
    assert after == cancelled
    # The step was trained before the cancel: its point is history, whenever it arrives.
    points = (await stub.ListMetricPoints(job_pb2.ListMetricPointsRequest(job_id=job.id), metadata=as_user(OWNER))).metric_points
    assert [p.step for p in points] == [1, 2]


async def test_cancel_ends_a_queued_job(stub):
    job = (await stub.CreateJob(job_pb2.CreateJobRequest(**REQUEST), metadata=as_user(OWNER))).job
    cancelled = (await stub.CancelJob(job_pb2.CancelJobRequest(job_id=job.id), metadata=as_user(OWNER))).job
    assert cancelled.status == job_pb2.JOB_STATUS_CANCELLED


async def test_a_dataset_that_is_not_ready_is_a_failed_precondition(stub):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.CreateJob(job_pb2.CreateJobRequest(**{**REQUEST, "dataset_id": UPLOADING}), metadata=as_user(OWNER))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert info.value.details() == "Dataset not ready for training"


async def test_a_dataset_without_a_recorded_content_hash_must_be_revalidated_first(stub):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.CreateJob(job_pb2.CreateJobRequest(**{**REQUEST, "dataset_id": UNHASHED}), metadata=as_user(OWNER))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "content hash" in info.value.details()


@pytest.mark.parametrize("base_model", ["/etc", "/proc/self/root", "/proc/self/root/etc/passwd", "../../etc"])
async def test_a_base_model_outside_the_model_directories_is_refused_naming_it(stub, settings, base_model):
    hp = job_pb2.Hyperparameters(base_model=base_model, learning_rate=0.001, batch_size=8, epochs=2, rank=8)
    for call in (
        stub.CreateJob(job_pb2.CreateJobRequest(**{**REQUEST, "hyperparameters": hp}), metadata=as_user(OWNER)),
        stub.EstimateJob(job_pb2.EstimateJobRequest(dataset_id=READY, gpu_config=REQUEST["gpu_config"],
                                                    hyperparameters=hp), metadata=as_user(OWNER)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "hyperparameters.base_model" in info.value.details()
        [problem] = error_details(info.value)["details"]["hyperparameters.base_model"]
        # Names the setting and the models there, never the server's own paths.
        assert "BRIGHTRUN_MODEL_DIRS" in problem and settings.default_base_model.rsplit("/", 1)[-1] in problem
        assert str(settings.model_dirs[0]) not in problem


async def test_a_base_model_inside_the_model_directories_is_stored_as_its_real_path(stub, settings):
    inside = settings.model_dirs[0] / "some-model"
    inside.mkdir(parents=True, exist_ok=True)
    (inside / "config.json").write_text("{}")  # a model directory; no sizes, so its memory goes unchecked
    hp = job_pb2.Hyperparameters(base_model=f"{inside.parent}/./some-model", learning_rate=0.001, batch_size=8,
                                 epochs=2, rank=8)
    job = (await stub.CreateJob(job_pb2.CreateJobRequest(**{**REQUEST, "hyperparameters": hp}),
                                metadata=as_user(OWNER))).job
    assert job.hyperparameters.base_model == str(inside)


async def test_another_users_job_and_dataset_are_not_found(stub):
    job = (await stub.CreateJob(job_pb2.CreateJobRequest(**REQUEST), metadata=as_user(OWNER))).job
    stranger = as_user(str(uuid.uuid4()))
    for call in (
        stub.GetJob(job_pb2.GetJobRequest(job_id=job.id), metadata=stranger),
        stub.CancelJob(job_pb2.CancelJobRequest(job_id=job.id), metadata=stranger),
        stub.CreateJob(job_pb2.CreateJobRequest(**REQUEST), metadata=stranger),
        stub.EstimateJob(job_pb2.EstimateJobRequest(dataset_id=READY, preset_id="fast", gpu_config=REQUEST["gpu_config"]),
                         metadata=stranger),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call
        assert info.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_retried_create_with_the_same_request_id_returns_the_first_job(stub):
    request = job_pb2.CreateJobRequest(**REQUEST, request_id=str(uuid.uuid4()))
    first, second = await asyncio.gather(
        stub.CreateJob(request, metadata=as_user(OWNER)), stub.CreateJob(request, metadata=as_user(OWNER))
    )
    assert first.job.id == second.job.id


async def test_a_request_id_reused_with_another_request_is_refused_and_the_first_job_kept(stub):
    key = str(uuid.uuid4())
    first = await stub.CreateJob(job_pb2.CreateJobRequest(**REQUEST, request_id=key), metadata=as_user(OWNER))
    other = job_pb2.CreateJobRequest(**{**REQUEST, "preset_id": "balanced"}, request_id=key)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.CreateJob(other, metadata=as_user(OWNER))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_details(info.value)["reason"] == "idempotency_key_reused"
    again = await stub.CreateJob(job_pb2.CreateJobRequest(**REQUEST, request_id=key), metadata=as_user(OWNER))
    assert again.job.id == first.job.id and again.job.preset_id == "custom"


async def test_a_job_whose_agents_keep_dying_fails_with_a_reason(stub, js):
    from nats.js.api import AckPolicy, ConsumerConfig

    job = (
        await stub.CreateJob(
            job_pb2.CreateJobRequest(
                **{
                    **REQUEST,
                    "gpu_config": job_pb2.GpuConfig(type="H100", count=3),
                    "hyperparameters": job_pb2.Hyperparameters(learning_rate=0.001, batch_size=6, epochs=2, rank=8),
                }
            ),
            metadata=as_user(OWNER),
        )
    ).job
    durable = f"dying-agents-{uuid.uuid4().hex[:8]}"
    await js.add_consumer(
        "ASSIGN",
        ConsumerConfig(durable_name=durable, ack_policy=AckPolicy.EXPLICIT, ack_wait=1, max_deliver=2,
                       filter_subject="assign.H100.3"),
    )
    sub = await js.pull_subscribe_bind(durable, stream="ASSIGN")
    for _ in range(2):  # two agents take it and die without a word
        msgs = await sub.fetch(1, timeout=10)
        assert job_pb2.TrainingAssignment.FromString(msgs[0].data).job_id == job.id
    # The next agent asking finds nothing: JetStream has given up on it.
    with pytest.raises(TimeoutError):
        await sub.fetch(1, timeout=3)
    failed = await _wait(stub, job.id, lambda j: j.status == job_pb2.JOB_STATUS_FAILED, timeout=30)
    assert "interrupted 2 times" in failed.error_message
    await sub.unsubscribe()
    await js.delete_consumer("ASSIGN", durable)


async def test_presets_gpu_types_and_the_estimate(stub, settings):
    presets = (await stub.ListPresets(job_pb2.ListPresetsRequest(), metadata=as_user(OWNER))).presets
    assert [p.id for p in presets] == ["fast", "balanced", "quality", "conservative", "aggressive", "custom"]
    assert {p.hyperparameters.base_model for p in presets} == {settings.default_base_model}
    gpus = {g.type: g for g in (await stub.ListGpuTypes(job_pb2.ListGpuTypesRequest(), metadata=as_user(OWNER))).gpu_types}
    assert gpus["CPU"].price_per_gpu_hour == 0 and gpus["CPU"].max_count == 1 and gpus["H100"].max_count == 8

    request = job_pb2.EstimateJobRequest(dataset_id=READY, gpu_config=job_pb2.GpuConfig(type="H100", count=2),
                                         hyperparameters=job_pb2.Hyperparameters(learning_rate=0.0002, batch_size=8,
                                                                                 epochs=3, rank=16))
    estimate = (await stub.EstimateJob(request, metadata=as_user(OWNER))).estimate
    # The default base model is a tiny local one (under 100M parameters, read from its config.json):
    # 20 times the catalogue's 7B figure of 4400 tokens/s for two H100s. No job of its kind ran: the table.
    assert estimate.basis == "table" and estimate.training_details.estimated_throughput_tokens_per_sec == 88000
    # 40 conversations (2 held out), 4000 tokens: 15 steps of 800 tokens at 88000 tokens/s, plus 10 + 3x5 + 5 minutes.
    hours = (15 * 800 / 88000 + 1800) / 3600
    assert estimate.estimated_duration_seconds == pytest.approx(hours * 3600)
    assert estimate.training_details.total_steps == 15 and estimate.training_details.dataset_name == "chats"
    assert estimate.hourly_rate == 8.4 and estimate.estimated_duration_hours == round(hours, 2)
    assert estimate.estimated_cost == round(8.4 * hours + 0.5, 2)
    # The job created with that configuration plans the estimate's steps.
    created = job_pb2.CreateJobRequest(dataset_id=READY, preset_id="custom", gpu_config=request.gpu_config,
                                       hyperparameters=request.hyperparameters)
    job = (await stub.CreateJob(created, metadata=as_user(OWNER))).job
    assert job.total_steps == estimate.training_details.total_steps
    await stub.CancelJob(job_pb2.CancelJobRequest(job_id=job.id), metadata=as_user(OWNER))


async def test_a_callers_deadline_bounds_the_calls_job_svc_makes_for_it(stub):
    # Without propagation dataset_svc would be given job_svc's own 10 s.
    request = job_pb2.EstimateJobRequest(dataset_id=READY, preset_id="fast",
                                         gpu_config=job_pb2.GpuConfig(type="CPU", count=1))
    # The two ends read their clocks apart, by up to a few tens of ms: the bounds leave room for that.
    await stub.EstimateJob(request, metadata=as_user(OWNER), timeout=2.5)
    assert 0 < Datasets.time_remaining[-1] < 4
    await stub.EstimateJob(request, metadata=as_user(OWNER))
    assert 4 < Datasets.time_remaining[-1] <= DATASET_TIMEOUT_S + 0.5


async def test_list_jobs_filters_by_status_and_pages(stub):
    job = (await stub.CreateJob(job_pb2.CreateJobRequest(**REQUEST), metadata=as_user(OWNER))).job
    await stub.CancelJob(job_pb2.CancelJobRequest(job_id=job.id), metadata=as_user(OWNER))
    seen, token = [], ""
    while True:
        page = await stub.ListJobs(job_pb2.ListJobsRequest(status=job_pb2.JOB_STATUS_CANCELLED, page_size=1,
                                                           page_token=token), metadata=as_user(OWNER))
        seen += page.jobs
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == page.total_size and job.id in [j.id for j in seen]
    assert {j.status for j in seen} == {job_pb2.JOB_STATUS_CANCELLED}


def _hp(**fields) -> job_pb2.Hyperparameters:
    return job_pb2.Hyperparameters(**{"learning_rate": 0.001, "batch_size": 8, "epochs": 2, "rank": 8, **fields})


async def _refused(call) -> dict:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return error_details(info.value)["details"]


async def test_a_local_base_model_that_is_missing_or_has_no_config_is_refused_with_the_reason(stub, settings):
    empty = settings.model_dirs[0] / f"empty-{uuid.uuid4()}"
    empty.mkdir(parents=True)
    for path, reason in ((settings.model_dirs[0] / f"gone-{uuid.uuid4()}", "does not exist"),
                         (empty, "has no config.json")):
        hp = _hp(base_model=str(path))
        for call in (
            stub.CreateJob(job_pb2.CreateJobRequest(**{**REQUEST, "hyperparameters": hp}), metadata=as_user(OWNER)),
            stub.EstimateJob(job_pb2.EstimateJobRequest(dataset_id=READY, gpu_config=REQUEST["gpu_config"],
                                                        hyperparameters=hp), metadata=as_user(OWNER)),
        ):
            [problem] = (await _refused(call))["hyperparameters.base_model"]
            assert reason in problem and str(path) in problem


async def _estimate(stub, gpu: job_pb2.GpuConfig, hp: job_pb2.Hyperparameters) -> job_pb2.Estimate:
    request = job_pb2.EstimateJobRequest(dataset_id=READY, gpu_config=gpu, hyperparameters=hp)
    return (await stub.EstimateJob(request, metadata=as_user(OWNER))).estimate


async def test_a_job_too_big_for_its_gpu_is_estimated_as_such_and_refused_naming_what_to_lower(stub):
    # Llama-2-7B (sizes known without the hub), 8 rows of 2048 tokens, no checkpointing, on one 40 GB GPU.
    hp = _hp(base_model="meta-llama/Llama-2-7b-hf", max_seq_length=2048, gradient_checkpointing=False)
    gpu = job_pb2.GpuConfig(type="A100-40GB", count=1)
    estimate = await _estimate(stub, gpu, hp)
    assert estimate.memory_per_gpu_gb > 40 and not estimate.fits_gpu_memory
    assert "cannot be created" in estimate.warnings[0]

    details = await _refused(stub.CreateJob(job_pb2.CreateJobRequest(
        **{**REQUEST, "gpu_config": gpu, "hyperparameters": hp}), metadata=as_user(OWNER)))
    assert f"{estimate.memory_per_gpu_gb:.1f} GB" in details["gpu_config"][0] and "40 GB" in details["gpu_config"][0]
    assert any("hyperparameters.gradient_checkpointing" in line for line in details["hyperparameters"])

    fitting = _hp(base_model="meta-llama/Llama-2-7b-hf", max_seq_length=2048)  # the trainer's default: checkpointing
    estimate = await _estimate(stub, gpu, fitting)
    assert 14 < estimate.memory_per_gpu_gb <= 40 and estimate.fits_gpu_memory and not estimate.warnings


async def test_a_gpu_no_agent_was_seen_taking_is_accepted_with_a_warning_and_one_seen_without(stub, js):
    gpu = job_pb2.GpuConfig(type="V100-32GB", count=1)
    request = job_pb2.CreateJobRequest(**{**REQUEST, "gpu_config": gpu})
    reply = await stub.CreateJob(request, metadata=as_user(OWNER))
    assert reply.job.status == job_pb2.JOB_STATUS_QUEUED
    assert any("No trainer agent for 1 x V100-32GB" in w for w in reply.warnings)
    await stub.CancelJob(job_pb2.CancelJobRequest(job_id=reply.job.id), metadata=as_user(OWNER))

    # An agent of that hardware, just handed that job's assignment and holding it un-acked.
    durable = f"agents-test-{uuid.uuid4().hex[:8]}"
    await js.add_consumer("ASSIGN", ConsumerConfig(durable_name=durable, filter_subjects=["assign.V100-32GB.1"],
                                                   ack_policy=AckPolicy.EXPLICIT, ack_wait=300))
    try:
        sub = await js.pull_subscribe_bind(durable, stream="ASSIGN")
        [held] = await sub.fetch(batch=1, timeout=10)
        assert job_pb2.TrainingAssignment.FromString(held.data).job_id == reply.job.id
        again = await stub.CreateJob(request, metadata=as_user(OWNER))
        assert not any("No trainer agent" in w for w in again.warnings)
        await stub.CancelJob(job_pb2.CancelJobRequest(job_id=again.job.id), metadata=as_user(OWNER))
    finally:
        await js.delete_consumer("ASSIGN", durable)


async def test_a_job_whose_estimate_exceeds_the_remaining_budget_is_refused_with_the_numbers(stub):
    Billing.remaining[OWNER] = 0.25
    try:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.CreateJob(job_pb2.CreateJobRequest(**REQUEST, estimated_cost=0.01), metadata=as_user(OWNER))
        before = await stub.ListJobs(job_pb2.ListJobsRequest(page_size=100), metadata=as_user(OWNER))
        Billing.remaining[OWNER] = 0.5
        fits = await stub.CreateJob(job_pb2.CreateJobRequest(**REQUEST), metadata=as_user(OWNER))
    finally:
        del Billing.remaining[OWNER]
    # ABORTED is the gateway's 409; the CPU job's estimate is its storage, and the client's lower figure is ignored.
    assert caught.value.code() == grpc.StatusCode.ABORTED
    trailer = error_details(caught.value)
    assert trailer["reason"] == "budget_exceeded"
    assert trailer["details"] == {"estimated_cost": 0.5, "remaining": 0.25, "budget": 20.0, "month": "2026-12-01"}
    after = await stub.ListJobs(job_pb2.ListJobsRequest(page_size=100), metadata=as_user(OWNER))
    assert fits.job.id in {j.id for j in after.jobs} and after.total_size == before.total_size + 1


async def _budget_exceeded(js, job: job_pb2.Job, user: str = OWNER, budget: float = 20.0) -> None:
    exceeded = events_pb2.BudgetExceeded(job_id=job.id, budget=budget, spent=budget + 0.4, month="2026-12-01")
    event = events.new_event("billing.budget_exceeded", producer="test", user_id=user, subject_id=job.id,
                             budget_exceeded=exceeded)
    await events.publish(js, event.type, event.SerializeToString(), event.event_id)


async def test_a_running_job_is_stopped_when_its_users_budget_is_spent(stub, js):
    job = (await stub.CreateJob(job_pb2.CreateJobRequest(**REQUEST), metadata=as_user(OWNER))).job
    started = events_pb2.TrainerAttemptStarted(job_id=job.id, attempt=1)
    await _trainer_event(js, job, "trainer.attempt.started", trainer_attempt_started=started)
    metrics = events_pb2.TrainerMetrics(attempt=1, metric_point=_point(job.id, 1, 2.0), total_steps=10)
    await _trainer_event(js, job, "trainer.metrics", trainer_metrics=metrics)
    await _wait(stub, job.id, lambda j: j.status == job_pb2.JOB_STATUS_RUNNING)
    # Another user's budget stops nothing of this user's: handled first, it would have named $99.00.
    await _budget_exceeded(js, job, user=str(uuid.uuid4()), budget=99.0)
    await _budget_exceeded(js, job)

    stopped = await _wait(stub, job.id, lambda j: j.status == job_pb2.JOB_STATUS_CANCELLED)
    assert stopped.error_message.startswith("budget_exceeded: your monthly budget of $20.00 for 2026-12 is spent")
    assert stopped.HasField("final_cost") and stopped.final_cost == stopped.current_cost
    seen = await _job_events(js, job.id, lambda e: e.HasField("job_cancelled"))
    assert [e.type for e in seen].count("job.cancelled") == 1


async def _run_job(stub, js, hp: job_pb2.Hyperparameters, attempt: int = 1, resumed_from: int = 0) -> job_pb2.Job:
    """A job of REQUEST with ``hp`` through one attempt that resumes after step ``resumed_from``: 1 s to
    load, then steps ``resumed_from + 1`` to 10 at one a second of the trainer's clock."""
    job = (await stub.CreateJob(job_pb2.CreateJobRequest(**{**REQUEST, "hyperparameters": hp}),
                                metadata=as_user(OWNER))).job
    started = events_pb2.TrainerAttemptStarted(job_id=job.id, attempt=attempt)
    await _trainer_event(js, job, "trainer.attempt.started", trainer_attempt_started=started)
    planned = events_pb2.TrainerAttemptPlanned(job_id=job.id, attempt=attempt, total_steps=10,
                                               resumed_from_step=resumed_from)
    await _trainer_event(js, job, "trainer.attempt.planned", trainer_attempt_planned=planned)
    await _wait(stub, job.id, lambda j: j.status == job_pb2.JOB_STATUS_INITIALIZING)
    await asyncio.sleep(1)  # loading the model: the duration counts it, the speed does not
    # The points time the steps as the trainer saw them, not as they arrive.
    first, last = _point(job.id, resumed_from + 1, 2.0), _point(job.id, 10, 1.0)
    last.timestamp.FromSeconds(first.timestamp.seconds + 9 - resumed_from)
    last.timestamp.nanos = first.timestamp.nanos
    for point in (first, last):
        metrics = events_pb2.TrainerMetrics(job_id=job.id, attempt=attempt, metric_point=point, total_steps=10)
        await _trainer_event(js, job, "trainer.metrics", trainer_metrics=metrics)
    await _wait(stub, job.id, lambda j: j.current_step == 10)
    completed = events_pb2.TrainerAttemptCompleted(job_id=job.id, attempt=attempt)
    await _trainer_event(js, job, "trainer.attempt.completed", trainer_attempt_completed=completed)
    return await _wait(stub, job.id, lambda j: j.status == job_pb2.JOB_STATUS_COMPLETED)


async def test_a_completed_job_measures_its_speed_and_the_next_estimate_of_its_kind_uses_it(stub, js):
    hp = _hp(max_seq_length=8000)  # each test its own sequence length bucket: a kind of run no other test completes
    assert (await _estimate(stub, REQUEST["gpu_config"], hp)).basis == "table"
    done = await _run_job(stub, js, hp)

    after = await _estimate(stub, REQUEST["gpu_config"], hp)
    assert after.basis == "measured"
    # 10 steps of 8 conversations of 100 tokens: 8000 tokens; 9 steps' 7200 of them in 9 s.
    assert after.training_details.estimated_throughput_tokens_per_sec == pytest.approx(800)
    # The same job again is predicted the time this one took from its attempt's start.
    took = (done.completed_at.ToDatetime() - done.attempt_started_at.ToDatetime()).total_seconds()
    assert took > 1 and after.estimated_duration_seconds == pytest.approx(took, abs=1e-3)
    # Another kind of run (another sequence length bucket) still has only the table.
    assert (await _estimate(stub, REQUEST["gpu_config"], _hp(max_seq_length=16000))).basis == "table"


async def test_a_job_that_needed_a_second_attempt_is_measured_on_its_last_attempt(stub, js):
    hp = _hp(max_seq_length=30000)
    # Its assignment was redelivered (the first agent died): the second attempt resumed after step 5.
    done = await _run_job(stub, js, hp, attempt=2, resumed_from=5)
    assert done.retry_count == 1

    after = await _estimate(stub, REQUEST["gpu_config"], hp)
    assert after.basis == "measured"
    # Steps 6 to 10 in 4 s between the first and last points: 4 steps of 800 tokens, 800 tokens/s.
    assert after.training_details.estimated_throughput_tokens_per_sec == pytest.approx(800)
    # The attempt trained 5 steps' 4000 tokens in its span; the whole job's 8000 take 5 s more.
    took = (done.completed_at.ToDatetime() - done.attempt_started_at.ToDatetime()).total_seconds()
    assert after.estimated_duration_seconds == pytest.approx(took + 5, abs=1e-3)


async def test_the_job_counts_its_progress_against_the_plan_its_attempt_reported(stub, js):
    job = (await stub.CreateJob(job_pb2.CreateJobRequest(**REQUEST), metadata=as_user(OWNER))).job
    assert job.total_steps == 10  # the estimate's, from the validator's counts
    await _trainer_event(js, job, "trainer.attempt.started",
                         trainer_attempt_started=events_pb2.TrainerAttemptStarted(job_id=job.id, attempt=1))
    # The recipe dropped conversations beyond max_seq_length: it will run 8 steps.
    planned = events_pb2.TrainerAttemptPlanned(job_id=job.id, attempt=1, total_steps=8)
    await _trainer_event(js, job, "trainer.attempt.planned", trainer_attempt_planned=planned)
    await _wait(stub, job.id, lambda j: j.total_steps == 8)
    metrics = events_pb2.TrainerMetrics(job_id=job.id, attempt=1, metric_point=_point(job.id, 2, 2.0))
    await _trainer_event(js, job, "trainer.metrics", trainer_metrics=metrics)
    running = await _wait(stub, job.id, lambda j: j.current_step == 2)
    assert running.progress == 25.0
    await stub.CancelJob(job_pb2.CancelJobRequest(job_id=job.id), metadata=as_user(OWNER))


# A short clock: a running job ticks at least every 1.5 s, a job queued 3 s gets its notice.
TICK_SECONDS, QUEUED_ALERT_MINUTES = 1.5, 0.05


@pytest_asyncio.fixture(loop_scope="session")
async def clocked(settings, fakes):
    """job_svc with a short clock, beside the real billing_svc that turns its events into costs and notices."""
    billing = await start_billing(settings, address="127.0.0.1:0")
    tuned = dataclasses.replace(settings, dataset_addr=fakes, billing_addr=f"127.0.0.1:{billing.port}",
                                cost_tick_seconds=TICK_SECONDS, queued_alert_minutes=QUEUED_ALERT_MINUTES)
    jobs = await start(tuned, address="127.0.0.1:0")
    async with channel(f"127.0.0.1:{jobs.port}") as job_ch, channel(f"127.0.0.1:{billing.port}") as billing_ch:
        yield job_pb2_grpc.JobServiceStub(job_ch), billing_pb2_grpc.BillingServiceStub(billing_ch)
    await jobs.stop()
    await billing.stop()


async def _compute_records(billing, job_id: str) -> list[billing_pb2.CostRecord]:
    reply = await billing.ListCostRecords(billing_pb2.ListCostRecordsRequest(job_id=job_id), metadata=as_user(OWNER))
    return [r for r in reply.cost_records if r.cost_type == "compute"]


async def test_a_running_job_without_steps_is_charged_by_the_clock_and_its_records_sum_to_its_final_cost(
        clocked, js):
    jobs, billing = clocked
    request = job_pb2.CreateJobRequest(**{**REQUEST, "gpu_config": job_pb2.GpuConfig(type="H100", count=8)})
    job = (await jobs.CreateJob(request, metadata=as_user(OWNER))).job  # $33.60 an hour: a cent every 1.1 s
    await _trainer_event(js, job, "trainer.attempt.started",
                         trainer_attempt_started=events_pb2.TrainerAttemptStarted(job_id=job.id, attempt=1))
    metrics = events_pb2.TrainerMetrics(job_id=job.id, attempt=1, metric_point=_point(job.id, 1, 2.0))
    await _trainer_event(js, job, "trainer.metrics", trainer_metrics=metrics)
    await _wait(jobs, job.id, lambda j: j.status == job_pb2.JOB_STATUS_RUNNING)

    # No step after the first, for longer than the tick: billing still records the cost so far.
    for _ in range(100):
        charged = await _compute_records(billing, job.id)
        if charged:
            break
        await asyncio.sleep(0.1)
    assert charged and charged[0].amount > 0
    running = (await jobs.GetJob(job_pb2.GetJobRequest(job_id=job.id), metadata=as_user(OWNER))).job
    assert running.status == job_pb2.JOB_STATUS_RUNNING and running.current_step == 1

    cancelled = (await jobs.CancelJob(job_pb2.CancelJobRequest(job_id=job.id), metadata=as_user(OWNER))).job
    final = round(cancelled.final_cost * 100)
    for _ in range(100):
        records = await _compute_records(billing, job.id)
        if sum(round(r.amount * 100) for r in records) == final:
            break
        await asyncio.sleep(0.1)
    # The clock's records and the final remainder (none when the cancel came within the cent the
    # clock last charged) sum exactly to the job's final cost.
    assert sum(round(r.amount * 100) for r in records) == final > 0


async def _publish_cost_record(js, record: billing_pb2.CostRecord) -> None:
    event = events.new_event("billing.cost_recorded", producer="test", user_id=record.user_id, subject_id=record.id,
                             cost_recorded=events_pb2.CostRecorded(cost_record=record))
    await events.publish(js, "billing.cost_recorded", event.SerializeToString(), str(uuid.uuid4()))


async def _detail_records(jobs, job_id: str, done) -> list[billing_pb2.CostRecord]:
    for _ in range(100):
        detail = await jobs.GetJobDetail(job_pb2.GetJobDetailRequest(job_id=job_id), metadata=as_user(OWNER))
        if done(list(detail.cost_records)):
            return list(detail.cost_records)
        await asyncio.sleep(0.1)
    raise AssertionError(f"the detail's cost records never got there: {list(detail.cost_records)}")


async def test_a_jobs_detail_carries_the_cost_records_billing_published(clocked, js):
    """billing_svc writes the records and publishes them; job_svc keeps each from billing.cost_recorded (real
    NATS), so its detail answers billing's own records, newest first, once their events were delivered."""
    jobs, billing = clocked
    request = job_pb2.CreateJobRequest(**{**REQUEST, "gpu_config": job_pb2.GpuConfig(type="H100", count=8)})
    job = (await jobs.CreateJob(request, metadata=as_user(OWNER))).job
    await _trainer_event(js, job, "trainer.attempt.started",
                         trainer_attempt_started=events_pb2.TrainerAttemptStarted(job_id=job.id, attempt=1))
    metrics = events_pb2.TrainerMetrics(job_id=job.id, attempt=1, metric_point=_point(job.id, 1, 2.0))
    await _trainer_event(js, job, "trainer.metrics", trainer_metrics=metrics)
    await _wait(jobs, job.id, lambda j: j.status == job_pb2.JOB_STATUS_RUNNING)
    await asyncio.sleep(2 * TICK_SECONDS)  # the clock charges the job meanwhile
    final = round((await jobs.CancelJob(job_pb2.CancelJobRequest(job_id=job.id),
                                        metadata=as_user(OWNER))).job.final_cost * 100)
    for _ in range(100):
        reply = await billing.ListCostRecords(billing_pb2.ListCostRecordsRequest(job_id=job.id),
                                              metadata=as_user(OWNER))
        billed = list(reply.cost_records)
        if sum(round(r.amount * 100) for r in billed) == final:
            break
        await asyncio.sleep(0.1)
    assert billed and sum(round(r.amount * 100) for r in billed) == final > 0

    records = await _detail_records(jobs, job.id, lambda records: len(records) >= len(billed))
    assert records == billed  # the same messages in the same order, newest first
    # A redelivered record is kept once, one naming another owner than the job's is not kept; events are
    # applied in order, so once the last one shows the two before it were handled.
    stranger, late = billing_pb2.CostRecord(), billing_pb2.CostRecord()
    stranger.CopyFrom(billed[0])
    stranger.id, stranger.user_id = str(uuid.uuid4()), str(uuid.uuid4())
    late.CopyFrom(billed[0])
    late.id = str(uuid.uuid4())
    late.recorded_at.GetCurrentTime()
    for record in (billed[0], stranger, late):
        await _publish_cost_record(js, record)
    records = await _detail_records(jobs, job.id, lambda records: late.id in {r.id for r in records})
    assert records == [late, *billed]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await jobs.GetJobDetail(job_pb2.GetJobDetailRequest(job_id=job.id), metadata=as_user(str(uuid.uuid4())))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def _waiting_notices(billing, job_id: str) -> list[billing_pb2.Notification]:
    reply = await billing.ListNotifications(billing_pb2.ListNotificationsRequest(page_size=100),
                                            metadata=as_user(OWNER))
    return [n for n in reply.notifications if n.type == "job_waiting" and n.metadata["job_id"] == job_id]


async def test_a_job_no_agent_takes_tells_its_owner_once_which_gpu_it_waits_for(clocked, js):
    jobs, billing = clocked
    request = job_pb2.CreateJobRequest(**{**REQUEST, "gpu_config": job_pb2.GpuConfig(type="A100-40GB", count=2)})
    waiting = (await jobs.CreateJob(request, metadata=as_user(OWNER))).job
    taken = (await jobs.CreateJob(request, metadata=as_user(OWNER))).job
    # An agent takes the second job before the bound.
    await _trainer_event(js, taken, "trainer.attempt.started",
                         trainer_attempt_started=events_pb2.TrainerAttemptStarted(job_id=taken.id, attempt=1))
    await _wait(jobs, taken.id, lambda j: j.status == job_pb2.JOB_STATUS_INITIALIZING)

    for _ in range(150):
        notices = await _waiting_notices(billing, waiting.id)
        if notices:
            break
        await asyncio.sleep(0.1)
    assert len(notices) == 1
    assert notices[0].message == ('Your training job for "chats" has been queued for 0 minutes: no trainer agent '
                                  "has taken it. It waits for an agent with 2x A100-40GB.")
    assert notices[0].metadata["gpu_type"] == "A100-40GB"
    # Several more sweeps: still one notice, and none for the job an agent took.
    await asyncio.sleep(3 * TICK_SECONDS)
    assert len(await _waiting_notices(billing, waiting.id)) == 1
    assert await _waiting_notices(billing, taken.id) == []
    for job in (waiting, taken):
        await jobs.CancelJob(job_pb2.CancelJobRequest(job_id=job.id), metadata=as_user(OWNER))


async def test_each_read_is_one_statement_or_one_read_only_transaction_and_no_write(stub, settings, fakes,
                                                                                counting_database):
    # The platform's job_svc made the job; a second JobHandlers on the same schema, served with a Database
    # that counts what it opens, answers the reads.
    job = (await stub.CreateJob(job_pb2.CreateJobRequest(**REQUEST), metadata=as_user(OWNER))).job
    await stub.CancelJob(job_pb2.CancelJobRequest(job_id=job.id), metadata=as_user(OWNER))
    db = counting_database(settings.database_url, "job")
    nc, _ = await events.connect(settings.nats_url, "job-reads-test")
    records = [billing_pb2.CostRecord(id=str(uuid.uuid4()), user_id=OWNER, job_id=job.id, cost_type="compute",
                                      amount=0.01 * i) for i in (1, 2, 3)]
    for i, record in enumerate(records):
        record.recorded_at.FromSeconds(1_800_000_000 + i)
    async with db.transaction() as conn:
        for step in (1, 2, 3):
            await job_store.insert_metric_points(conn, [_point(job.id, step, 1.0 / step)])
        await job_store.insert_cost_records(conn, records)
    handlers = JobHandlers(db, settings, dataset_pb2_grpc.DatasetServiceStub(channel(fakes)), nc, budget=None,
                           artifacts=artifact_pb2_grpc.ArtifactServiceStub(channel(fakes)))
    server, port, _ = create_server("127.0.0.1:0", [lambda s: job_pb2_grpc.add_JobServiceServicer_to_server(
        handlers, s)], [])
    await server.start()
    me = as_user(OWNER)
    estimate = dict(REQUEST)
    del estimate["preset_id"]
    reads = {
        "GetJob": lambda reads: reads.GetJob(job_pb2.GetJobRequest(job_id=job.id), metadata=me),
        "GetJobDetail": lambda reads: reads.GetJobDetail(job_pb2.GetJobDetailRequest(job_id=job.id), metadata=me),
        "ListJobs": lambda reads: reads.ListJobs(job_pb2.ListJobsRequest(), metadata=me),
        "ListMetricPoints": lambda reads: reads.ListMetricPoints(
            job_pb2.ListMetricPointsRequest(job_id=job.id), metadata=me),
        "WatchJob": lambda reads: _collect(reads.WatchJob(job_pb2.WatchJobRequest(job_id=job.id), metadata=me)),
        "EstimateJob": lambda reads: reads.EstimateJob(job_pb2.EstimateJobRequest(**estimate), metadata=me),
    }
    try:
        async with channel(f"127.0.0.1:{port}") as ch:
            client = job_pb2_grpc.JobServiceStub(ch)
            for name, call in reads.items():
                db.opened.clear()
                db.sent.clear()
                for _ in range(3):
                    answer = await call(client)
                if name in ("GetJob", "GetJobDetail", "ListJobs", "EstimateJob"):  # one statement, no transaction
                    assert db.opened == ["statement"] * 3 and len(db.sent) == 3, (name, db.sent)
                else:
                    assert db.opened == ["read"] * 3, name
                if name == "GetJobDetail":
                    assert answer.job.status == job_pb2.JOB_STATUS_CANCELLED
                    assert [p.step for p in answer.metric_points] == [1, 2, 3]
                    assert list(answer.cost_records) == records[::-1]  # newest first, from the same statement
                if name == "WatchJob":  # the cancelled job, then its points, from the one read
                    assert answer[0].job.id == job.id and [u.metric_point.step for u in answer[1:]] == [1, 2, 3]
            # A job that is not the caller's is NOT_FOUND after its one read, as GetJob says.
            db.opened.clear()
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await client.GetJobDetail(job_pb2.GetJobDetailRequest(job_id=job.id), metadata=as_user(str(uuid.uuid4())))
            assert err.value.code() == grpc.StatusCode.NOT_FOUND and db.opened == ["statement"]
    finally:
        await server.stop(0)
        await nc.close()
        await db.close()


async def _collect(stream) -> list:
    return [update async for update in stream]


async def test_a_jobs_detail_is_its_latest_points_and_older_ones_page_back_by_step(stub, settings):
    job = (await stub.CreateJob(job_pb2.CreateJobRequest(**REQUEST), metadata=as_user(OWNER))).job
    db = Database(settings.database_url, "job", pool_size=1)
    try:
        async with db.transaction() as conn:
            await conn.execute(text(
                "INSERT INTO metric_points (job_id, step, epoch, timestamp, training_loss, learning_rate) "
                "SELECT :job, s, 1, now(), 1.0 / s, 0.001 FROM generate_series(1, 10005) s"), {"job": job.id})
    finally:
        await db.close()
    me = as_user(OWNER)

    async def detail(size: int = 0) -> job_pb2.GetJobDetailResponse:
        return await stub.GetJobDetail(job_pb2.GetJobDetailRequest(job_id=job.id, metric_page_size=size), metadata=me)

    async def before(step: int, size: int) -> job_pb2.ListMetricPointsResponse:
        request = job_pb2.ListMetricPointsRequest(job_id=job.id, before_step=step, page_size=size)
        return await stub.ListMetricPoints(request, metadata=me)

    window = await detail()
    assert [p.step for p in window.metric_points] == list(range(9506, 10006)) and window.older_before_step == 9506
    # The window is bounded whatever is asked.
    widest = await detail(50_000)
    assert len(widest.metric_points) == 10_000 and widest.older_before_step == 6
    # Older points are reachable, page by page back to the first, which ends the walk.
    small = await detail(4)
    assert [p.step for p in small.metric_points] == [10002, 10003, 10004, 10005]
    page = await before(small.older_before_step, 6000)
    assert [p.step for p in page.metric_points] == list(range(4002, 10002)) and page.older_before_step == 4002
    page = await before(page.older_before_step, 6000)
    assert [p.step for p in page.metric_points] == list(range(1, 4002)) and page.older_before_step == 0
    # Forward paging is unchanged.
    forward = await stub.ListMetricPoints(job_pb2.ListMetricPointsRequest(job_id=job.id, after_step=10003), metadata=me)
    assert [p.step for p in forward.metric_points] == [10004, 10005]
    for request, field in [(job_pb2.ListMetricPointsRequest(job_id=job.id, before_step=-1), "before_step"),
                           (job_pb2.ListMetricPointsRequest(job_id=job.id, page_size=-1), "page_size")]:
        assert list(await _refused(stub.ListMetricPoints(request, metadata=me))) == [field]
    refused = await _refused(stub.GetJobDetail(job_pb2.GetJobDetailRequest(job_id=job.id, metric_page_size=-5),
                                               metadata=me))
    assert list(refused) == ["metric_page_size"]
    # Another user's job is not found, with or without a step cursor.
    for call in (stub.GetJobDetail(job_pb2.GetJobDetailRequest(job_id=job.id), metadata=as_user(str(uuid.uuid4()))),
                 stub.ListMetricPoints(job_pb2.ListMetricPointsRequest(job_id=job.id, before_step=50),
                                       metadata=as_user(str(uuid.uuid4())))):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_the_stuck_job_gauges_read_the_oldest_wait_and_the_longest_run_without_a_step(stub, js, settings):
    """What deploy/monitoring's JobQueuedTooLong and JobRunningWithoutProgress alerts watch."""
    me = as_user(OWNER)
    waiting = (await stub.CreateJob(job_pb2.CreateJobRequest(**REQUEST), metadata=me)).job
    running = (await stub.CreateJob(job_pb2.CreateJobRequest(**REQUEST), metadata=me)).job
    await _trainer_event(js, running, "trainer.attempt.started",
                         trainer_attempt_started=events_pb2.TrainerAttemptStarted(job_id=running.id, attempt=1))
    point = events_pb2.TrainerMetrics(job_id=running.id, attempt=1, metric_point=_point(running.id, 1, 2.0), total_steps=10)
    await _trainer_event(js, running, "trainer.metrics", trainer_metrics=point)
    await _wait(stub, running.id, lambda j: j.status == job_pb2.JOB_STATUS_RUNNING and j.current_step == 1)
    db = Database(settings.database_url, "job", pool_size=1)
    try:
        async with db.transaction() as conn:
            await conn.execute(text("UPDATE jobs SET waiting_since = now() - interval '1 hour' WHERE id = :id"),
                               {"id": waiting.id})
            # The attempt began 20 minutes ago and its newest step came 10 minutes ago: quiet for 10 minutes.
            await conn.execute(text("UPDATE jobs SET attempt_started_at = now() - interval '20 minutes', "
                                    "started_at = now() - interval '20 minutes' WHERE id = :id"), {"id": running.id})
            await conn.execute(text("UPDATE metric_points SET timestamp = now() - interval '10 minutes' "
                                    "WHERE job_id = :id"), {"id": running.id})
        await gauges.sample_jobs(db)
        assert 3600 <= REGISTRY.get_sample_value("brightrun_job_oldest_queued_seconds") < 3660
        assert 600 <= REGISTRY.get_sample_value("brightrun_job_longest_without_step_seconds") < 660
        for job in (waiting, running):
            await stub.CancelJob(job_pb2.CancelJobRequest(job_id=job.id), metadata=me)
        await _wait(stub, running.id, lambda j: j.status == job_pb2.JOB_STATUS_CANCELLED)
        await gauges.sample_jobs(db)
        assert REGISTRY.get_sample_value("brightrun_job_oldest_queued_seconds") < 3600
        assert REGISTRY.get_sample_value("brightrun_job_longest_without_step_seconds") < 600
    finally:
        await db.close()


async def test_reports_of_an_attempt_that_no_longer_holds_the_job_are_dropped(stub, js):
    job = (await stub.CreateJob(job_pb2.CreateJobRequest(**REQUEST), metadata=as_user(OWNER))).job
    dropped = attempts.DROPPED.labels("trainer_attempt_completed")
    before = dropped._value.get()
    for attempt in (1, 2):  # attempt 1's agent went silent: JetStream handed the job to attempt 2
        await _trainer_event(js, job, "trainer.attempt.started",
                             trainer_attempt_started=events_pb2.TrainerAttemptStarted(job_id=job.id, attempt=attempt))
    # Attempt 1 comes back (or someone forges it): its point and completion change nothing.
    stale = events_pb2.TrainerMetrics(job_id=job.id, attempt=1, metric_point=_point(job.id, 5, 1.0))
    await _trainer_event(js, job, "trainer.metrics", trainer_metrics=stale)
    await _trainer_event(js, job, "trainer.attempt.completed",
                         trainer_attempt_completed=events_pb2.TrainerAttemptCompleted(job_id=job.id, attempt=1))
    current = events_pb2.TrainerMetrics(job_id=job.id, attempt=2, metric_point=_point(job.id, 1, 2.0))
    await _trainer_event(js, job, "trainer.metrics", trainer_metrics=current)
    running = await _wait(stub, job.id, lambda j: j.current_step == 1)
    assert running.status == job_pb2.JOB_STATUS_RUNNING
    points = (await stub.ListMetricPoints(job_pb2.ListMetricPointsRequest(job_id=job.id), metadata=as_user(OWNER))).metric_points
    assert [p.step for p in points] == [1]
    assert dropped._value.get() == before + 1
