"""A job's live feed for its watchers, on core NATS subjects of its own.

``live.job.<job_id>.points`` carries the metric points a batch of trainer
events moved the job with (one ``ListMetricPointsResponse`` per job per
batch), published by the trainer consumer right after its commit;
``live.job.<job_id>.state`` carries the job (a ``Job``) each time one of its
events leaves the outbox: the outbox relay mirrors every ``job.*`` row there
(:meth:`LiveFeed.mirror`), so a state change made anywhere (a cancel, the
clock, a budget stop) reaches the job's watchers.

Why its own subjects, and core NATS rather than the JOBS stream:

* A watcher (WatchJob) subscribes to ``live.job.<job_id>.*`` only, so a
  thousand watchers of a thousand jobs each receive their own job's messages:
  the cost of a watch is its job's events, not every user's.
* The feed is a view, not a record. The points are stored, exactly once, in
  PostgreSQL, and the state events stay on the JOBS stream through the
  outbox for the durable consumers (billing, dataset usage, artifacts),
  which filter explicit subjects (``job.progressed``...). Storing every point
  again on JetStream would double the work of ingestion for a copy no one
  replays: a watcher that was away reads what it missed from the database
  (WatchJob's snapshot, ``after_step`` / ``Last-Event-ID``). ``live.`` is
  outside every stream's subjects (``job.>`` would capture ``job.<id>...``).
* One ``job.progressed`` per job per batch still goes through the outbox,
  carrying the cost so far for billing, instead of one per point.

Points are published before the relay mirrors the batch's state events (the
relay publishes after reading its committed rows back), so a watcher sees a
job's last points before the completion that ends its watch. A job_svc that
dies between its commit and its live publish leaves that batch's points to
the database, where a reconnecting watcher finds them.
"""

from __future__ import annotations

from brightrun.events.v1 import events_pb2
from brightrun.job.v1 import job_pb2
from services.common.nats_access import LIVE_JOBS

_PREFIX = LIVE_JOBS


def watch_subject(job_id: str) -> str:
    """Every live message of one job: what a watcher subscribes to."""
    return f"{_PREFIX}.{job_id}.*"


def is_points(subject: str) -> bool:
    """Whether a live message's subject is its job's points (else it is the job's state)."""
    return subject.endswith(".points")


class LiveFeed:
    """Publishes jobs' live messages on a NATS connection."""

    def __init__(self, nc):
        self._nc = nc

    async def points(self, job_id: str, points: list[job_pb2.MetricPoint]) -> None:
        """The points that moved ``job_id``, in order, as one message."""
        if points:
            message = job_pb2.ListMetricPointsResponse(metric_points=points)
            await self._nc.publish(f"{_PREFIX}.{job_id}.points", message.SerializeToString())

    async def mirror(self, subject: str, payload: bytes) -> None:
        """The outbox relay's mirror: a published job event's job, on its job's state subject."""
        if not subject.startswith("job."):
            return
        event = events_pb2.Event.FromString(payload)
        kind = event.WhichOneof("payload")
        if kind is None:
            return
        await self._nc.publish(f"{_PREFIX}.{event.subject_id}.state", getattr(event, kind).job.SerializeToString())
