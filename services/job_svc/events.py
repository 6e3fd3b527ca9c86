"""The job's events, built from its row, and the one way a changed job is saved with them."""

from __future__ import annotations

from brightrun.events.v1 import events_pb2
from services.common import events
from services.job_svc import store
from services.job_svc.job import Job
from services.job_svc.messages import job_message

PRODUCER = "job_svc"
_PAYLOADS = {
    "job.queued": ("job_queued", events_pb2.JobQueued),
    "job.initializing": ("job_initializing", events_pb2.JobInitializing),
    "job.started": ("job_started", events_pb2.JobStarted),
    "job.progressed": ("job_progressed", events_pb2.JobProgressed),
    "job.completed": ("job_completed", events_pb2.JobCompleted),
    "job.failed": ("job_failed", events_pb2.JobFailed),
    "job.cancelled": ("job_cancelled", events_pb2.JobCancelled),
    "job.waiting_for_agent": ("job_waiting_for_agent", events_pb2.JobWaitingForAgent),
}


def job_event(type_: str, row, **extra) -> events_pb2.Event:
    """An event of ``type_`` carrying the job as it is in ``row``, plus payload fields in ``extra``."""
    field, payload = _PAYLOADS[type_]
    return events.new_event(
        type_,
        producer=PRODUCER,
        user_id=str(row.user_id),
        subject_id=str(row.id),
        **{field: payload(job=job_message(row), **extra)},
    )


async def save(conn, job: Job, types: list[str], extras: dict[str, dict] | None = None):
    """Save ``job``'s changes and add the events of ``types`` (each with its ``extras`` payload
    fields) to the outbox, in the caller's transaction; returns the saved row."""
    row = await store.save_job(conn, job)
    for type_ in types:
        await events.add_to_outbox(conn, job_event(type_, row, **(extras or {}).get(type_, {})))
    return row


async def save_all(conn, saves: list[tuple[Job, list[str], dict[str, dict] | None]]) -> None:
    """:func:`save` for many jobs, each with its event types and extras: one update of the jobs and one insert
    into the outbox, in the caller's transaction."""
    rows = await store.save_jobs(conn, [job for job, _, _ in saves])
    await events.add_all_to_outbox(conn, [
        job_event(type_, rows[job.id], **(extras or {}).get(type_, {})) for job, types, extras in saves for type_ in types
    ])
