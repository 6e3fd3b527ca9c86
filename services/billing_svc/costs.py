"""Cost records, billing periods, and the cost dashboard's aggregates (spec
FR-6.1). Pure: no I/O. What a job's events charge is accrual.py's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from services.common.errors import field_errors

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
    # What the record charges for, unique among cost records (see accrual.py).
    key: str | None = None


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


def cost_window(period: str, start_date: str, end_date: str, now: datetime) -> tuple[str, datetime, datetime]:
    """(period name, start, end exclusive): start_date..end_date (whole UTC days) when given, else the period
    ending ``now``; raises InvalidArgument naming start_date or end_date when malformed, alone or reversed."""
    if not start_date and not end_date:
        period, start = period_start(period, now)
        return period, start, now
    problems: dict[str, list[str]] = {}
    days = {}
    for name, raw in (("start_date", start_date), ("end_date", end_date)):
        try:
            days[name] = date.fromisoformat(raw) if len(raw) == 10 else None
        except ValueError:
            days[name] = None
        if days[name] is None:
            problems[name] = [
                f"must be a date YYYY-MM-DD, given with the other of start_date and end_date; got {raw[:40]!r}"
            ]
    if not problems and days["end_date"] < days["start_date"]:
        problems["end_date"] = [f"must not be before start_date ({start_date})"]
    field_errors(problems)
    start = datetime.combine(days["start_date"], datetime.min.time(), timezone.utc)
    end = datetime.combine(days["end_date"] + timedelta(days=1), datetime.min.time(), timezone.utc)
    return "custom", start, end


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
