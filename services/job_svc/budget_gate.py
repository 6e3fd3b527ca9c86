"""The budget check before a job is queued: billing_svc
owns budgets, so job_svc asks it whether the job's estimate fits what
remains of its user's month."""

from __future__ import annotations

from brightrun.billing.v1 import billing_pb2, billing_pb2_grpc

from services.common.errors import BudgetExceeded
from services.common.grpc import as_user, downstream_timeout

# A launch waits this long at most for billing_svc; past it the call is an outage (503), not a refusal.
CHECK_TIMEOUT_S = 10


class BudgetGate:
    def __init__(self, billing: billing_pb2_grpc.BillingServiceStub):
        self._billing = billing

    async def check(self, user_id: str, estimated_cost: float) -> None:
        """Raises BudgetExceeded, with the estimate, the remaining and the monthly budget in its details,
        when the user's budget does not allow a job of ``estimated_cost`` dollars."""
        reply = await self._billing.CheckBudget(
            billing_pb2.CheckBudgetRequest(estimated_cost=estimated_cost),
            metadata=as_user(user_id),
            timeout=downstream_timeout(CHECK_TIMEOUT_S),
        )
        refuse_unless_allowed(estimated_cost, reply)


def refuse_unless_allowed(estimated_cost: float, reply: billing_pb2.CheckBudgetResponse) -> None:
    """Raises BudgetExceeded when ``reply`` does not allow the job."""
    if reply.allowed:
        return
    budget = reply.budget
    raise BudgetExceeded(
        "The job's estimated cost exceeds what remains of your monthly budget",
        {
            "estimated_cost": round(estimated_cost, 2),
            "remaining": round(budget.remaining, 2),
            "budget": round(budget.amount, 2),
            "month": budget.month,
        },
    )
