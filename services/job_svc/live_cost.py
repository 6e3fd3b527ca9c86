"""The cost so far of a job as it is read. Pure.

A running job's stored ``current_cost`` is as of its last metric point;
between points (a slow step, a checkpoint upload) the GPUs keep costing,
so a read shows the cost up to the moment of reading.
"""

from __future__ import annotations

from datetime import datetime

from brightrun.job.v1 import job_pb2

from services.job_svc.measures import cost_so_far, hourly_rate


def with_cost_now(job: job_pb2.Job, row, now: datetime) -> job_pb2.Job:
    """``job`` (the message of ``row``) with its cost so far brought up to ``now`` while it runs."""
    if row.status != "running" or row.started_at is None:
        return job
    live = cost_so_far(row.started_at, now, hourly_rate(row.gpu_config))
    # Never below what was stored: billing has charged up to that already.
    job.current_cost = max(float(row.current_cost), live)
    return job
