"""job_svc's event handlers: trainer lifecycle and metrics move the job through
its states; ``artifact.created`` links the job to its artifact.

Each handler claims the event id in the transaction that applies it, so a
redelivery changes nothing; metric points are also unique per (job, step), so
a replay by a resumed attempt never double-counts, and a resumed job is not
announced as started twice. A validation result joins the point of the step
it followed.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from google.protobuf import json_format

from brightrun.events.v1 import events_pb2
from brightrun.job.v1 import job_pb2
from services.common import events, run_summary
from services.common.db import Database, claim_event
from services.job_svc import lifecycle, store
from services.job_svc.charge_time import charged_until  # issue 8 item 5 (budget)
from services.job_svc.events import job_event
from services.job_svc.messages import current_metrics, metric_point_message

TRAINER_DURABLE = "job-trainer"
ARTIFACTS_DURABLE = "job-artifacts"
MAX_RETRIES = 3


class TrainerEvents:
    def __init__(self, db: Database):
        self._db = db

    async def handle(self, event: events_pb2.Event) -> None:
        kind = event.WhichOneof("payload")
        apply = {
            "trainer_attempt_started": self._started,
            "trainer_metrics": self._metrics,
            "trainer_attempt_completed": self._completed,
            "trainer_attempt_failed": self._failed,
        }.get(kind)
        if apply is None:
            return
        async with self._db.transaction() as conn:
            if not await claim_event(conn, TRAINER_DURABLE, event.event_id):
                return
            row = await store.get_job(conn, event.subject_id, lock=True)
            if row is None or row.status in lifecycle.TERMINAL:
                return
            # issue 8 item 5 (budget): a run's end is charged up to when it happened, not when it was read.
            now = charged_until(event, datetime.now(timezone.utc))
            await apply(conn, row, getattr(event, kind), now)

    async def _started(self, conn, row, started: events_pb2.TrainerAttemptStarted, now) -> None:
        # A redelivered assignment (its agent died) is a retry too, even though no failure was reported.
        fields = {
            "attempt": started.attempt,
            "retry_count": max(row.retry_count, started.attempt - 1),
            "total_steps": started.total_steps or row.total_steps,
        }
        if started.HasField("batch_layout"):
            fields["batch_layout"] = json_format.MessageToDict(started.batch_layout, preserving_proto_field_name=True)
        if row.status == "queued":
            fields.update(status="initializing", current_stage="initializing")
        await store.update_job(conn, str(row.id), **fields)

    async def _metrics(self, conn, row, metrics: events_pb2.TrainerMetrics, now) -> None:
        stored = await store.insert_metric_point(conn, metrics.metric_point)
        if stored is None:
            return
        point = metric_point_message(stored)
        if row.status in ("queued", "initializing"):
            first_start = row.started_at is None
            row = await store.update_job(conn, str(row.id), status="running", current_stage="training",
                                         started_at=row.started_at or now)
            # A job requeued after its agent let it go runs again, but it
            # started once: telling the user again would be a second "Training Started".
            if first_start:
                await events.add_to_outbox(conn, job_event("job.started", row))
        if point.step < row.current_step:
            return  # a late point of an earlier step: stored, but the job is already past it
        total = metrics.total_steps or row.total_steps
        rate = lifecycle.hourly_rate(row.gpu_config)
        row = await store.update_job(
            conn,
            str(row.id),
            current_step=point.step,
            current_epoch=point.epoch,
            total_steps=total,
            progress=lifecycle.progress(point.step, total),
            current_metrics=current_metrics(point),
            current_cost=lifecycle.cost_so_far(row.started_at, now, rate),
            estimated_completion_at=lifecycle.estimated_completion(row.started_at, now, point.step, total),
        )
        await events.add_to_outbox(conn, job_event("job.progressed", row, metric_point=point))

    async def _completed(self, conn, row, completed: events_pb2.TrainerAttemptCompleted, now) -> None:
        rate = lifecycle.hourly_rate(row.gpu_config)
        cost = lifecycle.cost_so_far(row.started_at or now, now, rate)
        # Early stopping ends a job before its planned last step: the job shows the step it reached.
        summary = completed.summary
        done = run_summary.STEPS_COMPLETED
        steps = int(summary[done]) if done in summary else row.total_steps
        row = await store.update_job(
            conn, str(row.id), status="completed", current_stage="completed", progress=100.0,
            current_step=steps, completed_at=now, started_at=row.started_at or now,
            current_cost=cost, final_cost=cost, estimated_completion_at=now,
        )
        await events.add_to_outbox(
            conn, job_event("job.completed", row, manifest=completed.manifest, summary=completed.summary)
        )

    async def _failed(self, conn, row, failed: events_pb2.TrainerAttemptFailed, now) -> None:
        if failed.cancelled:
            return
        if failed.retryable and row.retry_count < MAX_RETRIES:
            await store.update_job(conn, str(row.id), status="queued", current_stage="retrying",
                                   retry_count=row.retry_count + 1, error_message=failed.reason)
            return
        rate = lifecycle.hourly_rate(row.gpu_config)
        cost = lifecycle.cost_so_far(row.started_at, now, rate)
        row = await store.update_job(conn, str(row.id), status="failed", current_stage="failed", completed_at=now,
                                     error_message=failed.reason, current_cost=cost, final_cost=cost)
        await events.add_to_outbox(conn, job_event("job.failed", row))


class ArtifactEvents:
    def __init__(self, db: Database):
        self._db = db

    async def handle(self, event: events_pb2.Event) -> None:
        if not event.HasField("artifact_created"):
            return
        artifact = event.artifact_created.artifact
        async with self._db.transaction() as conn:
            if not await claim_event(conn, ARTIFACTS_DURABLE, event.event_id):
                return
            row = await store.get_job(conn, artifact.job_id, artifact.user_id, lock=True)
            if row is not None:
                await store.update_job(conn, str(row.id), artifact_id=artifact.id)


MAX_DELIVERIES_ADVISORY = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.ASSIGN.*"


class AbandonedAssignments:
    """Fails a job whose assignment JetStream gave up redelivering.

    An agent that dies reports nothing; after ``max_deliver`` deliveries
    JetStream stops handing the assignment out and says so in an advisory.
    Without this the job would stay running forever.
    """

    def __init__(self, db: Database, js):
        self._db = db
        self._js = js

    async def on_advisory(self, msg) -> None:
        advisory = json.loads(msg.data)
        seq, deliveries = advisory["stream_seq"], advisory.get("deliveries", 0)
        try:
            raw = await self._js.get_msg("ASSIGN", seq)
        except Exception:  # already removed: handled before
            return
        assignment = job_pb2.TrainingAssignment.FromString(raw.data)
        reason = (
            f"Training was interrupted {deliveries} times without finishing (the agents running it stopped "
            "responding); the last checkpoint is kept — start a new job to try again"
        )
        async with self._db.transaction() as conn:
            row = await store.get_job(conn, assignment.job_id, lock=True)
            if row is not None and row.status not in lifecycle.TERMINAL:
                now = datetime.now(timezone.utc)
                row = await store.update_job(conn, str(row.id), status="failed", current_stage="failed",
                                             completed_at=now, error_message=reason, final_cost=row.current_cost)
                await events.add_to_outbox(conn, job_event("job.failed", row))
        await self._js.delete_msg("ASSIGN", seq)
