"""Billing periods and the dashboard's aggregates (job charges: test_billing_accrual.py)."""

from datetime import date, datetime, timedelta, timezone

import pytest

from services.billing_svc.costs import billing_period, cost_window, period_start, summarize
from services.common.paging import Page, canonical_uuid, next_offset_token, parse_page
from services.common.errors import InvalidArgument

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
    assert next_offset_token([None] * 51, Page(50, 100)) == "150"
    assert next_offset_token([None] * 50, Page(50, 100)) == ""
    assert canonical_uuid("nope") is None


def test_start_and_end_dates_are_whole_utc_days_instead_of_the_period():
    now = datetime(2026, 12, 1, 15, tzinfo=timezone.utc)
    period, start, end = cost_window("week", "2026-11-01", "2026-11-30", now)
    assert period == "custom"
    assert (start, end) == (datetime(2026, 11, 1, tzinfo=timezone.utc), datetime(2026, 12, 1, tzinfo=timezone.utc))
    assert cost_window("week", "", "", now) == ("week", now - timedelta(days=7), now)


@pytest.mark.parametrize(
    ("start_date", "end_date", "named"),
    [("2026-11-01", "", {"end_date"}), ("", "2026-11-01", {"start_date"}), ("2026-11-31", "2026-12-01", {"start_date"}),
     ("2026-11-02", "2026-11-01", {"end_date"}), ("yesterday", "2026-11-01", {"start_date"})],
)
def test_a_date_that_is_missing_malformed_or_reversed_is_refused_naming_it(start_date, end_date, named):
    with pytest.raises(InvalidArgument) as info:
        cost_window("", start_date, end_date, datetime.now(timezone.utc))
    assert set(info.value.details) == named
