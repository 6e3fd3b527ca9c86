"""A job's charges accrue from its events and sum exactly to its final cost."""

import random
from datetime import date, datetime, timedelta, timezone

from brightrun.artifact.v1 import artifact_pb2
from brightrun.events.v1 import events_pb2
from brightrun.job.v1 import job_pb2

from services.billing_svc.accrual import ACCRUAL_INTERVAL, Ledger, accrue

USER = "22222222-2222-2222-2222-222222222222"
AT = datetime(2026, 3, 31, 23, 30, tzinfo=timezone.utc)


def _job(**fields) -> job_pb2.Job:
    job = job_pb2.Job(
        id="j1", user_id=USER, gpu_config=job_pb2.GpuConfig(type="H100", count=2, cost_per_gpu_hour=3.0), **fields
    )
    job.started_at.FromDatetime(AT - timedelta(hours=1, minutes=30))
    return job


def _event(at: datetime = AT, **payload) -> events_pb2.Event:
    event = events_pb2.Event(event_id="e", user_id=USER, **payload)
    event.occurred_at.FromDatetime(at)
    return event


def _progressed(cost: float, at: datetime) -> events_pb2.Event:
    return _event(at, job_progressed=events_pb2.JobProgressed(job=_job(current_cost=cost)))


def _apply(events: list[events_pb2.Event], ledger: Ledger = Ledger()) -> tuple[list, Ledger]:
    drafts = []
    for event in events:
        accrual = accrue(event, ledger)
        if accrual is not None:
            drafts += accrual.drafts
            ledger = accrual.ledger
    return drafts, ledger


def test_completed_job_records_compute_and_storage():
    job = _job(current_cost=8.0, final_cost=9.004)
    job.completed_at.FromDatetime(AT)
    manifest = artifact_pb2.AdapterManifest(
        files=[artifact_pb2.ArtifactFile(name="a", size_bytes=1000), artifact_pb2.ArtifactFile(name="b", size_bytes=24)]
    )
    accrual = accrue(_event(job_completed=events_pb2.JobCompleted(job=job, manifest=manifest)), Ledger())
    compute, storage = accrual.drafts

    assert (compute.cost_type, compute.amount, compute.job_id, compute.user_id) == ("compute", 9.0, "j1", USER)
    assert compute.details == {"gpu_type": "H100", "gpu_count": 2, "hours": 1.5, "hourly_rate": 6.0, "cumulative": 9.0}
    assert (storage.cost_type, storage.amount, storage.details) == ("storage", 0.5, {"bytes": 1024})
    assert compute.billing_period == storage.billing_period == date(2026, 3, 1)
    assert compute.recorded_at == AT
    assert (compute.key, storage.key) == ("job:j1:compute:final", "job:j1:storage")
    assert accrual.ledger == Ledger(charged_cents=900, ended=True)


def test_stopped_job_records_the_cost_so_far_only_when_there_is_one():
    [failed] = accrue(_event(job_failed=events_pb2.JobFailed(job=_job(current_cost=1.234))), Ledger()).drafts
    assert (failed.cost_type, failed.amount, failed.details["hours"]) == ("compute", 1.23, 1.5)
    cancelled = accrue(_event(job_cancelled=events_pb2.JobCancelled(job=_job(current_cost=0.001))), Ledger())
    assert cancelled.drafts == [] and cancelled.ledger.ended


def test_progress_charges_the_difference_at_most_once_an_interval():
    minute = ACCRUAL_INTERVAL
    drafts, ledger = _apply([
        _progressed(0.004, AT),  # rounds to nothing yet
        _progressed(0.10, AT + minute / 2),
        _progressed(0.25, AT + minute),  # less than an interval after the last charge
        _progressed(0.40, AT + 2 * minute),
    ])
    assert [(d.amount, d.key, d.details["cumulative"]) for d in drafts] == [
        (0.10, "job:j1:compute:through:10", 0.10),
        (0.30, "job:j1:compute:through:40", 0.40),
    ]
    assert ledger == Ledger(charged_cents=40, last_accrued_at=AT + 2 * minute)


def test_records_sum_exactly_to_the_final_cost_under_replays_and_reordering():
    rng = random.Random(8)
    for final in ("job_completed", "job_failed", "job_cancelled"):
        costs = sorted(round(rng.uniform(0, 50), 2) for _ in range(40))
        progress = [_progressed(c, AT + i * ACCRUAL_INTERVAL * rng.uniform(0.2, 2)) for i, c in enumerate(costs)]
        # Redelivered and late events, in any order.
        progress += rng.sample(progress, 20)
        rng.shuffle(progress)
        total = round(costs[-1] + 0.37, 2)
        end = _event(**{final: getattr(events_pb2, final.title().replace("_", ""))(job=_job(current_cost=total))})
        drafts, ledger = _apply([*progress, end, *progress[:5], end])
        compute = [round(d.amount * 100) for d in drafts if d.cost_type == "compute"]
        assert sum(compute) == round(total * 100) and ledger.ended
        assert len({d.key for d in drafts}) == len(drafts)


def test_a_final_cost_below_what_was_charged_is_credited_back():
    drafts, _ = _apply([_progressed(2.0, AT), _event(job_failed=events_pb2.JobFailed(job=_job(current_cost=1.5)))])
    assert [d.amount for d in drafts] == [2.0, -0.5]


def test_queued_commits_the_estimate_until_the_job_ends():
    queued = _event(job_queued=events_pb2.JobQueued(job=_job(estimated_total_cost=12.5)))
    _, ledger = _apply([queued, _progressed(2.0, AT)])
    assert ledger.committed_cents == 1050
    _, ledger = _apply([_event(job_cancelled=events_pb2.JobCancelled(job=_job(current_cost=3.0)))], ledger)
    assert ledger.committed_cents == 0
    assert accrue(_progressed(9.0, AT + 9 * ACCRUAL_INTERVAL), ledger) is None


def test_a_free_completed_job_still_has_its_compute_record_and_a_free_stopped_one_none():
    job = _job(current_cost=0.0, final_cost=0.0)
    drafts, _ = _apply([_event(job_completed=events_pb2.JobCompleted(job=job))])
    assert [(d.cost_type, d.amount) for d in drafts] == [("compute", 0.0), ("storage", 0.5)]
    drafts, _ = _apply([_progressed(1.0, AT), _event(job_completed=events_pb2.JobCompleted(job=_job(final_cost=1.0)))])
    assert [(d.cost_type, d.amount) for d in drafts] == [("compute", 1.0), ("storage", 0.5)]
