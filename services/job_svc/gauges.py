"""job_svc's Prometheus series: jobs by status (every user's together, sampled
from the database), how long the longest-waiting queued job has waited and
the longest a running job has gone without a training step (what the stuck-job
alerts of deploy/monitoring watch), and the queue wait of each job an agent takes.

The count is one GROUP BY over the ``jobs_status`` index; a status no job is
in reads 0 rather than keeping its last count. A running job's newest step is
one index lookup on ``metric_points`` per running job. Each job_svc replica
reports the same totals (take ``max`` across them).
"""

from __future__ import annotations

from prometheus_client import Gauge, Histogram
from sqlalchemy import text

from services.common.db import Database
from services.job_svc.job import Job
from services.job_svc.messages import STATUS

# How often the counts are read.
SAMPLE_SECONDS = 15.0
JOBS = Gauge("brightrun_jobs", "Jobs by status, every user's together", ["status"])
OLDEST_QUEUED = Gauge(
    "brightrun_job_oldest_queued_seconds", "How long the longest-waiting queued job has waited; 0 when none is queued",
)
LONGEST_WITHOUT_STEP = Gauge(
    "brightrun_job_longest_without_step_seconds",
    "Longest time a running job has gone without reporting a step (since its newest point, or its attempt's start "
    "when later); 0 when none runs",
)
_COUNTS = text("SELECT status, count(*) AS jobs, extract(epoch FROM now() - min(waiting_since)) AS waited "
               "FROM jobs GROUP BY status")
# A point of an earlier attempt predates the current one's start: the attempt counts from its start.
_QUIET = text(
    "SELECT coalesce(max(extract(epoch FROM now() - greatest(p.timestamp, j.attempt_started_at, j.started_at))), 0) "
    "FROM jobs j LEFT JOIN LATERAL (SELECT timestamp FROM metric_points WHERE job_id = j.id "
    "ORDER BY step DESC LIMIT 1) p ON true WHERE j.status = 'running'"
)
QUEUE_WAIT = Histogram(
    "brightrun_job_queue_wait_seconds", "Time a job waited queued before a trainer agent took it",
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400),
)


async def sample_jobs(db: Database) -> None:
    """Set the jobs-by-status, oldest-queued and longest-without-a-step gauges from the database."""
    async with db.read() as conn:
        rows = {row.status: row for row in await conn.execute(_COUNTS)}
        quiet = (await conn.execute(_QUIET)).scalar_one()
    for status in STATUS:
        JOBS.labels(status).set(rows[status].jobs if status in rows else 0)
    OLDEST_QUEUED.set(max(0.0, float(rows["queued"].waited)) if "queued" in rows else 0.0)
    LONGEST_WITHOUT_STEP.set(max(0.0, float(quiet)))


def observe_queue_wait(job: Job, moves: list[str]) -> None:
    """Count the wait of a job an agent just took from the queue (``moves`` has its ``job.initializing``)."""
    if "job.initializing" in moves and job.queue_wait_seconds is not None:
        QUEUE_WAIT.observe(job.queue_wait_seconds)
