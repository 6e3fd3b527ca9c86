"""gRPC JobService: translates requests to domain and store calls, scoped by the caller."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone

import grpc

from brightrun.artifact.v1 import artifact_pb2_grpc
from brightrun.dataset.v1 import dataset_pb2, dataset_pb2_grpc
from brightrun.job.v1 import job_pb2, job_pb2_grpc
from google.protobuf import json_format
from services.common import events, idempotency
from services.common.config import Settings
from services.common.db import Database
from services.common.errors import FailedPrecondition, NotFound, field_errors
from services.common.paging import canonical_uuid, parse_page
from services.common.grants import Granter
from services.common.storage import model_prefix
from services.common.grpc import as_user, downstream_timeout, rpc, stream_rpc, user_id
from services.job_svc import dataset_facts, launch_checks, lineage, live, preflight, store
from services.job_svc.budget_gate import BudgetGate
from services.job_svc.catalogue import DEFAULT_GPU_TYPE, GPU_TYPES, PRESETS
from services.job_svc.estimate import Estimate, estimate
from services.job_svc.events import job_event, save
from services.job_svc.hyperparameters import JobConfig, resolve
from services.job_svc.job import TERMINAL
from services.job_svc.live_cost import with_cost_now
from services.job_svc.messages import STATUS_NAMES, job_message, metric_point_message
from services.job_svc.speed import MeasuredSpeed, speed_key, table_speedup


# A launch waits this long at most for dataset_svc (less when its own caller's deadline is nearer).
DATASET_TIMEOUT_S = 10.0
# How long a watch of a completed job waits for its artifact to be linked, and how often it looks.
ARTIFACT_WAIT_S = 60.0
ARTIFACT_POLL_S = 0.5


def _uuid(value: str, what: str) -> str:
    canonical = canonical_uuid(value)
    if canonical is None:
        raise NotFound(f"{what} not found")
    return canonical


# The most metric points one answer carries; a job's detail shows its latest DETAIL_METRIC_POINTS unless asked.
MAX_METRIC_POINTS = 10000
DETAIL_METRIC_POINTS = 500


def _metric_limit(page_size: int, default: int = 1000, field: str = "page_size") -> int:
    """How many metric points one answer carries: 0 means ``default``, at most MAX_METRIC_POINTS; raises
    InvalidArgument naming ``field`` when negative."""
    if page_size < 0:
        field_errors({field: [f"must be between 1 and {MAX_METRIC_POINTS}; 0 means {default}"]})
    return min(page_size or default, MAX_METRIC_POINTS)


async def _owned_job(conn, uid: str, job_id: str):
    """The caller's job; raises NotFound for a malformed id, a missing or another user's job."""
    row = await store.get_job(conn, _uuid(job_id, "Job"), uid)
    if row is None:
        raise NotFound("Job not found")
    return row


def _speed_key(config: JobConfig, launch: launch_checks.LaunchReport) -> str:
    """The job's kind of run, whose measured speed its estimate uses (services.job_svc.speed)."""
    return speed_key(config.gpu.type, config.gpu_count, launch.model_parameters, config.max_seq_length)


def _estimate(config: JobConfig, launch: launch_checks.LaunchReport, dataset: dataset_pb2.Dataset,
              measured: MeasuredSpeed | None) -> Estimate:
    """The job's estimate on ``dataset``, from ``measured`` (its kind's speed) when there is one."""
    return estimate(config.gpu, config.gpu_count, dataset.statistics, dataset.total_tokens, config.batch_size,
                    config.epochs, table_speedup(launch.model_parameters), measured)


class JobHandlers(job_pb2_grpc.JobServiceServicer):
    def __init__(self, db: Database, settings: Settings, datasets: dataset_pb2_grpc.DatasetServiceStub, nc,
                 budget: BudgetGate, artifacts: artifact_pb2_grpc.ArtifactServiceStub):
        self._db = db
        self._settings = settings
        self._grants = Granter.from_settings(settings)
        self._datasets = datasets
        self._artifacts = artifacts
        self._nc = nc
        self._budget = budget

    async def _dataset(self, uid: str, dataset_id: str) -> dataset_pb2.Dataset:
        """The caller's dataset from dataset_svc; NotFound passes through as NotFound."""
        try:
            reply = await self._datasets.GetDataset(
                dataset_pb2.GetDatasetRequest(dataset_id=dataset_id), metadata=as_user(uid),
                timeout=downstream_timeout(DATASET_TIMEOUT_S),
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound(dataset_facts.NOT_FOUND) from None
            raise
        return reply.dataset

    def _config(self, request: job_pb2.EstimateJobRequest | job_pb2.CreateJobRequest) -> JobConfig:
        """The request's configuration; without gpu_config, one GPU of the default type."""
        given = json_format.MessageToDict(request.hyperparameters, preserving_proto_field_name=True)
        gpu = request.gpu_config if request.HasField("gpu_config") else job_pb2.GpuConfig(type=DEFAULT_GPU_TYPE, count=1)
        return resolve(
            request.preset_id, given, gpu.type, gpu.count, self._settings.default_base_model,
            self._settings.model_dirs,
        )

    async def _plan(self, config: JobConfig, launch: launch_checks.LaunchReport,
                    dataset: dataset_pb2.Dataset) -> tuple[str, Estimate]:
        """The job's kind of run (speed.speed_key) and its estimate, from that kind's measured speed if any."""
        kind = _speed_key(config, launch)
        async with self._db.statement() as conn:
            measured = await store.measured_speed(conn, kind)
        return kind, _estimate(config, launch, dataset, measured)

    @rpc
    async def ListPresets(self, request, context):
        return job_pb2.ListPresetsResponse(
            presets=[
                job_pb2.Preset(
                    id=p.id, name=p.name, description=p.description,
                    hyperparameters=job_pb2.Hyperparameters(
                        base_model=self._settings.default_base_model, learning_rate=p.learning_rate,
                        batch_size=p.batch_size, epochs=p.epochs, rank=p.rank, alpha=p.alpha, dropout=p.dropout,
                    ),
                )
                for p in PRESETS.values()
            ]
        )

    @rpc
    async def ListGpuTypes(self, request, context):
        return job_pb2.ListGpuTypesResponse(
            gpu_types=[
                job_pb2.GpuType(type=g.type, memory_gb=g.memory_gb, price_per_gpu_hour=g.price_per_gpu_hour,
                                throughput_tokens_per_second=g.throughput_tokens_per_second, max_count=g.max_count)
                for g in GPU_TYPES.values()
            ]
        )

    @rpc
    async def EstimateJob(self, request, context):
        """Raises InvalidArgument for bad fields, NotFound for another user's or a deleted dataset."""
        uid = user_id(context)
        config = self._config(request)
        launch = await preflight.launch_report(config, self._settings)
        dataset_id = _uuid(request.dataset_id, "Dataset")
        # The dataset from job_svc's own copy, read with the measured speed in one statement; dataset_svc is
        # asked only for a dataset the copy does not hold yet (services.job_svc.dataset_facts).
        async with self._db.statement() as conn:
            facts, measured = await store.estimate_inputs(conn, uid, dataset_id, _speed_key(config, launch))
        dataset = dataset_facts.dataset_of(facts) if facts is not None else await self._dataset(uid, dataset_id)
        result = _estimate(config, launch, dataset, measured)
        return job_pb2.EstimateJobResponse(
            estimate=job_pb2.Estimate(
                estimated_cost=result.estimated_cost,
                cost_breakdown=job_pb2.CostBreakdown(compute=result.compute, storage=result.storage),
                estimated_duration_hours=result.estimated_duration_hours,
                hourly_rate=result.hourly_rate,
                training_details=job_pb2.TrainingDetails(
                    total_steps=result.total_steps, steps_per_epoch=result.steps_per_epoch,
                    estimated_throughput_tokens_per_sec=result.throughput_tokens_per_sec, dataset_name=dataset.name,
                ),
                # The memory figure, and a warning when it does not fit (EstimateJob does not refuse)
                memory_per_gpu_gb=launch.memory_per_gpu_gb, fits_gpu_memory=launch.fits, warnings=launch.warnings,
                basis=result.basis, estimated_duration_seconds=result.estimated_duration_seconds,
            )
        )

    @rpc
    async def CreateJob(self, request, context):
        """Raises InvalidArgument, NotFound, FailedPrecondition when the dataset is not ready or has no
        recorded content hash, or BudgetExceeded when the estimate does not fit the user's monthly budget.

        The dataset is asked of dataset_svc, not read from job_svc's copy as EstimateJob reads it: the copy
        lags by an event, and a job must not be queued on a dataset deleted or revalidated a moment before.

        A request id seen before answers with the job it created, before any
        other check (the dataset may have changed since); sent with a different
        request it raises IdempotencyKeyReused.
        """
        uid = user_id(context)
        if request.request_id:
            idempotency.check_request_id(request.request_id)
            async with self._db.read() as conn:
                existing = await store.job_by_request(conn, uid, request.request_id)
            if existing is not None:
                idempotency.check_replay(existing.request_fingerprint, request, "job")
                return job_pb2.CreateJobResponse(job=job_message(existing))
        config = self._config(request)
        launch = await preflight.launch_report(config, self._settings)
        launch_checks.refuse_unless_fits(launch)
        dataset = await self._dataset(uid, _uuid(request.dataset_id, "Dataset"))
        parent_id, parent = None, None
        if request.parent_model_id:
            parent_id, parent = await lineage.parent_adapter(self._artifacts, uid, request.parent_model_id, config)
        if dataset.status != dataset_pb2.DATASET_STATUS_READY or not dataset.training_ready:
            status = dataset_pb2.DatasetStatus.Name(dataset.status).removeprefix("DATASET_STATUS_").lower()
            raise FailedPrecondition(
                "Dataset not ready for training",
                f"Dataset must have status='ready' and training_ready=true. Current: status='{status}', "
                f"training_ready={str(dataset.training_ready).lower()}",
            )
        if not dataset.content_sha256:
            raise FailedPrecondition(
                "Dataset has no recorded content hash",
                "It was validated before the platform recorded what it validated: revalidate it, then create the job",
            )
        # One estimate for both: the job plans the very steps the user was shown, which the trainer runs.
        kind, planned = await self._plan(config, launch, dataset)
        steps, cost = planned.total_steps, request.estimated_cost or planned.estimated_cost
        # The platform's own estimate, not the client's, must fit the budget.
        await self._budget.check(uid, planned.estimated_cost)
        warnings = launch.warnings + await preflight.agent_warnings(self._nc, config, self._settings)
        job_id = str(uuid.uuid4())
        gpu_config = {"type": config.gpu.type, "count": config.gpu_count, "gpu_memory_gb": config.gpu.memory_gb,
                      "cost_per_gpu_hour": config.gpu.price_per_gpu_hour}
        async with self._db.transaction() as conn:
            row = await store.insert_job(conn, {
                "id": job_id, "user_id": uid, "dataset_id": dataset.id, "dataset_name": dataset.name,
                "preset_id": config.preset_id, "hyperparameters": config.hyperparameters(), "gpu_config": gpu_config,
                "total_epochs": config.epochs, "total_steps": steps, "estimated_total_cost": cost,
                "request_id": request.request_id or None,
                "request_fingerprint": idempotency.fingerprint(request) if request.request_id else None,
                "speed_key": kind, "planned_tokens": planned.trained_tokens, "parent_model_id": parent_id,
            })
            if row is None:  # a concurrent retry with the same request id won
                row = await store.job_by_request(conn, uid, request.request_id)
                idempotency.check_replay(row.request_fingerprint, request, "job")
                return job_pb2.CreateJobResponse(job=job_message(row))
            await events.add_to_outbox(conn, job_event("job.queued", row))
            assignment = job_pb2.TrainingAssignment(
                job_id=job_id, user_id=uid, hyperparameters=job_message(row).hyperparameters,
                gpu_config=job_message(row).gpu_config, dataset_id=dataset.id,
                dataset_bucket=dataset.storage_bucket, dataset_path=dataset.storage_path,
                dataset_format=dataset.format, dataset_sha256=dataset.content_sha256,
                output_bucket=self._settings.models_bucket,
                output_prefix=model_prefix(uid, job_id), parent_adapter=parent,
            )
            assignment.grant.CopyFrom(self._grants.training(assignment))
            await events.add_message_to_outbox(
                conn, f"assign.{config.gpu.type}.{config.gpu_count}", assignment.SerializeToString(),
                str(uuid.uuid5(uuid.NAMESPACE_URL, f"{job_id}:assign")),
            )
        return job_pb2.CreateJobResponse(job=job_message(row), warnings=warnings)

    async def _job(self, uid: str, job_id: str):
        async with self._db.statement() as conn:
            return await _owned_job(conn, uid, job_id)

    @rpc
    async def GetJob(self, request, context):
        row = await self._job(user_id(context), request.job_id)
        # The cost so far as of this read, not of the last metric point.
        return job_pb2.GetJobResponse(job=with_cost_now(job_message(row), row, datetime.now(timezone.utc)))

    @rpc
    async def GetJobDetail(self, request, context):
        """The job, its latest metric points and its cost records (job_svc's copy, services.job_svc.cost_records),
        read by one statement; raises NotFound."""
        limit = _metric_limit(request.metric_page_size, DETAIL_METRIC_POINTS, "metric_page_size")
        job_id = _uuid(request.job_id, "Job")
        async with self._db.statement() as conn:
            row, points, older, records = await store.job_detail(conn, job_id, user_id(context), limit)
        if row is None:
            raise NotFound("Job not found")
        return job_pb2.GetJobDetailResponse(
            job=with_cost_now(job_message(row), row, datetime.now(timezone.utc)),
            metric_points=[metric_point_message(p) for p in points],
            older_before_step=points[0].step if older else 0,
            cost_records=records,
        )

    @rpc
    async def ListJobs(self, request, context):
        page = parse_page(request.page_size, request.page_token, default=10, keyset=store.LIST_ORDER)
        async with self._db.statement() as conn:  # one statement unless the page is empty
            rows, total = await store.list_jobs(conn, user_id(context), STATUS_NAMES.get(request.status), page)
        return job_pb2.ListJobsResponse(
            jobs=[job_message(r) for r in rows[: page.limit]],
            total_size=total,
            next_page_token=store.LIST_ORDER.next_token(rows, page),
        )

    @rpc
    async def CancelJob(self, request, context):
        """Raises NotFound, or FailedPrecondition when the job already ended."""
        uid = user_id(context)
        async with self._db.transaction() as conn:
            job = await store.load_job(conn, _uuid(request.job_id, "Job"), uid)
            if job is None:
                raise NotFound("Job not found")
            row = await save(conn, job, job.cancel(datetime.now(timezone.utc)))
        return job_pb2.CancelJobResponse(job=job_message(row))

    @rpc
    async def ListMetricPoints(self, request, context):
        """Raises InvalidArgument naming a negative after_step, before_step or page_size."""
        field_errors({name: ["must not be negative"] for name in ("after_step", "before_step")
                      if getattr(request, name) < 0})
        limit = _metric_limit(request.page_size)
        older = False
        async with self._db.read() as conn:
            row = await _owned_job(conn, user_id(context), request.job_id)
            if request.before_step:
                points, older = await store.latest_metric_points(
                    conn, str(row.id), request.after_step, request.before_step, limit
                )
            else:
                points = await store.metric_points(conn, str(row.id), request.after_step, limit)
        return job_pb2.ListMetricPointsResponse(
            metric_points=[metric_point_message(p) for p in points],
            older_before_step=points[0].step if older else 0,
        )

    @stream_rpc
    async def WatchJob(self, request, context):
        """The job now, its metric points after ``after_step``, then each change live until it ends.

        Live changes come from the job's own subjects (services.job_svc.live),
        so a watch costs its job's events only. Raises NotFound for a missing
        or another user's job.
        """
        uid, job_id = user_id(context), _uuid(request.job_id, "Job")
        updates: asyncio.Queue = asyncio.Queue()

        async def on_live(msg) -> None:
            updates.put_nowait((msg.subject, msg.data))

        # Subscribe before reading the snapshot: a change committed in between
        # (the job ending, say) would otherwise never reach this watcher.
        subscription = await self._nc.subscribe(live.watch_subject(job_id), cb=on_live)
        try:
            # The job and its points from one read: the points are those of the job as shown.
            async with self._db.read() as conn:
                row = await _owned_job(conn, uid, job_id)
                points = await store.metric_points(conn, job_id, request.after_step, 100_000)
            # The snapshot's cost so far as of now.
            yield job_pb2.WatchJobResponse(job=with_cost_now(job_message(row), row, datetime.now(timezone.utc)))
            seen, last = row.updated_at, None
            for point in points:
                yield job_pb2.WatchJobResponse(metric_point=metric_point_message(point))
                last = point
            last_step, validated = (request.after_step, False) if last is None else (
                last.step, last.validation_loss is not None)
            if row.status in TERMINAL:
                if row.status == "completed" and row.artifact_id is None:
                    async for linked in self._artifact_linked(uid, job_id):
                        yield linked
                return
            while True:
                subject, data = await updates.get()
                if live.is_points(subject):
                    for point in job_pb2.ListMetricPointsResponse.FromString(data).metric_points:
                        # A later point of the last step sent is that step's validation result; points the
                        # snapshot showed already are not sent again.
                        if point.step > last_step or (point.step == last_step and not validated
                                                      and point.HasField("validation_loss")):
                            last_step, validated = point.step, point.HasField("validation_loss")
                            yield job_pb2.WatchJobResponse(metric_point=point)
                    continue
                job = job_pb2.Job.FromString(data)
                # States older than the snapshot (queued before it, published after) are not news.
                if job.updated_at.ToDatetime(tzinfo=timezone.utc) <= seen:
                    continue
                seen = job.updated_at.ToDatetime(tzinfo=timezone.utc)
                yield job_pb2.WatchJobResponse(job=job)
                if STATUS_NAMES[job.status] in TERMINAL:
                    if job.status == job_pb2.JOB_STATUS_COMPLETED and not job.HasField("artifact_id"):
                        async for linked in self._artifact_linked(uid, job_id):
                            yield linked
                    return
        finally:
            await subscription.unsubscribe()

    async def _artifact_linked(self, uid: str, job_id: str):
        """The completed job once artifact_svc's artifact.created has linked its artifact (nothing after
        ARTIFACT_WAIT_S): a watcher learns where the adapter is without asking again."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ARTIFACT_WAIT_S
        while loop.time() < deadline:
            await asyncio.sleep(ARTIFACT_POLL_S)
            row = await self._job(uid, job_id)
            if row.artifact_id is not None:
                yield job_pb2.WatchJobResponse(job=job_message(row))
                return
