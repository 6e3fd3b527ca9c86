"""Until when a job is charged when its agent reports the end of its run. Pure."""

from __future__ import annotations

from datetime import datetime, timezone

from brightrun.events.v1 import events_pb2

# The trainer events that end a run: it is charged up to the moment they happened.
RUN_ENDS = frozenset({"trainer_attempt_completed", "trainer_attempt_failed"})


def charged_until(event: events_pb2.Event, now: datetime) -> datetime:
    """When ``event`` happened, never later than ``now``; ``now`` for an event that ends no run.

    An agent holds its events while NATS is away and job_svc may read them
    late, so the time of reading would charge for GPU time no job used. The
    agent's clock is trusted only up to job_svc's own.
    """
    if event.WhichOneof("payload") not in RUN_ENDS or not event.HasField("occurred_at"):
        return now
    return min(event.occurred_at.ToDatetime(tzinfo=timezone.utc), now)
