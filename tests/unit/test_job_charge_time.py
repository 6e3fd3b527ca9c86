"""A run's end is charged up to when it happened."""

from datetime import datetime, timedelta, timezone

from brightrun.events.v1 import events_pb2

from services.job_svc.charge_time import charged_until

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


def _event(at: datetime | None, **payload) -> events_pb2.Event:
    event = events_pb2.Event(event_id="e", **payload)
    if at is not None:
        event.occurred_at.FromDatetime(at)
    return event


def test_a_failure_read_late_is_charged_until_it_happened():
    happened = NOW - timedelta(minutes=40)
    assert charged_until(_event(happened, trainer_attempt_failed=events_pb2.TrainerAttemptFailed()), NOW) == happened
    done = _event(happened, trainer_attempt_completed=events_pb2.TrainerAttemptCompleted())
    assert charged_until(done, NOW) == happened


def test_an_agent_clock_ahead_is_not_trusted_past_now():
    ahead = _event(NOW + timedelta(minutes=5), trainer_attempt_failed=events_pb2.TrainerAttemptFailed())
    assert charged_until(ahead, NOW) == NOW


def test_other_events_and_events_without_a_time_use_now():
    metrics = _event(NOW - timedelta(minutes=40), trainer_metrics=events_pb2.TrainerMetrics())
    assert charged_until(metrics, NOW) == NOW
    assert charged_until(_event(None, trainer_attempt_failed=events_pb2.TrainerAttemptFailed()), NOW) == NOW
