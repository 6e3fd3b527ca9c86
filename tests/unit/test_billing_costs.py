"""Cost records from job events, periods, and the dashboard's aggregates."""

from datetime import date, datetime, timedelta, timezone

import pytest
from brightrun.artifact.v1 import artifact_pb2
from brightrun.events.v1 import events_pb2
from brightrun.job.v1 import job_pb2

from services.billing_svc.costs import billing_period, cost_records_for, period_start, summarize
from services.common.paging import Page, canonical_uuid, next_page_token, parse_page
from services.common.errors import InvalidArgument

USER = "22222222-2222-2222-2222-222222222222"
AT = datetime(2026, 3, 31, 23, 30, tzinfo=timezone.utc)


def _job(**fields) -> job_pb2.Job:
    job = job_pb2.Job(
        id="j1", user_id=USER, gpu_config=job_pb2.GpuConfig(type="H100", count=2, cost_per_gpu_hour=3.0), **fields
    )
    job.started_at.FromDatetime(AT - timedelta(hours=1, minutes=30))
    return job


def _event(**payload) -> events_pb2.Event:
    event = events_pb2.Event(event_id="e", user_id=USER, **payload)
    event.occurred_at.FromDatetime(AT)
    return event


def test_completed_job_records_compute_and_storage():
    job = _job(current_cost=8.0, final_cost=9.004)
    job.completed_at.FromDatetime(AT)
    manifest = artifact_pb2.AdapterManifest(
        files=[artifact_pb2.ArtifactFile(name="a", size_bytes=1000), artifact_pb2.ArtifactFile(name="b", size_bytes=24)]
    )
    compute, storage = cost_records_for(_event(job_completed=events_pb2.JobCompleted(job=job, manifest=manifest)))

    assert (compute.cost_type, compute.amount, compute.job_id, compute.user_id) == ("compute", 9.0, "j1", USER)
    assert compute.details == {"gpu_type": "H100", "gpu_count": 2, "hours": 1.5, "hourly_rate": 6.0}
    assert (storage.cost_type, storage.amount, storage.details) == ("storage", 0.5, {"bytes": 1024})
    assert compute.billing_period == storage.billing_period == date(2026, 3, 1)
    assert compute.recorded_at == AT


def test_stopped_job_records_the_cost_so_far_only_when_there_is_one():
    [failed] = cost_records_for(_event(job_failed=events_pb2.JobFailed(job=_job(current_cost=1.234))))
    assert (failed.cost_type, failed.amount, failed.details["hours"]) == ("compute", 1.23, 1.5)
    assert cost_records_for(_event(job_cancelled=events_pb2.JobCancelled(job=_job(current_cost=0.001)))) == []
    assert cost_records_for(_event(job_queued=events_pb2.JobQueued(job=_job(current_cost=5)))) == []


def test_billing_period_is_the_first_of_the_utc_month():
    late_evening_west = datetime(2026, 4, 30, 20, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert billing_period(late_evening_west) == date(2026, 5, 1)


def test_period_windows_end_now():
    now = datetime(2026, 6, 1, tzinfo=timezone.utc)
    assert period_start("", now) == ("month", now - timedelta(days=30))
    assert period_start("week", now)[1] == now - timedelta(days=7)
    assert period_start("quarter", now)[1] == now - timedelta(days=90)
    assert period_start("year", now)[1] == now - timedelta(days=365)
    with pytest.raises(InvalidArgument) as caught:
        period_start("decade", now)
    assert "period" in caught.value.details


def test_summarize_by_type_and_day():
    day1 = datetime(2026, 3, 1, 10, tzinfo=timezone.utc)
    day2 = datetime(2026, 3, 2, 1, tzinfo=timezone.utc)
    summary = summarize([("compute", 1.105, day1), ("storage", 0.5, day1), ("compute", 2.0, day2)])
    assert summary.total == 3.6
    assert summary.by_type == {"compute": 3.1, "storage": 0.5}
    assert summary.by_day == [("2026-03-01", 1.6), ("2026-03-02", 2.0)]
    assert summary.record_count == 3
    assert summarize([]).total == 0


def test_paging():
    assert parse_page(0, "", default=50) == Page(50, 0)
    assert parse_page(1000, "100", default=50) == Page(100, 100)
    with pytest.raises(InvalidArgument) as caught:
        parse_page(-5, "x", default=50)
    assert set(caught.value.details) == {"page_size", "page_token"}
    assert next_page_token(Page(50, 100), 50, True) == "150"
    assert next_page_token(Page(50, 100), 50, False) == ""
    assert canonical_uuid("nope") is None
