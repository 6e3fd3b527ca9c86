"""A job's charges as they accrue. Pure: no I/O.

job_svc reports the job's cumulative cost (``current_cost``, whole cents)
on every ``job.progressed`` and its final cost on ``job.completed``,
``job.failed`` or ``job.cancelled``. Billing keeps a ledger per job of the
cents already charged and records only the difference: at most one compute
record per ``ACCRUAL_INTERVAL`` while the job runs, and the remainder when it
ends, so a job's compute records sum exactly to its final cost, whatever
order or number of times the events arrive. Amounts are integer cents until
they become records.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

from brightrun.events.v1 import events_pb2
from brightrun.job.v1 import job_pb2

from services.billing_svc.costs import CostDraft, billing_period
from services.common.gpu_catalogue import CATALOGUE

# A record per progress event would be one every few seconds on a large
# node; a minute keeps the records readable and the budget check timely.
ACCRUAL_INTERVAL = timedelta(minutes=1)
_FINAL = ("job_completed", "job_failed", "job_cancelled")
# The event payloads that change a job's ledger.
CHARGED_EVENTS = frozenset({"job_queued", "job_progressed", *_FINAL})


@dataclass(frozen=True)
class Ledger:
    """What billing has charged one job so far."""

    estimated_cents: int = 0
    charged_cents: int = 0
    # Event time of the last progress charge; None before the first.
    last_accrued_at: datetime | None = None
    # True once the job's final charge is recorded: nothing is added after it.
    ended: bool = False

    @property
    def committed_cents(self) -> int:
        """The part of the job's estimate not yet charged, held against its user's budget while it runs."""
        return 0 if self.ended else max(0, self.estimated_cents - self.charged_cents)


@dataclass(frozen=True)
class Accrual:
    """The records one event adds and the job's ledger once they are written."""

    drafts: list[CostDraft]
    ledger: Ledger


def cents(dollars: float) -> int:
    """Dollars to whole cents; job_svc's costs are already whole cents, this removes the float's noise."""
    return round(dollars * 100)


def _event_time(event: events_pb2.Event) -> datetime:
    # An envelope without a time would bill to 1970: fall back to now.
    if event.HasField("occurred_at"):
        return event.occurred_at.ToDatetime(tzinfo=timezone.utc)
    return datetime.now(timezone.utc)


def accrue(event: events_pb2.Event, ledger: Ledger) -> Accrual | None:
    """What ``event`` adds to its job's charges, given its ``ledger``; None when it adds nothing.

    A replayed or late event finds its charge already covered, so it adds nothing.
    """
    kind = event.WhichOneof("payload")
    if ledger.ended or kind not in CHARGED_EVENTS:
        return None
    job = getattr(event, kind).job
    if not job.id:
        return None
    when = _event_time(event)
    if kind == "job_queued":
        estimated = cents(job.estimated_total_cost)
        return None if estimated == ledger.estimated_cents else Accrual([], replace(ledger, estimated_cents=estimated))
    if kind == "job_progressed":
        return _progress(event, job, ledger, when)
    total = cents(job.final_cost if job.HasField("final_cost") else job.current_cost)
    # May be negative: a final cost below what was charged is credited back, so the records still sum to it.
    remainder = total - ledger.charged_cents
    # A completed job always shows a compute record, even a free one (its hours and rate are its account).
    completed_unbilled = kind == "job_completed" and ledger.last_accrued_at is None
    drafts = [_compute(event, job, remainder, total, when, "final")] if remainder or completed_unbilled else []
    if kind == "job_completed":
        stored = sum(f.size_bytes for f in event.job_completed.manifest.files)
        # A flat storage cost per trained model (FR-3.1), at the catalogue's price.
        storage = cents(CATALOGUE.storage_price_per_model)
        drafts.append(_draft(event, job, "storage", storage, {"bytes": stored}, when, "storage"))
    return Accrual(drafts, replace(ledger, charged_cents=total, ended=True))


def _progress(event: events_pb2.Event, job: job_pb2.Job, ledger: Ledger, when: datetime) -> Accrual | None:
    if ledger.last_accrued_at is not None and when - ledger.last_accrued_at < ACCRUAL_INTERVAL:
        return None
    through = cents(job.current_cost)
    amount = through - ledger.charged_cents
    if amount <= 0:
        return None
    draft = _compute(event, job, amount, through, when, f"through:{through}")
    return Accrual([draft], replace(ledger, charged_cents=through, last_accrued_at=when))


def _compute(
    event: events_pb2.Event, job: job_pb2.Job, amount: int, through: int, when: datetime, key: str
) -> CostDraft:
    details = {
        "gpu_type": job.gpu_config.type,
        "gpu_count": job.gpu_config.count,
        "hours": round(_hours(job, when), 4),
        "hourly_rate": round(job.gpu_config.cost_per_gpu_hour * job.gpu_config.count, 4),
        # The job's compute charged up to and including this record, in dollars.
        "cumulative": through / 100,
    }
    return _draft(event, job, "compute", amount, details, when, f"compute:{key}")


def _draft(
    event: events_pb2.Event, job: job_pb2.Job, cost_type: str, amount: int, details: dict, when: datetime, key: str
) -> CostDraft:
    return CostDraft(
        user_id=job.user_id or event.user_id,
        job_id=job.id,
        cost_type=cost_type,
        amount=amount / 100,
        details=details,
        billing_period=billing_period(when),
        recorded_at=when,
        key=f"job:{job.id}:{key}",
    )


def _hours(job: job_pb2.Job, when: datetime) -> float:
    """GPU wall time billed: started to completed (or to the event, for a job still running or stopped early)."""
    if not job.HasField("started_at"):
        return 0.0
    started = job.started_at.ToDatetime(tzinfo=timezone.utc)
    ended = job.completed_at.ToDatetime(tzinfo=timezone.utc) if job.HasField("completed_at") else when
    return max(0.0, (ended - started).total_seconds() / 3600)
