"""job_svc's event handlers: trainer lifecycle and metrics move the job through
its states; ``artifact.created`` links the job to its artifact.

Trainer events come in batches (:func:`services.common.events.consume_batches`):
one transaction claims the batch's event ids, stores its metric points with
one multi-row insert and saves each job it touched once, with one
``job.progressed`` for billing and the points for the job's watchers
(services.job_svc.live). Each job's events are applied in the order they
were sent, so a completion never overtakes the points before it. A claimed
event id is never applied again, and metric points are unique per (job,
step), so a redelivery, or a replay by a resumed attempt, never double-counts
and a resumed job is not announced as started twice. Metric events are not
claimed: the (job, step) key is their claim, and a row per point in
``processed_events`` cost PostgreSQL as much again as the point itself. A validation result
joins the point of the step it followed.
"""

from __future__ import annotations

import copy
import json
import logging
from datetime import datetime, timezone

from google.protobuf import json_format

from brightrun.events.v1 import events_pb2
from brightrun.job.v1 import job_pb2
from services.common import run_summary
from services.common.db import Database, claim_event, claim_events
from services.common.errors import FailedPrecondition
from services.common.events import Unappliable, assignment_kind
from services.common.export_queue import is_export_consumer
from services.common.nats_access import JOB_ARTIFACTS, JOB_TRAINER
from services.common.paging import canonical_uuid
from services.job_svc import attempts, calibration, events, store
from services.job_svc.charge_time import charged_until
from services.job_svc.gauges import observe_queue_wait
from services.job_svc.job import Job
from services.job_svc.live import LiveFeed
from services.job_svc.messages import current_metrics

log = logging.getLogger(__name__)
TRAINER_DURABLE = JOB_TRAINER.durable
ARTIFACTS_DURABLE = JOB_ARTIFACTS.durable
# The trainer events job_svc applies; others on trainer.> (checkpoints saved) are for other readers.
_APPLIED = frozenset({"trainer_attempt_started", "trainer_attempt_planned", "trainer_metrics",
                      "trainer_attempt_completed", "trainer_attempt_failed"})


class TrainerEvents:
    """Each trainer event is one Job method; an event that would be an illegal
    move (a late report for an ended job) is logged and changes nothing."""

    def __init__(self, db: Database, live: LiveFeed):
        self._db = db
        self._live = live

    async def handle_batch(self, batch: list[events_pb2.Event]) -> None:
        """Apply ``batch`` (in stream order) in one transaction, then publish the points it showed.

        Raises Unappliable for an event whose ids are not UUIDs or whose point
        names another job: the consumer then applies the batch one event at a
        time and parks that one.
        """
        wall = datetime.now(timezone.utc)
        by_id: dict[str, events_pb2.Event] = {}
        for event in batch:
            if event.WhichOneof("payload") in _APPLIED:
                by_id.setdefault(_checked(event), event)
        if not by_id:
            return
        shown: dict[str, list[job_pb2.MetricPoint]] = {}
        async with self._db.transaction() as conn:
            # A metric point needs no claim: its (job, step) is one (a replay inserts nothing, below).
            claimed = [event_id for event_id, event in by_id.items() if not event.HasField("trainer_metrics")]
            fresh = await claim_events(conn, TRAINER_DURABLE, claimed) if claimed else set()
            todo = [event for event_id, event in by_id.items()
                    if event_id in fresh or event.HasField("trainer_metrics")]
            jobs = await store.load_jobs(conn, {event.subject_id for event in todo})
            todo = [event for event in todo if event.subject_id in jobs]  # a job that is not (any more): nothing
            todo = attempts.holding(todo, {job_id: job.attempt for job_id, job in jobs.items()})
            stored = await store.insert_metric_points(
                conn, [event.trainer_metrics.metric_point for event in todo if event.HasField("trainer_metrics")])
            by_job: dict[str, list[events_pb2.Event]] = {job_id: [] for job_id in jobs}
            for event in todo:
                by_job[event.subject_id].append(event)
            saves = []
            for job_id, job in jobs.items():
                shown[job_id], last_run = await self._apply(conn, job, by_job[job_id], stored, wall)
                if last_run is not None:
                    saves.append(last_run)
            await events.save_all(conn, saves)
        for job_id, points in shown.items():
            await self._live.points(job_id, points)

    async def _apply(self, conn, job: Job, todo: list[events_pb2.Event], stored: dict, wall: datetime):
        """Apply one job's events in order; returns the points that moved it and the save of its last run of
        points, left to the caller to write with the other jobs' (None: nothing to save).

        A run of metric points is saved once, with ``job.started`` if the job
        started running and one ``job.progressed`` carrying the last point
        that moved it; any other event first saves the run before it.
        """
        shown: list[job_pb2.MetricPoint] = []
        types: list[str] = []
        for event in todo:
            kind = event.WhichOneof("payload")
            if kind == "trainer_metrics":
                # Popped: a second event of the same step in this batch is its replay.
                point = stored.pop((job.id, event.trainer_metrics.metric_point.step), None)
                if point is None or job.ended:
                    # A replay; or a step trained before the end but delivered after it (held back by an outage,
                    # or sent before the trainer heard of a cancel): it belongs in the history, the job stays as it ended.
                    continue
                at = point.timestamp.ToDatetime(tzinfo=timezone.utc)
                moved = job.record_point(point.step, point.epoch, current_metrics(point), at, wall)
                types += [t for t in moved if t not in types]
                if "job.progressed" in moved:
                    shown.append(point)
                continue
            if run := _run_of_points(job, types, shown):
                await events.save(conn, *run)
            types = []
            before = copy.deepcopy(job)
            try:
                await getattr(self, f"_{kind}")(conn, job, getattr(event, kind), charged_until(event, wall))
            except FailedPrecondition as exc:
                # Raised before anything was written: the job stays as it was.
                log.info("job %s: %s ignored: %s", job.id, event.type, exc)
                job.__dict__.update(before.__dict__)
        return shown, _run_of_points(job, types, shown)

    async def _trainer_attempt_started(self, conn, job, started: events_pb2.TrainerAttemptStarted, now) -> None:
        layout = None
        if started.HasField("batch_layout"):
            layout = json_format.MessageToDict(started.batch_layout, preserving_proto_field_name=True)
        moves = job.start_attempt(started.attempt, layout, now)
        await events.save(conn, job, moves)
        observe_queue_wait(job, moves)

    async def _trainer_attempt_planned(self, conn, job, planned: events_pb2.TrainerAttemptPlanned, now) -> None:
        await events.save(conn, job, job.plan_attempt(planned.attempt, planned.total_steps, planned.resumed_from_step))

    async def _trainer_attempt_completed(self, conn, job, completed: events_pb2.TrainerAttemptCompleted, now) -> None:
        summary = completed.summary
        done = run_summary.STEPS_COMPLETED
        types = job.complete(int(summary[done]) if done in summary else None, now)
        row = await events.save(conn, job, types,
                                {"job.completed": {"manifest": completed.manifest, "summary": summary}})
        await calibration.record_completed(conn, row)

    async def _trainer_attempt_failed(self, conn, job, failed: events_pb2.TrainerAttemptFailed, now) -> None:
        await events.save(conn, job, job.attempt_failed(failed.reason, failed.retryable, failed.cancelled, now))


def _run_of_points(job: Job, types: list[str], shown: list[job_pb2.MetricPoint]):
    """What saves a run of points: the job, its event types, the point job.progressed carries; None: nothing."""
    if not types and not job.changes:
        return None
    return job, types, {"job.progressed": {"metric_point": shown[-1]}} if shown else None


def _checked(event: events_pb2.Event) -> str:
    """``event`` with its job id (and its point's) canonical; returns its canonical event id.

    Raises Unappliable for an id that is not a UUID or a point of another job than the event's.
    """
    event_id, job_id = canonical_uuid(event.event_id), canonical_uuid(event.subject_id)
    if event_id is None or job_id is None:
        raise Unappliable(f"event_id {event.event_id!r} and subject_id {event.subject_id!r} must be UUIDs")
    event.subject_id = job_id
    if event.HasField("trainer_metrics"):
        point = event.trainer_metrics.metric_point
        if canonical_uuid(point.job_id) != job_id:
            raise Unappliable(f"metric_point.job_id {point.job_id!r} is not the event's job {job_id}")
        point.job_id = job_id
    return event_id


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
