"""job_svc's reading of billing_svc's budget check."""

import pytest

from brightrun.billing.v1 import billing_pb2
from services.common.errors import BudgetExceeded, Conflict
from services.job_svc.budget_gate import refuse_unless_allowed


def test_an_allowed_job_passes():
    refuse_unless_allowed(5.0, billing_pb2.CheckBudgetResponse(allowed=True))


def test_a_refusal_is_a_conflict_carrying_the_numbers():
    budget = billing_pb2.Budget(amount=20.0, remaining=3.004, month="2026-12-01", spent=17.0)
    with pytest.raises(BudgetExceeded) as caught:
        refuse_unless_allowed(12.5, billing_pb2.CheckBudgetResponse(allowed=False, budget=budget))
    assert isinstance(caught.value, Conflict) and caught.value.reason == "budget_exceeded"
    assert caught.value.details == {"estimated_cost": 12.5, "remaining": 3.0, "budget": 20.0, "month": "2026-12-01"}
