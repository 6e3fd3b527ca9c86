"""Cost records from job events, billing periods, and the cost dashboard's
aggregates (spec FR-6.1). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from brightrun.events.v1 import events_pb2
from brightrun.job.v1 import job_pb2

from services.common.errors import field_errors

# The spec's estimate charges a flat storage cost per trained model (FR-3.1).
STORAGE_COST_PER_MODEL = 0.50

# Rolling windows ending now, as the spec's /api/costs computes them; the
# spec has no quarter, 90 days is its natural neighbour.
PERIOD_DAYS = {"week": 7, "month": 30, "quarter": 90, "year": 365}
DEFAULT_PERIOD = "month"


@dataclass(frozen=True)
class CostDraft:
    user_id: str
    job_id: str | None
    cost_type: str
    amount: float
    details: dict
    billing_period: date
    recorded_at: datetime


@dataclass(frozen=True)
class CostSummary:
    total: float
    by_type: dict[str, float]
    # (YYYY-MM-DD, amount), oldest first.
    by_day: list[tuple[str, float]] = field(default_factory=list)
    record_count: int = 0


def billing_period(moment: datetime) -> date:
    """First day of the UTC month of ``moment``."""
    return moment.astimezone(timezone.utc).date().replace(day=1)


def period_start(period: str, now: datetime) -> tuple[str, datetime]:
    """(period name, start of the window ending ``now``); raises InvalidArgument for an unknown period."""
    period = period or DEFAULT_PERIOD
    if period not in PERIOD_DAYS:
        field_errors({"period": [f"must be one of {', '.join(PERIOD_DAYS)}, not {period!r}"]})
    return period, now - timedelta(days=PERIOD_DAYS[period])


def summarize(records: Iterable[tuple[str, float, datetime]]) -> CostSummary:
    """Totals of (cost_type, amount, recorded_at) records, rounded to cents."""
    total = 0.0
    by_type: dict[str, float] = {}
    by_day: dict[str, float] = {}
    count = 0
    for cost_type, amount, recorded_at in records:
        count += 1
        total += amount
        by_type[cost_type] = by_type.get(cost_type, 0.0) + amount
        day = recorded_at.astimezone(timezone.utc).date().isoformat()
        by_day[day] = by_day.get(day, 0.0) + amount
    return CostSummary(
        total=round(total, 2),
        by_type={k: round(v, 2) for k, v in by_type.items()},
        by_day=[(day, round(by_day[day], 2)) for day in sorted(by_day)],
        record_count=count,
    )


def cost_records_for(event: events_pb2.Event) -> list[CostDraft]:
    """The costs a job event incurs: compute and storage on completion, compute so far on failure or cancel."""
    kind = event.WhichOneof("payload")
    # An envelope without a time would bill to 1970: fall back to now.
    when = (
        event.occurred_at.ToDatetime(tzinfo=timezone.utc)
        if event.HasField("occurred_at")
        else datetime.now(timezone.utc)
    )
    if kind == "job_completed":
        job = event.job_completed.job
        amount = job.final_cost if job.HasField("final_cost") else job.current_cost
        stored = sum(f.size_bytes for f in event.job_completed.manifest.files)
        return [
            _compute(event, job, amount, when),
            _draft(event, job, "storage", STORAGE_COST_PER_MODEL, {"bytes": stored}, when),
        ]
    if kind in ("job_failed", "job_cancelled"):
        job = getattr(event, kind).job
        if round(job.current_cost, 2) > 0:
            return [_compute(event, job, job.current_cost, when)]
    return []


def _compute(event: events_pb2.Event, job: job_pb2.Job, amount: float, when: datetime) -> CostDraft:
    details = {
        "gpu_type": job.gpu_config.type,
        "gpu_count": job.gpu_config.count,
        "hours": round(_hours(job, when), 4),
        "hourly_rate": round(job.gpu_config.cost_per_gpu_hour * job.gpu_config.count, 4),
    }
    return _draft(event, job, "compute", amount, details, when)


def _draft(
    event: events_pb2.Event, job: job_pb2.Job, cost_type: str, amount: float, details: dict, when: datetime
) -> CostDraft:
    return CostDraft(
        user_id=job.user_id or event.user_id,
        job_id=job.id or None,
        cost_type=cost_type,
        amount=round(amount, 2),
        details=details,
        billing_period=billing_period(when),
        recorded_at=when,
    )


def _hours(job: job_pb2.Job, when: datetime) -> float:
    """GPU wall time billed: started to completed (or to the event, for a job stopped early)."""
    if not job.HasField("started_at"):
        return 0.0
    started = job.started_at.ToDatetime(tzinfo=timezone.utc)
    ended = job.completed_at.ToDatetime(tzinfo=timezone.utc) if job.HasField("completed_at") else when
    return max(0.0, (ended - started).total_seconds() / 3600)
