"""Billing periods and the dashboard's aggregates (job charges: test_billing_accrual.py)."""

from datetime import date, datetime, timedelta, timezone

import pytest

from services.billing_svc.costs import billing_period, period_start, summarize
from services.common.paging import Page, canonical_uuid, next_page_token, parse_page
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
    assert next_page_token(Page(50, 100), 50, True) == "150"
    assert next_page_token(Page(50, 100), 50, False) == ""
    assert canonical_uuid("nope") is None
