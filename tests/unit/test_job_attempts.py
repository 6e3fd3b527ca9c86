"""job_svc keeps only the trainer events of the attempt that holds their job (services.job_svc.attempts)."""

from brightrun.events.v1 import events_pb2
from services.job_svc import attempts

JOB, OTHER = "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"


def _event(kind: str, attempt: int, job: str = JOB) -> events_pb2.Event:
    payload = {
        "started": events_pb2.TrainerAttemptStarted(job_id=job, attempt=attempt),
        "metrics": events_pb2.TrainerMetrics(job_id=job, attempt=attempt),
        "completed": events_pb2.TrainerAttemptCompleted(job_id=job, attempt=attempt),
        "failed": events_pb2.TrainerAttemptFailed(job_id=job, attempt=attempt),
    }[kind]
    field = {"started": "trainer_attempt_started", "metrics": "trainer_metrics",
             "completed": "trainer_attempt_completed", "failed": "trainer_attempt_failed"}[kind]
    return events_pb2.Event(event_id=f"{kind}-{attempt}-{job[-1]}", type=f"trainer.{kind}", subject_id=job,
                            **{field: payload})


def _kept(batch, held) -> list[str]:
    return [e.event_id for e in attempts.holding(batch, held)]


def test_a_start_takes_the_job_for_the_events_after_it_in_the_same_batch():
    batch = [_event("started", 1), _event("metrics", 1), _event("completed", 1)]
    assert _kept(batch, {JOB: 0}) == ["started-1-1", "metrics-1-1", "completed-1-1"]


def test_a_stale_attempt_after_reassignment_is_dropped_and_counted():
    before = attempts.DROPPED.labels("trainer_attempt_completed")._value.get()
    # Attempt 1's agent went silent; attempt 2 took the job; attempt 1's late reports arrive after.
    batch = [_event("started", 2), _event("metrics", 1), _event("completed", 1), _event("started", 1),
             _event("metrics", 2)]
    assert _kept(batch, {JOB: 1}) == ["started-2-1", "metrics-2-1"]
    assert attempts.DROPPED.labels("trainer_attempt_completed")._value.get() == before + 1


def test_events_of_an_attempt_that_never_started_are_dropped_and_other_jobs_are_kept():
    # Forged: no start of attempt 3 was seen, and none at all for a queued job.
    batch = [_event("completed", 3), _event("failed", 1, OTHER), _event("metrics", 1)]
    assert _kept(batch, {JOB: 1, OTHER: 0}) == ["metrics-1-1"]


def test_a_redelivered_start_of_the_holding_attempt_is_kept():
    assert _kept([_event("started", 2), _event("metrics", 2)], {JOB: 2}) == ["started-2-1", "metrics-2-1"]
