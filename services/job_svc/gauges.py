"""job_svc's Prometheus series: jobs by status (every user's together, sampled
from the database) and the queue wait of each job an agent takes.

The count is one GROUP BY over the ``jobs_status`` index; a status no job is
in reads 0 rather than keeping its last count. Each job_svc replica reports
the same totals (take ``max`` across them).
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
QUEUE_WAIT = Histogram(
    "brightrun_job_queue_wait_seconds", "Time a job waited queued before a trainer agent took it",
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400),
)


async def sample_jobs(db: Database) -> None:
    """Set the jobs-by-status gauge from the database."""
    async with db.read() as conn:
        counts = dict((await conn.execute(text("SELECT status, count(*) FROM jobs GROUP BY status"))).tuples().all())
    for status in STATUS:
        JOBS.labels(status).set(counts.get(status, 0))


def observe_queue_wait(job: Job, moves: list[str]) -> None:
    """Count the wait of a job an agent just took from the queue (``moves`` has its ``job.initializing``)."""
    if "job.initializing" in moves and job.queue_wait_seconds is not None:
        QUEUE_WAIT.observe(job.queue_wait_seconds)
