"""Monthly budgets: what remains, whether an estimate fits, the 80% and 100% notices."""

from datetime import date

import pytest

from services.billing_svc.budget import Standing, budget_cents, estimate_cents, threshold_notices
from services.common.errors import InvalidArgument

USER = "22222222-2222-2222-2222-222222222222"
MARCH = date(2026, 3, 1)


def test_remaining_is_the_budget_less_spent_and_committed():
    month = Standing(MARCH, budget_cents=10_000, spent_cents=6_000, committed_cents=1_500)
    assert month.remaining_cents == 2_500
    assert month.allows(2_500) and not month.allows(2_501)


def test_without_a_budget_nothing_is_refused():
    month = Standing(MARCH, budget_cents=None, spent_cents=10**9, committed_cents=10**9)
    assert month.remaining_cents is None and month.allows(10**12)


def test_notices_at_80_and_100_percent_once_a_month_each():
    def notices(spent: int):
        return threshold_notices(USER, Standing(MARCH, budget_cents=10_000, spent_cents=spent, committed_cents=0))

    assert notices(7_999) == []
    [warning] = notices(8_000)
    assert (warning.type, warning.key, warning.priority) == ("budget_warning", f"budget:{USER}:2026-03:80", "medium")
    assert "$80.00 of your $100.00" in warning.message
    assert [n.key for n in notices(10_000)] == [f"budget:{USER}:2026-03:80", f"budget:{USER}:2026-03:100"]
    assert notices(10_000)[1].type == "budget_exceeded"
    assert threshold_notices(USER, Standing(MARCH, budget_cents=0, spent_cents=0, committed_cents=0)) == []
    assert threshold_notices(USER, Standing(MARCH, budget_cents=None, spent_cents=5, committed_cents=0)) == []


@pytest.mark.parametrize("amount", [-0.01, float("nan"), float("inf"), 1e12])
def test_a_budget_must_be_a_sane_amount_of_dollars(amount):
    with pytest.raises(InvalidArgument) as caught:
        budget_cents(amount)
    assert list(caught.value.details) == ["amount"]


def test_amounts_become_whole_cents():
    assert budget_cents(0) == 0 and budget_cents(123.456) == 12346
    assert estimate_cents(0.1 + 0.2) == 30
    with pytest.raises(InvalidArgument) as caught:
        estimate_cents(-1)
    assert list(caught.value.details) == ["estimated_cost"]


def test_running_jobs_are_stopped_once_the_budget_is_spent():
    assert not Standing(MARCH, budget_cents=10_000, spent_cents=9_999, committed_cents=5_000).spent_all
    assert Standing(MARCH, budget_cents=10_000, spent_cents=10_000, committed_cents=0).spent_all
    assert not Standing(MARCH, budget_cents=None, spent_cents=10**9, committed_cents=0).spent_all
