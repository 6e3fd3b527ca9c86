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
import logging
from datetime import datetime, timezone

from google.protobuf import json_format

from brightrun.events.v1 import events_pb2
from brightrun.job.v1 import job_pb2
from services.common import run_summary
from services.common.db import Database, claim_event
from services.common.export_queue import is_export_consumer
from services.common.errors import FailedPrecondition
from services.common.events import assignment_kind
from services.job_svc import calibration, events, store
from services.job_svc.charge_time import charged_until
from services.job_svc.gauges import observe_queue_wait
from services.job_svc.messages import current_metrics, metric_point_message

log = logging.getLogger(__name__)
TRAINER_DURABLE = "job-trainer"
ARTIFACTS_DURABLE = "job-artifacts"


class TrainerEvents:
    """Each trainer event is one Job method; an event that would be an illegal
    move (a late report for an ended job) is logged and changes nothing."""

    def __init__(self, db: Database):
        self._db = db

    async def handle(self, event: events_pb2.Event) -> None:
        kind = event.WhichOneof("payload")
        apply = {
            "trainer_attempt_started": self._started,
            "trainer_attempt_planned": self._planned,
            "trainer_metrics": self._metrics,
            "trainer_attempt_completed": self._completed,
            "trainer_attempt_failed": self._failed,
        }.get(kind)
        if apply is None:
            return
        # A run's end is charged up to when it happened, not when it was read.
        now = charged_until(event, datetime.now(timezone.utc))
        try:
            async with self._db.transaction() as conn:
                if not await claim_event(conn, TRAINER_DURABLE, event.event_id):
                    return
                job = await store.load_job(conn, event.subject_id)
                if job is None:
                    return
                await apply(conn, job, getattr(event, kind), now)
        except FailedPrecondition as exc:
            # Rolled back whole, the metric point stored before the move included: no redelivery can make it legal.
            log.info("job %s: %s ignored: %s", event.subject_id, event.type, exc)

    async def _started(self, conn, job, started: events_pb2.TrainerAttemptStarted, now) -> None:
        layout = None
        if started.HasField("batch_layout"):
            layout = json_format.MessageToDict(started.batch_layout, preserving_proto_field_name=True)
        moves = job.start_attempt(started.attempt, layout, now)
        await events.save(conn, job, moves)
        observe_queue_wait(job, moves)

    async def _planned(self, conn, job, planned: events_pb2.TrainerAttemptPlanned, now) -> None:
        await events.save(conn, job, job.plan_attempt(planned.attempt, planned.total_steps, planned.resumed_from_step))

    async def _metrics(self, conn, job, metrics: events_pb2.TrainerMetrics, now) -> None:
        stored = await store.insert_metric_point(conn, metrics.metric_point)
        if stored is None:
            return  # a replay: the point is there already
        if job.ended:
            # A step trained before the end but delivered after it (held back by an outage, or sent
            # before the trainer heard of a cancel): it belongs in the history; the job stays as it ended.
            return
        point = metric_point_message(stored)
        types = job.record_point(point.step, point.epoch, current_metrics(point), stored.timestamp, now)
        await events.save(conn, job, types, {"job.progressed": {"metric_point": point}})

    async def _completed(self, conn, job, completed: events_pb2.TrainerAttemptCompleted, now) -> None:
        summary = completed.summary
        done = run_summary.STEPS_COMPLETED
        types = job.complete(int(summary[done]) if done in summary else None, now)
        row = await events.save(conn, job, types,
                                {"job.completed": {"manifest": completed.manifest, "summary": summary}})
        await calibration.record_completed(conn, row)

    async def _failed(self, conn, job, failed: events_pb2.TrainerAttemptFailed, now) -> None:
        await events.save(conn, job, job.attempt_failed(failed.reason, failed.retryable, failed.cancelled, now))


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
        if is_export_consumer(advisory.get("consumer", "")):
            return  # an export's assignment: artifact_svc's
        seq, deliveries = advisory["stream_seq"], advisory.get("deliveries", 0)
        try:
            raw = await self._js.get_msg("ASSIGN", seq)
        except Exception:  # already removed: handled before
            return
        if assignment_kind(raw) != "training":  # a generation request: nobody's job to fail
            await self._js.delete_msg("ASSIGN", seq)
            return
        assignment = job_pb2.TrainingAssignment.FromString(raw.data)
        reason = (
            f"Training was interrupted {deliveries} times without finishing (the agents running it stopped "
            "responding); the last checkpoint is kept — start a new job to try again"
        )
        async with self._db.transaction() as conn:
            job = await store.load_job(conn, assignment.job_id)
            if job is not None and not job.ended:
                await events.save(conn, job, job.abandon(reason, datetime.now(timezone.utc)))
        await self._js.delete_msg("ASSIGN", seq)
