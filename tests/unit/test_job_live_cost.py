"""A running job's cost so far is as of the moment it is read."""

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from brightrun.job.v1 import job_pb2

from services.job_svc.live_cost import with_cost_now

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
H100_X2 = {"type": "H100", "count": 2, "cost_per_gpu_hour": 4.2}


def _row(status: str, current_cost: float, started: timedelta | None = timedelta(minutes=30)):
    return SimpleNamespace(status=status, current_cost=current_cost, gpu_config=H100_X2,
                           started_at=None if started is None else NOW - started)


def test_a_running_job_costs_up_to_now():
    row = _row("running", 1.0)
    assert with_cost_now(job_pb2.Job(current_cost=1.0), row, NOW).current_cost == 4.2


def test_the_stored_cost_is_never_lowered_and_other_states_are_as_stored():
    assert with_cost_now(job_pb2.Job(current_cost=9.0), _row("running", 9.0), NOW).current_cost == 9.0
    for row in (_row("completed", 3.0), _row("cancelled", 3.0), _row("running", 0.0, started=None)):
        assert with_cost_now(job_pb2.Job(current_cost=row.current_cost), row, NOW).current_cost == row.current_cost
